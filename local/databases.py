"""Real database servers for the host-script tests and the local demo.

`PostgresServer` and `MariaDBServer` start a throw-away server from Debian's packages in a fresh
temporary directory, listening on 127.0.0.1 on a free TCP port, and stop it and remove the
directory when the `with` block ends (also on errors, and at interpreter exit as a last resort).

Both expose the same small API:

- `port`: the TCP port on 127.0.0.1;
- `host_env()`: the environment variables a host script needs to find the local admin socket
  (`PGHOST`/`PGPORT`, `MYSQL_UNIX_PORT`), as a database host would have them;
- `create_login(name, password)`, `drop_login(name)`, `set_password(name, password)`;
- `can_login(name, password) -> bool`: a real TCP login with that password (the password goes
  through a mode-0600 file, never argv);
- `admin_sql(sql) -> str`: SQL as the local administrator, over the unix socket, on stdin;
- for the alternating-users strategy: `create_admin(name, password)` (a login that administers
  logins and grants, as a master secret holds), `create_table(table)` and `grant(privilege, table,
  name)` (a table of the server's `app_database`), `login_sql(name, password, sql) -> str | None`
  (SQL as that login over TCP in `app_database`; None when the login or the SQL is refused).

We run as root (CI and the developers' machines do): PostgreSQL runs as OS user `postgres`
(initdb refuses root), MariaDB as `mysql`.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

_LIVE: set = set()


def _stop_all_at_exit() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


atexit.register(_stop_all_at_exit)


class DatabaseError(RuntimeError):
    """A command against the local server failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def _kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # Reap it if it is our child; otherwise just poll.
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return
            except ChildProcessError:
                if not _pid_alive(pid):
                    return
            time.sleep(0.05)


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(text: str) -> str:
    # E'' strings interpret backslashes whatever standard_conforming_strings says.
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _my_literal(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\0":
            out.append("\\0")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\x1a":
            out.append("\\Z")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _my_option_value(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Server:
    os_user = ""
    prefix = "db-"

    def __init__(self) -> None:
        self.tmp: Path | None = None
        self.port = 0
        self._started = False

    # context manager ----------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        os.chmod(self.tmp, 0o700)
        _LIVE.add(self)
        self._start()
        self._started = True

    def stop(self) -> None:
        try:
            if self.tmp is not None:
                self._stop()
        finally:
            _LIVE.discard(self)
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
            self._started = False

    # helpers ------------------------------------------------------------------------------
    def _run(self, argv, *, input_text=None, env=None, check=True, timeout=60, cwd=None):
        proc = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=cwd or self.tmp,
        )
        if check and proc.returncode != 0:
            raise DatabaseError(
                f"{Path(argv[0]).name} failed with status {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def _private_file(self, name: str, text: str) -> Path:
        assert self.tmp is not None
        client_dir = self.tmp / "client"
        client_dir.mkdir(mode=0o700, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=name, dir=client_dir)
        os.close(fd)
        _write_private(Path(path), text)
        return Path(path)

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class PostgresServer(_Server):
    """PostgreSQL 15 from Debian's packages, as OS user postgres, in a temporary directory."""

    os_user = "postgres"
    prefix = "rotator-pg-"

    @property
    def datadir(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "socket"

    @property
    def log_path(self) -> Path:
        """The server log (log_statement = 'all')."""
        assert self.tmp is not None
        return self.tmp / "postgres.log"

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.os_user, "--", *argv]

    def _start(self) -> None:
        assert self.tmp is not None
        self.socket_dir.mkdir(mode=0o700)
        self.log_path.touch()
        _chown_tree(self.tmp, self.os_user)
        self._run(
            self._as_postgres(
                str(PG_BIN / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "-E", "UTF8",
                "--locale=C",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--no-instructions",
            ),
            timeout=120,
        )
        (self.datadir / "pg_hba.conf").write_text(
            "# written by local/databases.py\n"
            "local all postgres peer\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        self.port = free_port()
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# local/databases.py\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "password_encryption = 'scram-sha-256'\n"
                "log_statement = 'all'\n"
                "log_connections = on\n"
                "logging_collector = off\n"
                "log_destination = 'stderr'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_buffers = '16MB'\n"
                "max_connections = 30\n"
                "ssl = off\n"
            )
        _chown_tree(self.tmp, self.os_user)
        self._run(
            self._as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D", str(self.datadir),
                "-l", str(self.log_path),
                "-w", "-t", "60",
                "start",
            ),
            timeout=90,
        )

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            return int(first)
        except (OSError, ValueError, IndexError):
            return None

    def _stop(self) -> None:
        if self.tmp is None or not self.datadir.exists():
            return
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            self._run(
                self._as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30", "stop"
                ),
                check=False,
                timeout=45,
            )
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        if _pid_alive(pid):  # pragma: no cover - pg_ctl failed us
            _kill_and_wait(pid)

    def reload(self) -> None:
        self._run(self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "reload"))
        time.sleep(0.3)

    # API ----------------------------------------------------------------------------------
    def host_env(self) -> dict[str, str]:
        return {"PGHOST": str(self.socket_dir), "PGPORT": str(self.port)}

    def admin_sql(self, sql: str) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **self.host_env()}
        proc = self._run(
            self._as_postgres(
                str(PG_BIN / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"
            ),
            input_text=sql,
            env=env,
        )
        return proc.stdout

    def create_login(self, name: str, password: str) -> None:
        self.admin_sql(f"CREATE ROLE {_pg_ident(name)} LOGIN PASSWORD {_pg_literal(password)};\n")

    def drop_login(self, name: str) -> None:
        self.admin_sql(f"DROP ROLE IF EXISTS {_pg_ident(name)};\n")

    def set_password(self, name: str, password: str) -> None:
        self.admin_sql(f"ALTER ROLE {_pg_ident(name)} PASSWORD {_pg_literal(password)};\n")

    def login_exists(self, name: str) -> bool:
        out = self.admin_sql(f"SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = {_pg_literal(name)};\n")
        return out.strip() == "1"

    app_database = "postgres"

    def create_admin(self, name: str, password: str) -> None:
        self.admin_sql(f"CREATE ROLE {_pg_ident(name)} LOGIN SUPERUSER PASSWORD {_pg_literal(password)};\n")

    def create_table(self, table: str) -> None:
        self.admin_sql(f"CREATE TABLE {_pg_ident(table)} (id integer);\nINSERT INTO {_pg_ident(table)} VALUES (1);\n")

    def grant(self, privilege: str, table: str, name: str) -> None:
        self.admin_sql(f"GRANT {privilege} ON TABLE {_pg_ident(table)} TO {_pg_ident(name)};\n")

    def login_sql(self, name: str, password: str, sql: str) -> str | None:
        return self._psql_as(name, password, sql, self.app_database)

    def can_login(self, name: str, password: str, dbname: str = "postgres") -> bool:
        return (self._psql_as(name, password, "SELECT 1;\n", dbname) or "").strip() == "1"

    def _psql_as(self, name: str, password: str, sql: str, dbname: str) -> str | None:
        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace(":", "\\:")

        passfile = self._private_file("pgpass-", f"*:*:*:*:{esc(password)}\n")
        try:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LC_ALL": "C",
                "PGPASSFILE": str(passfile),
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self.port),
                "PGUSER": name,
                "PGDATABASE": dbname,
                "PGCONNECT_TIMEOUT": "10",
                "PGSSLMODE": "disable",
                "PGGSSENCMODE": "disable",
            }
            proc = self._run(
                [str(PG_BIN / "psql"), "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1"],
                input_text=sql,
                env=env,
                check=False,
            )
            return proc.stdout if proc.returncode == 0 else None
        finally:
            passfile.unlink(missing_ok=True)

    def server_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class MariaDBServer(_Server):
    """MariaDB from Debian's packages, as OS user mysql, in a temporary directory."""

    os_user = "mysql"
    prefix = "rotator-mariadb-"

    def __init__(self) -> None:
        super().__init__()
        self._proc: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "data"

    @property
    def socket_path(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "mysqld.sock"

    @property
    def pid_path(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "mysqld.pid"

    @property
    def log_path(self) -> Path:
        """The error log."""
        assert self.tmp is not None
        return self.tmp / "error.log"

    @property
    def general_log_path(self) -> Path:
        """The general query log (every statement the server received)."""
        assert self.tmp is not None
        return self.tmp / "general.log"

    def _start(self) -> None:
        assert self.tmp is not None
        # mysqld must be able to traverse the directory (its socket and pid file live there).
        _chown_tree(self.tmp, self.os_user)
        self._run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
            ],
            timeout=180,
        )
        self.port = free_port()
        log = open(self.tmp / "mariadbd.out", "wb")
        try:
            self._proc = subprocess.Popen(
                [
                    "mariadbd",
                    "--no-defaults",
                    "--user=mysql",
                    f"--datadir={self.datadir}",
                    f"--socket={self.socket_path}",
                    f"--pid-file={self.pid_path}",
                    f"--log-error={self.log_path}",
                    "--general-log=1",
                    f"--general-log-file={self.general_log_path}",
                    "--bind-address=127.0.0.1",
                    f"--port={self.port}",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                    "--innodb-log-file-size=8M",
                    "--innodb-flush-log-at-trx-commit=0",
                    "--skip-innodb-doublewrite",
                    "--performance-schema=OFF",
                    "--max-connections=30",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                raise DatabaseError(f"mariadbd exited with {self._proc.returncode}: {self._tail_log()}")
            ping = self._run(
                ["mariadb-admin", "--no-defaults", "--protocol=socket", f"--socket={self.socket_path}",
                 "-u", "root", "--connect-timeout=2", "ping"],
                check=False,
                timeout=10,
            )
            if ping.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise DatabaseError(f"mariadbd did not come up: {self._tail_log()}")
            time.sleep(0.1)

    def _tail_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait(timeout=10)
            self._proc = None
        # Whatever else may have been left (should be nothing): the pid file's process.
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if _pid_alive(pid):  # pragma: no cover
            _kill_and_wait(pid)

    # API ----------------------------------------------------------------------------------
    def host_env(self) -> dict[str, str]:
        return {"MYSQL_UNIX_PORT": str(self.socket_path)}

    def admin_sql(self, sql: str) -> str:
        proc = self._run(
            ["mariadb", "--no-defaults", "--protocol=socket", f"--socket={self.socket_path}", "-u", "root",
             "--batch", "--skip-column-names", "--default-character-set=utf8mb4"],
            input_text=sql,
        )
        return proc.stdout

    def _hosts(self, name: str) -> list[str]:
        out = self.admin_sql(f"SELECT HEX(Host) FROM mysql.user WHERE User = {_my_literal(name)};\n")
        return [bytes.fromhex(line).decode("utf-8") for line in out.split()]

    def create_login(self, name: str, password: str, host: str = "%") -> None:
        self.admin_sql(
            f"CREATE USER {_my_literal(name)}@{_my_literal(host)} IDENTIFIED BY {_my_literal(password)};\n"
        )

    def drop_login(self, name: str) -> None:
        for host in self._hosts(name):
            self.admin_sql(f"DROP USER {_my_literal(name)}@{_my_literal(host)};\n")

    def set_password(self, name: str, password: str) -> None:
        for host in self._hosts(name):
            self.admin_sql(
                f"ALTER USER {_my_literal(name)}@{_my_literal(host)} IDENTIFIED BY {_my_literal(password)};\n"
            )

    def login_exists(self, name: str) -> bool:
        return bool(self._hosts(name))

    app_database = "shop"

    def create_admin(self, name: str, password: str) -> None:
        self.admin_sql(f"CREATE USER {_my_literal(name)}@'%' IDENTIFIED BY {_my_literal(password)};\n"
                       f"GRANT ALL PRIVILEGES ON *.* TO {_my_literal(name)}@'%' WITH GRANT OPTION;\n")

    def create_table(self, table: str) -> None:
        self.admin_sql(f"CREATE DATABASE IF NOT EXISTS `{self.app_database}`;\n"
                       f"CREATE TABLE `{self.app_database}`.`{table}` (id integer);\n"
                       f"INSERT INTO `{self.app_database}`.`{table}` VALUES (1);\n")

    def grant(self, privilege: str, table: str, name: str) -> None:
        for host in self._hosts(name):
            self.admin_sql(f"GRANT {privilege} ON `{self.app_database}`.`{table}` TO {_my_literal(name)}@{_my_literal(host)};\n")

    def login_sql(self, name: str, password: str, sql: str) -> str | None:
        return self._mariadb_as(name, password, sql)

    def can_login(self, name: str, password: str) -> bool:
        return (self._mariadb_as(name, password, "SELECT 1") or "").strip() == "1"

    def _mariadb_as(self, name: str, password: str, sql: str) -> str | None:
        cnf = self._private_file(
            "my-", f"[client]\nuser={_my_option_value(name)}\npassword={_my_option_value(password)}\n"
        )
        try:
            proc = self._run(
                ["mariadb", f"--defaults-file={cnf}", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(self.port),
                 "--connect-timeout=10", "--batch", "--skip-column-names", "-e", sql],
                check=False,
            )
            return proc.stdout if proc.returncode == 0 else None
        finally:
            cnf.unlink(missing_ok=True)

    def general_log(self) -> str:
        try:
            return self.general_log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
