"""One TCP address, 127.0.0.1:<port>, that is "the database on this host" for several hosts at once.

A host script reaches its own database the way applications do, on 127.0.0.1 and the secret's
port (hosts/linux/postgres.sh). Real hosts are separate machines, each with its own server behind
that address; the local stack runs every host on one machine. The router listens on one port and
forwards each connection to the server of the instance whose command made it: the SSM emulator
runs every script with AWS_SSM_INSTANCE_ID in its environment, as the agent does, and the
connecting process (psql) inherits it. A connection from any other process is closed.
"""

from __future__ import annotations

import socket
import threading

from local.sockets import ancestry, environment_of, socket_owner


class HostRouter:
    def __init__(self, port_of_instance: dict[str, int]):
        self._upstream = dict(port_of_instance)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="host-router", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def __enter__(self) -> HostRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def instance_of(self, client_port: int) -> str | None:
        pid = socket_owner(client_port, self.port)
        for p in ancestry(pid) if pid else []:
            instance = environment_of(p).get("AWS_SSM_INSTANCE_ID")
            if instance:
                return instance
        return None

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, address[1]), daemon=True).start()

    def _serve(self, client: socket.socket, client_port: int) -> None:
        port = self._upstream.get(self.instance_of(client_port) or "")
        if port is None:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", port))
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()
