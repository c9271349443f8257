"""A Lambda Runtime API on loopback, and the warm function process behind it (FunctionPool: several).

This is what the Lambda service does for a custom runtime (`provided.al2023`):
  - it starts `bootstrap` once, with the Lambda environment, and keeps it warm;
  - `GET  /2018-06-01/runtime/invocation/next` blocks until an event is queued, then answers the
    event with the headers Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms (absolute
    epoch ms), Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id;
  - `POST .../invocation/{id}/response` and `.../invocation/{id}/error` end that invocation;
  - `POST .../init/error` reports a failed start (the process then exits);
  - when the process dies or an invocation times out, the environment is thrown away and the
    next invocation starts a fresh process (a cold start), and the death is recorded.

Only the standard library is used (http.server, threading, subprocess).
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_PAYLOAD = 6 * 1024 * 1024
API_PREFIX = "/2018-06-01/runtime"


@dataclass
class InvokeResult:
    ok: bool
    payload: Any = None                      # parsed JSON of /response (raw text if not JSON)
    error: tuple[str, str] | None = None     # (errorType, errorMessage) from /error
    duration_s: float = 0.0                  # queued -> answered, cold start included
    request_id: str = ""
    error_header: str | None = None          # Lambda-Runtime-Function-Error-Type
    error_body: Any = None                   # the whole /error body as sent
    cold_start: bool = False
    init_duration_s: float | None = None     # process spawn -> first /next (cold starts only)

    @property
    def error_type(self) -> str | None:
        return self.error[0] if self.error else None

    @property
    def error_message(self) -> str | None:
        return self.error[1] if self.error else None


@dataclass
class Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    timeout_s: float
    trace_id: str
    queued_at: float
    delivered_at: float | None = None
    finished_at: float | None = None
    answered_at: float | None = None        # wall clock (time.time()) of finished_at
    done: threading.Event = field(default_factory=threading.Event)
    result: InvokeResult | None = None
    pid: int | None = None


@dataclass
class ProtocolViolation:
    at: float
    path: str
    status: int
    reason: str


def _trace_id() -> str:
    return (f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=0")


def _cpu_seconds(pid: int) -> float | None:
    """CPU time the process's threads have used so far (Linux schedstat: nanoseconds on a CPU), or
    None. Unlike wall-clock time it does not grow when the machine is busy with other work."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        return None


class RuntimeAPI:
    """Runtime API server + process manager. One invocation at a time, as one Lambda sandbox."""

    def __init__(self, *, command: list[str], cwd: str, env: dict[str, str], log_path: str,
                 function_arn: str, default_timeout_s: float,
                 env_factory: Callable[[str], dict[str, str]] | None = None,
                 init_timeout_s: float = 10.0):
        self.command = command
        self.cwd = cwd
        self._env = env
        self._env_factory = env_factory
        self.log_path = log_path
        self.function_arn = function_arn
        self.default_timeout_s = default_timeout_s
        self.init_timeout_s = init_timeout_s

        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._by_id: dict[str, Invocation] = {}
        self._lock = threading.Lock()          # state
        self._invoke_lock = threading.Lock()   # one invocation at a time
        self._closing = threading.Event()

        self.proc: subprocess.Popen[bytes] | None = None
        self._spawned_at: float | None = None
        self._first_next_at: float | None = None
        self._log_fh = None

        # Records the tests and the demo read.
        self.invocations: list[Invocation] = []
        self.starts: list[dict[str, Any]] = []      # {pid, at, init_duration_s, init_cpu_s}
        self.deaths: list[dict[str, Any]] = []      # {pid, at, returncode, during, reason}
        self.init_errors: list[dict[str, Any]] = []
        self.violations: list[ProtocolViolation] = []
        self.requests: list[tuple[float, str, str, int]] = []   # (at, method, path, status)

        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "LocalLambdaRuntimeAPI/1.0"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                api._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                api._handle(self, "POST")

            def do_PUT(self) -> None:  # noqa: N802
                api._handle(self, "PUT")

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api",
                                        daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._kill_process("shutdown")
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    # ------------------------------------------------------------------ process
    def _spawn(self) -> None:
        if self._log_fh is None:
            self._log_fh = open(self.log_path, "ab", buffering=0)
        env = self._env_factory(self.address) if self._env_factory else dict(self._env)
        # Under the lock: a process that starts in a few ms can ask for /next before Popen returns,
        # and its first /next must find its own start recorded (_next), not the previous one's.
        with self._lock:
            self._first_next_at = None
            self._spawned_at = time.monotonic()
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log_fh, stderr=subprocess.STDOUT,
                                         start_new_session=True, close_fds=True)
            self.starts.append({"pid": self.proc.pid, "at": time.time(), "init_duration_s": None,
                                "init_cpu_s": None})

    def _kill_process(self, reason: str) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
            if reason not in ("shutdown", "replaced"):   # deaths the API itself caused on purpose
                self.deaths.append({"pid": proc.pid, "at": time.time(), "returncode": proc.returncode,
                                    "during": None, "reason": reason})
        self.proc = None

    def _check_alive(self, during: str | None) -> bool:
        proc = self.proc
        if proc is None:
            return False
        rc = proc.poll()
        if rc is None:
            return True
        self.deaths.append({"pid": proc.pid, "at": time.time(), "returncode": rc,
                            "during": during, "reason": "exited"})
        self.proc = None
        return False

    def replace_command(self, command: list[str]) -> None:
        """From the next invocation on, run `command` (in a fresh process: a cold start), as a
        deployment of new code does. The running process, if any, is stopped."""
        with self._invoke_lock:
            self._kill_process("replaced")
            self.command = list(command)

    def kill_function(self) -> None:
        """SIGKILL the function's process now (the fault suite's kill points). Its death is noticed
        and recorded like any other, and the next invocation starts a fresh process."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=5)

    def process_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------------ invoke
    def invoke(self, event: Any, timeout_s: float | None = None) -> InvokeResult:
        """Queue one event (dict/list/str/number -> JSON; bytes sent as is) and wait for the answer."""
        if isinstance(event, (bytes, bytearray)):
            body = bytes(event)
        else:
            body = json.dumps(event).encode()
        timeout_s = float(timeout_s if timeout_s is not None else self.default_timeout_s)
        if self._closing.is_set():
            return InvokeResult(ok=False, error=("Runtime.Shutdown", "the Runtime API is shutting down"))
        with self._invoke_lock:
            if self._closing.is_set():
                return InvokeResult(ok=False, error=("Runtime.Shutdown", "the Runtime API is shutting down"))
            cold = False
            if not self._check_alive(during=None):
                self._spawn()
                cold = True
            now = time.time()
            inv = Invocation(request_id=str(uuid.uuid4()), body=body,
                             deadline_ms=int((now + timeout_s) * 1000), timeout_s=timeout_s,
                             trace_id=_trace_id(), queued_at=time.monotonic(),
                             pid=self.proc.pid if self.proc else None)
            with self._lock:
                self._by_id[inv.request_id] = inv
                self.invocations.append(inv)
            self._queue.put(inv)
            limit = inv.queued_at + timeout_s
            while not inv.done.wait(0.05):
                if not self._check_alive(during=inv.request_id):
                    self._finish(inv, InvokeResult(
                        ok=False, error=("Runtime.ExitError",
                                         "RequestId: %s Error: Runtime exited without providing a reason"
                                         % inv.request_id)))
                    break
                if time.monotonic() > limit:
                    self._finish(inv, InvokeResult(
                        ok=False, error=("Sandbox.Timedout",
                                         f"Task timed out after {timeout_s:.2f} seconds")))
                    # Lambda throws the sandbox away after a timeout.
                    self._kill_process("timeout")
                    break
            self._drain_stale()
            result = inv.result
            assert result is not None
            result.request_id = inv.request_id
            result.duration_s = (inv.finished_at or time.monotonic()) - inv.queued_at
            result.cold_start = cold
            if cold and self.starts:
                result.init_duration_s = self.starts[-1]["init_duration_s"]
            return result

    def _drain_stale(self) -> None:
        """Drop queued events nobody fetched (their invocation already failed)."""
        while True:
            try:
                stale = self._queue.get_nowait()
            except queue.Empty:
                return
            if not stale.done.is_set():
                self._queue.put(stale)
                return

    def _finish(self, inv: Invocation, result: InvokeResult) -> bool:
        with self._lock:
            if inv.done.is_set():
                return False
            inv.result = result
            inv.finished_at = time.monotonic()
            inv.answered_at = time.time()
            inv.done.set()
            return True

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?", 1)[0]
        status = 500
        try:
            body = self._read_body(h)
            if body is None:
                status = self._send(h, 413, {"errorMessage": "Payload too large",
                                             "errorType": "RequestEntityTooLarge"})
                return
            if method == "GET" and path == f"{API_PREFIX}/invocation/next":
                status = self._next(h)
            elif method == "POST" and path == f"{API_PREFIX}/init/error":
                status = self._init_error(h, body)
            elif method == "POST" and path.startswith(f"{API_PREFIX}/invocation/"):
                rest = path[len(f"{API_PREFIX}/invocation/"):]
                rid, _, kind = rest.partition("/")
                if kind == "response":
                    status = self._response(h, rid, body)
                elif kind == "error":
                    status = self._error(h, rid, body)
                else:
                    status = self._send(h, 404, {"errorMessage": "Not found", "errorType": "NotFound"})
            else:
                status = self._send(h, 404, {"errorMessage": "Not found", "errorType": "NotFound"})
        except OSError:
            status = 499
        finally:
            self.requests.append((time.time(), method, path, status))

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes | None:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                line = h.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = h.rfile.read(size)
                h.rfile.readline()
                total += size
                if total <= MAX_PAYLOAD:
                    chunks.append(data)
            return b"".join(chunks) if total <= MAX_PAYLOAD else None
        length = int(h.headers.get("Content-Length") or 0)
        data = h.rfile.read(length) if length else b""
        return data if len(data) <= MAX_PAYLOAD else None

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, obj: Any = None, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> int:
        if body is None:
            body = json.dumps(obj if obj is not None else {}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        return status

    def _next(self, h: BaseHTTPRequestHandler) -> int:
        with self._lock:  # after _spawn has recorded the start (see there)
            if self._first_next_at is None and self._spawned_at is not None:
                self._first_next_at = time.monotonic()
                init = self._first_next_at - self._spawned_at
                if self.starts:
                    self.starts[-1]["init_duration_s"] = init
                    self.starts[-1]["init_cpu_s"] = _cpu_seconds(self.starts[-1]["pid"])
                if init > self.init_timeout_s:
                    self.violations.append(ProtocolViolation(time.time(), h.path, 0,
                                                             f"init took {init:.2f}s (> {self.init_timeout_s}s)"))
        while True:
            if self._closing.is_set():
                return self._send(h, 500, {"errorMessage": "Runtime API shutting down",
                                           "errorType": "Runtime.Shutdown"})
            if self._client_gone(h):
                # The process that asked was killed: do not let this thread take an event.
                h.close_connection = True
                return 499
            try:
                inv = self._queue.get(timeout=0.25)
            except queue.Empty:
                continue
            if inv.done.is_set():      # already failed (process death / timeout): skip it
                continue
            if self._client_gone(h):
                self._queue.put(inv)
                h.close_connection = True
                return 499
            with self._lock:
                inv.delivered_at = time.monotonic()
            try:
                return self._send(h, 200, body=inv.body, headers={
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
                    "Lambda-Runtime-Trace-Id": inv.trace_id,
                })
            except OSError:
                with self._lock:
                    inv.delivered_at = None
                if not inv.done.is_set():
                    self._queue.put(inv)
                raise

    @staticmethod
    def _client_gone(h: BaseHTTPRequestHandler) -> bool:
        try:
            readable, _, _ = select.select([h.connection], [], [], 0)
            if not readable:
                return False
            return h.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _lookup(self, h: BaseHTTPRequestHandler, rid: str) -> Invocation | None:
        with self._lock:
            inv = self._by_id.get(rid)
        if inv is None or inv.delivered_at is None:
            self.violations.append(ProtocolViolation(time.time(), h.path, 400, "unknown request id"))
            self._send(h, 400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
            return None
        if inv.done.is_set():
            self.violations.append(ProtocolViolation(time.time(), h.path, 400,
                                                     "invocation already answered / timed out"))
            self._send(h, 400, {"errorMessage": "Invalid state transition",
                                "errorType": "InvalidStateTransition"})
            return None
        return inv

    def _response(self, h: BaseHTTPRequestHandler, rid: str, body: bytes) -> int:
        inv = self._lookup(h, rid)
        if inv is None:
            return 400
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("utf-8", "replace")
        self._finish(inv, InvokeResult(ok=True, payload=payload))
        return self._send(h, 202, {"status": "OK"})

    @staticmethod
    def _error_fields(body: bytes) -> dict[str, Any] | None:
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        if not isinstance(obj.get("errorType"), str) or not isinstance(obj.get("errorMessage"), str):
            return None
        st = obj.get("stackTrace", [])
        if st is not None and not isinstance(st, list):
            return None
        return obj

    def _error(self, h: BaseHTTPRequestHandler, rid: str, body: bytes) -> int:
        inv = self._lookup(h, rid)
        if inv is None:
            return 400
        obj = self._error_fields(body)
        header = h.headers.get("Lambda-Runtime-Function-Error-Type")
        if obj is None:
            # Stricter than Lambda on purpose: the contract says the body is
            # {"errorMessage", "errorType", "stackTrace"}.
            self.violations.append(ProtocolViolation(time.time(), h.path, 400,
                                                     "error body is not JSON with errorType/errorMessage"))
            self._finish(inv, InvokeResult(ok=False, error=("LocalStack.InvalidErrorBody",
                                                            body[:500].decode("utf-8", "replace")),
                                           error_header=header))
            return self._send(h, 400, {"errorMessage": "error body must be JSON with errorType and errorMessage",
                                       "errorType": "InvalidErrorShape"})
        self._finish(inv, InvokeResult(ok=False, error=(obj["errorType"], obj["errorMessage"]),
                                       error_header=header, error_body=obj))
        return self._send(h, 202, {"status": "OK"})

    def _init_error(self, h: BaseHTTPRequestHandler, body: bytes) -> int:
        obj = self._error_fields(body)
        header = h.headers.get("Lambda-Runtime-Function-Error-Type")
        self.init_errors.append({"at": time.time(), "body": obj if obj is not None else body.decode("utf-8", "replace"),
                                 "header": header, "pid": self.proc.pid if self.proc else None})
        if obj is None:
            self.violations.append(ProtocolViolation(time.time(), h.path, 400,
                                                     "init error body is not JSON with errorType/errorMessage"))
        # The invocation that triggered this cold start fails with the init error.
        with self._lock:
            pending = [i for i in self._by_id.values() if not i.done.is_set()]
        for inv in pending:
            et = obj["errorType"] if obj else "Runtime.InitError"
            em = obj["errorMessage"] if obj else "init error"
            self._finish(inv, InvokeResult(ok=False, error=(et, em), error_header=header, error_body=obj))
        if obj is None:
            return self._send(h, 400, {"errorMessage": "error body must be JSON with errorType and errorMessage",
                                       "errorType": "InvalidErrorShape"})
        return self._send(h, 202, {"status": "OK"})


class FunctionPool:
    """Lambda's concurrency: several sandboxes of the function, each a RuntimeAPI with its own
    process. An invocation goes to an idle sandbox (the oldest first, so invocations made one
    after another keep using one warm process); when none is idle a new one is started, up to
    `max_concurrency`; beyond that the invocation waits for one to become idle (Lambda would
    queue an asynchronous invocation the same way).

    It answers what a single RuntimeAPI answers; its records are those of every sandbox."""

    def __init__(self, *, max_concurrency: int, **runtime_kw: Any):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._runtime_kw = runtime_kw
        self.sandboxes: list[RuntimeAPI] = []
        self._busy: set[int] = set()            # indexes into sandboxes
        self._idle = threading.Condition()
        self._closed = False

    def start(self) -> None:
        with self._idle:
            self._add_sandbox()

    def close(self) -> None:
        with self._idle:
            self._closed = True
            sandboxes = list(self.sandboxes)
        for sandbox in sandboxes:
            sandbox.close()

    def _add_sandbox(self) -> int:
        sandbox = RuntimeAPI(**self._runtime_kw)
        sandbox.start()
        self.sandboxes.append(sandbox)
        return len(self.sandboxes) - 1

    def invoke(self, event: Any, timeout_s: float | None = None) -> InvokeResult:
        with self._idle:
            while True:
                if self._closed:    # the first sandbox answers Runtime.Shutdown
                    return self.sandboxes[0].invoke(event, timeout_s)
                index = next((i for i in range(len(self.sandboxes)) if i not in self._busy), None)
                if index is None and len(self.sandboxes) < self.max_concurrency:
                    index = self._add_sandbox()
                if index is not None:
                    break
                self._idle.wait()
            self._busy.add(index)
        try:
            return self.sandboxes[index].invoke(event, timeout_s)
        finally:
            with self._idle:
                self._busy.discard(index)
                self._idle.notify()

    def kill_function(self) -> None:
        """SIGKILL the process of each sandbox serving an invocation now (the fault suite's kill
        points, whose invocations run one at a time)."""
        with self._idle:
            serving = [self.sandboxes[i] for i in self._busy]
        for sandbox in serving:
            sandbox.kill_function()

    def cold_start(self) -> None:
        """Every sandbox starts a fresh process for its next invocation, as after a deployment: what
        a warm process keeps across invocations (the SSM documents it proved) is gone."""
        with self._idle:
            command = list(self._runtime_kw["command"])
        self.replace_command(command)

    def replace_command(self, command: list[str]) -> None:
        """Every sandbox, and every one started later, runs `command` from its next invocation on."""
        with self._idle:
            self._runtime_kw["command"] = list(command)
            sandboxes = list(self.sandboxes)
        for sandbox in sandboxes:
            sandbox.replace_command(command)

    # What one sandbox answers, for the first (the one sequential invocations use).
    @property
    def address(self) -> str:
        return self.sandboxes[0].address

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.sandboxes[0].proc

    def process_alive(self) -> bool:
        return self.sandboxes[0].process_alive()

    # Records: every sandbox's.
    def _all(self, name: str) -> list[Any]:
        return [item for sandbox in list(self.sandboxes) for item in getattr(sandbox, name)]

    @property
    def invocations(self) -> list[Invocation]:
        """Every sandbox's, in the order they were queued (as one sandbox's are), so that a count
        taken before some invocations still marks where they begin."""
        return sorted(self._all("invocations"), key=lambda inv: inv.queued_at)

    @property
    def starts(self) -> list[dict[str, Any]]:
        return self._all("starts")

    @property
    def deaths(self) -> list[dict[str, Any]]:
        return self._all("deaths")

    @property
    def init_errors(self) -> list[dict[str, Any]]:
        return self._all("init_errors")

    @property
    def violations(self) -> list[ProtocolViolation]:
        return self._all("violations")

    @property
    def requests(self) -> list[tuple[float, str, str, int]]:
        return self._all("requests")
