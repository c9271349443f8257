"""The function's side of the Lambda Runtime API, driven by a scripted Runtime API on loopback.

These run the real binary (`./bootstrap` after `make build`) without AWS: the events used here
are rejected before any AWS call, which is itself part of the contract.
"""
from __future__ import annotations

import json
import pathlib
import queue
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap"
TOKEN = "11111111-2222-3333-4444-555555555555"


class ScriptedRuntimeAPI:
    """Hands out queued events; answers each call with the status the test scripted."""

    def __init__(self):
        self.events: queue.Queue = queue.Queue()
        self.calls: list[tuple[str, str, dict, bytes]] = []
        self.next_status = 200
        self.result_status = 202  # for /invocation/{id}/response and /error
        self.answered = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                api._record(self, b"")
                if api.next_status != 200:
                    self._send(api.next_status, b'{"errorMessage":"broken"}')
                    return
                request_id, body, trace = api.events.get()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:rotator")
                self.send_header("Lambda-Runtime-Trace-Id", trace)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api._record(self, body)
                self._send(api.result_status if "/invocation/" in self.path else 202, b"{}")

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _record(self, handler, body):
        with self.answered:
            self.calls.append((handler.command, handler.path, dict(handler.headers), body))
            self.answered.notify_all()

    def wait_for(self, predicate, timeout=10.0):
        with self.answered:
            assert self.answered.wait_for(lambda: predicate(self.calls), timeout), self.calls

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    if not BOOTSTRAP.exists() or not (ROOT / ".build" / "release" / "rotator").exists():
        pytest.fail("the function is not built: run `make build` first")
    server = ScriptedRuntimeAPI()
    yield server
    server.close()


def start(api: ScriptedRuntimeAPI, **overrides) -> subprocess.Popen:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY": "secret-key-never-logged",
        "AWS_SESSION_TOKEN": "session-token-never-logged",
        # Nothing listens here: any AWS call would fail loudly.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "POSTGRES_DOCUMENT": "RotatorPostgres",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
    return subprocess.Popen([str(BOOTSTRAP)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def errors_posted(calls):
    return [(path, headers, json.loads(body)) for method, path, headers, body in calls if path.endswith("/error")]


@pytest.mark.parametrize("setting", [{"PASSWORD_LENGTH": "twelve"}, {"PASSWORD_LENGTH": "8"},
                                     {"POSTGRES_DOCUMENT": None}, {"AWS_REGION": None},
                                     {"AWS_ENDPOINT_URL": "localhost:4566"},
                                     {"HOST_POLL_MILLISECONDS": "99"}, {"HOST_POLL_MILLISECONDS": "5001"},
                                     {"HOST_POLL_MILLISECONDS": "+500"}, {"HOST_POLL_MILLISECONDS": "1e3"}])
def test_unusable_configuration_reports_init_error_and_exits(api, setting):
    process = start(api, **setting)
    out, _ = process.communicate(timeout=10)
    assert process.returncode != 0
    posted = errors_posted(api.calls)
    assert [path for path, _, _ in posted] == ["/2018-06-01/runtime/init/error"]
    _, headers, body = posted[0]
    assert body["errorType"] == "Configuration" == headers["Lambda-Runtime-Function-Error-Type"]
    assert body["errorMessage"]
    assert not any(path.endswith("/next") for _, path, _, _ in api.calls), "no event may be taken after a failed init"
    assert "secret-key-never-logged" not in out and "session-token-never-logged" not in out


def test_runtime_api_500_makes_the_process_exit_non_zero(api):
    api.next_status = 500
    process = start(api)
    process.communicate(timeout=10)
    assert process.returncode not in (0, None)


BAD_EVENTS = [
    (b"this is not json", "InvalidEvent"),
    (b'{"Step": 1, "SecretId": "s", "ClientRequestToken": "' + TOKEN.encode() + b'"}', "InvalidEvent"),
    (b'{"Step": "dropTables", "SecretId": "s", "ClientRequestToken": "' + TOKEN.encode() + b'"}', "InvalidEvent"),
    (b'{"Step": "setSecret", "SecretId": "s", "ClientRequestToken": "not-a-version"}', "InvalidEvent"),
    (b'{"Step": "setSecret", "SecretId": "s", "ClientRequestToken": "' + TOKEN.encode() + b'", "RotationToken": {}}', "InvalidEvent"),
]


def test_bad_events_are_answered_with_errors_and_the_loop_goes_on(api):
    process = start(api)
    try:
        for i, (body, _) in enumerate(BAD_EVENTS):
            api.events.put((f"req-{i}", body, f"Root=1-trace-{i}"))
        api.wait_for(lambda calls: len(errors_posted(calls)) == len(BAD_EVENTS))
        posted = errors_posted(api.calls)
        for i, (path, headers, body) in enumerate(posted):
            assert path == f"/2018-06-01/runtime/invocation/req-{i}/error"
            assert body["errorType"] == BAD_EVENTS[i][1] == headers["Lambda-Runtime-Function-Error-Type"]
            assert set(body) == {"errorType", "errorMessage", "stackTrace"}
        # Still alive, and back at `next` for the next event.
        api.wait_for(lambda calls: sum(1 for c in calls if c[1].endswith("/next")) == len(BAD_EVENTS) + 1)
        assert process.poll() is None
    finally:
        process.kill()
        out, _ = process.communicate()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    rejected = [line for line in lines if line.get("message") == "event rejected"]
    assert [line["requestId"] for line in rejected] == [f"req-{i}" for i in range(len(BAD_EVENTS))]
    assert all(line["level"] == "ERROR" and line["timestamp"].endswith("Z") for line in rejected)


def test_a_refused_response_loses_only_that_invocation(api):
    api.result_status = 400
    process = start(api)
    try:
        api.events.put(("req-a", b"not json", "Root=1-a"))
        api.events.put(("req-b", b"not json either", "Root=1-b"))
        api.wait_for(lambda calls: len(errors_posted(calls)) == 2)
        api.wait_for(lambda calls: sum(1 for c in calls if c[1].endswith("/next")) == 3)
        assert process.poll() is None
    finally:
        process.kill()
        process.communicate()
