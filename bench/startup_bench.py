"""Measures how fast the function is ready: from process start to its first
`GET /2018-06-01/runtime/invocation/next`, the part of a Lambda cold start that is ours.

Runs `./bootstrap` N times against a minimal Runtime API on loopback that records the moment
the first `next` arrives, then kills the process. Prints the median and spread in milliseconds.
Usage: python3 -m bench.startup_bench [N [COMMAND...]]
COMMAND starts the function instead of this checkout's ./bootstrap, e.g. the deployment package
in a minimal root: `python3 -m bench.startup_bench 20 /usr/sbin/chroot ROOT /var/runtime/init`
(see packaging/minimal-root.sh).
"""
import http.server
import pathlib
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _FirstNext(http.server.BaseHTTPRequestHandler):
    arrived = None  # set by the server to a threading.Event per run

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("/runtime/invocation/next"):
            self.server.first_next_at = time.perf_counter()
            self.server.arrived.set()
        # Never answer: the function stays blocked in `next`, as between real events.
        time.sleep(5)

    def log_message(self, *args):
        pass


def measure_once(server, command: list[str]) -> float:
    server.arrived = threading.Event()
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example-secret",
        "AWS_SESSION_TOKEN": "example-token",
        "POSTGRES_DOCUMENT": "RotatorPostgres",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not server.arrived.wait(10):
            raise SystemExit("the function never asked for an event")
        return (server.first_next_at - started) * 1000
    finally:
        process.kill()
        process.wait()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    command = sys.argv[2:] or [str(ROOT / "bootstrap")]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FirstNext)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        samples = [measure_once(server, command) for _ in range(runs)]
    finally:
        server.shutdown()
    binary = ROOT / ".build" / "release" / "rotator"
    print(f"runs: {runs}, command: {' '.join(command)}")
    print(f"process start to first /next: median {statistics.median(samples):.1f} ms, "
          f"min {min(samples):.1f} ms, max {max(samples):.1f} ms")
    if binary.exists() and not sys.argv[2:]:
        print(f"binary: {binary.stat().st_size / 1e6:.1f} MB ({binary})")


if __name__ == "__main__":
    main()
