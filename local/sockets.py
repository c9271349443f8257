"""Which local process holds the other end of a loopback TCP connection (Linux /proc): how the
interleaving gate (local/interleaving.py) and the host router (local/host_router.py) tell their
clients apart when every client connects to the same address."""

from __future__ import annotations

import os


def socket_owner(client_port: int, server_port: int) -> int | None:
    """The process holding the TCP socket 127.0.0.1:client_port -> 127.0.0.1:server_port."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    local, remote = parts[1], parts[2]
                    if int(local.rsplit(":", 1)[1], 16) == client_port and int(remote.rsplit(":", 1)[1], 16) == server_port:
                        inode = parts[9]
                        break
        except OSError:
            continue
        if inode:
            break
    if not inode or inode == "0":
        return None
    needle = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == needle:
                    return int(pid)
        except OSError:
            continue
    return None


def ancestry(pid: int) -> list[int]:
    """pid, its parent, and so on up to init."""
    chain = []
    while pid > 1 and len(chain) < 32:
        chain.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def environment_of(pid: int) -> dict[str, str]:
    """The environment a process started with (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}
