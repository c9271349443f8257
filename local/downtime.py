"""What an application sees of rotations: a loop that reads AWSCURRENT through boto3 with a cache
of N seconds (as External Secrets refreshes a Kubernetes secret every N seconds) and, every 50 ms,
opens a new connection with those credentials and runs a query, counting the attempts that fail.

The alternating-users strategy promises zero failures as long as the cache is shorter than the time
between two rotations: the login a rotation changes is the one applications stopped using when the
previous rotation finished. Single user changes the password applications hold, so every
application still on the old password fails from setSecret until its cache expires after
finishSecret.

Used by pytests/e2e/test_downtime.py; by hand, against any secret boto3 can read (the database must be
reachable at the secret's host and port from here), while rotations run:

    python3 -m local.downtime --secret-id <ARN> --cache 30 --seconds 600 [--query 'SELECT 1']
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pg8000.native
import pymysql

ATTEMPT_INTERVAL_S = 0.05
CONNECT_TIMEOUT_S = 5


def run_query(secret: dict[str, Any], query: str) -> None:
    """One application connection: connect with the secret's credentials, run `query`, close.
    Raises on any failure."""
    engine = str(secret.get("engine", "")).lower()
    host = secret.get("host") or "127.0.0.1"
    if engine in ("postgres", "postgresql"):
        conn = pg8000.native.Connection(secret["username"], password=secret["password"], host=host,
                                        port=int(secret.get("port") or 5432), database=secret.get("dbname") or "postgres",
                                        timeout=CONNECT_TIMEOUT_S, application_name="downtime-probe")
        try:
            conn.run(query)
        finally:
            conn.close()
    elif engine in ("mysql", "mariadb"):
        conn = pymysql.connect(host=host, port=int(secret.get("port") or 3306), user=secret["username"],
                               password=secret["password"], database=secret.get("dbname") or None,
                               connect_timeout=CONNECT_TIMEOUT_S)
        try:
            with conn.cursor() as cursor:
                cursor.execute(query)
                cursor.fetchall()
        finally:
            conn.close()
    else:
        raise ValueError(f"engine {engine!r} is not supported by the downtime probe")


@dataclass
class Measurement:
    connections: int = 0
    failed: int = 0
    secret_reads: int = 0
    failed_secret_reads: int = 0   # the application keeps its cached credentials then
    crashed: str = ""              # why the loop itself stopped early, if it did
    # Failure kinds (exception type and the first words of its message: never a password) and counts.
    errors: collections.Counter = field(default_factory=collections.Counter)


class ApplicationLoop:
    """The application, in a thread: `with ApplicationLoop(client, arn, cache_s, query) as app:`
    ... `app.measurement` once the block is left."""

    def __init__(self, client: Any, secret_id: str, cache_s: float, query: str = "SELECT 1") -> None:
        self.client = client
        self.secret_id = secret_id
        self.cache_s = cache_s
        self.query = query
        self.measurement = Measurement()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="downtime-application", daemon=True)

    def __enter__(self) -> ApplicationLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            self._attempts()
        except Exception as e:  # noqa: BLE001 - reported through the measurement
            self.measurement.crashed = f"{type(e).__name__}: {_first_words(e)}"

    def _attempts(self) -> None:
        secret: dict[str, Any] | None = None
        read_at = float("-inf")
        next_attempt = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - read_at >= self.cache_s:
                try:
                    value = self.client.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
                    secret, read_at = json.loads(value["SecretString"]), time.monotonic()
                    self.measurement.secret_reads += 1
                except Exception:
                    if secret is None:
                        raise
                    self.measurement.failed_secret_reads += 1
            self.measurement.connections += 1
            try:
                run_query(secret, self.query)
            except Exception as e:  # noqa: BLE001 - every failure counts, whatever the driver raises
                self.measurement.failed += 1
                self.measurement.errors[f"{type(e).__name__}: {_first_words(e)}"] += 1
            next_attempt += ATTEMPT_INTERVAL_S
            self._stop.wait(max(0.0, next_attempt - time.monotonic()))


def _first_words(error: Exception) -> str:
    # Driver messages name the user and the server's error code; they never echo a password.
    return " ".join(str(error).split()[:12])


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-id", required=True)
    parser.add_argument("--cache", type=float, default=30.0, help="seconds an AWSCURRENT read is reused")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to run")
    parser.add_argument("--query", default="SELECT 1")
    args = parser.parse_args(argv)
    with ApplicationLoop(boto3.client("secretsmanager"), args.secret_id, args.cache, args.query) as app:
        time.sleep(args.seconds)
    m = app.measurement
    print(f"connections {m.connections}, failed {m.failed}, AWSCURRENT reads {m.secret_reads} "
          f"({m.failed_secret_reads} failed){', stopped early: ' + m.crashed if m.crashed else ''}")
    for error, count in m.errors.most_common():
        print(f"  {count} x {error}")
    return 1 if m.failed or m.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
