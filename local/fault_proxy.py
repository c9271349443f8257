"""The fault suite's AWS fault proxy: an HTTP proxy on loopback between the function and moto.

The function's AWS_ENDPOINT_URL points here. Every request is forwarded to moto unchanged (the
Host header too: it is part of the SigV4 signature moto checks) and recorded in order as a `Call`
(service and operation, from X-Amz-Target for JSON 1.1 or Action= for the Query protocol).
Rules, matched by operation and occurrence, replace what the function gets:

    proxy.fail("PutSecretValue", "503")                    # the next PutSecretValue only
    proxy.fail("SendCommand", "slow", times=None, delay_s=40)   # every SendCommand, persistently
    proxy.kill("SendCommand", occurrence=1, when="after")  # SIGKILL the function once moto answered

Fault kinds (FAULTS): "500", "503", "429", "throttle" (each an error in the protocol's own shape:
JSON `__type` for Secrets Manager and SSM, XML for SNS), "reset" (the connection is reset, the
request never reaches moto), "slow" (moto does the work, the answer is held `delay_s`, longer
than the invocation deadline, or until the function gives up and closes the connection).
Kills: "before" forwarding the call, or "after" moto answered it but before the answer reaches the
function; `kill_function` (the Runtime API's) does the killing and the Runtime API records the death.

Quotas: `proxy.quotas = Quotas(...)` (local/quotas.py) meters calls with account-wide token buckets,
before any rule; a call its bucket refuses never reaches moto and gets AWS's ThrottlingException.

Only the standard library is used (and the gate protocol of local/interleaving.py).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from local.interleaving import Withdrawn
from local.quotas import Quotas

FAULTS = ("500", "503", "429", "throttle", "reset", "slow")
KILLS = ("before", "after")
THROTTLED_BY_QUOTA = "throttled by quota"     # Call.outcome of a call an account quota refused

# What a service answers for each error fault: (HTTP status, error code). SNS (Query protocol)
# has its own codes; Secrets Manager and SSM name their 500s differently.
_ERRORS = {
    "secretsmanager": {"500": (500, "InternalServiceError"), "503": (503, "ServiceUnavailable"),
                       "429": (429, "TooManyRequestsException"), "throttle": (400, "ThrottlingException")},
    "ssm": {"500": (500, "InternalServerError"), "503": (503, "ServiceUnavailable"),
            "429": (429, "TooManyRequestsException"), "throttle": (400, "ThrottlingException")},
    "sns": {"500": (500, "InternalError"), "503": (503, "ServiceUnavailable"),
            "429": (429, "Throttled"), "throttle": (400, "Throttling")},
}
# Headers that belong to one hop, not to the request: never forwarded (none of them is signed).
_HOP_BY_HOP = {"connection", "keep-alive", "expect", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-connection", "proxy-authorization"}


@dataclass
class Call:
    index: int                 # 1-based, in arrival order since the proxy started
    service: str               # secretsmanager | ssm | sns | ...
    operation: str
    at: float
    outcome: str = "pending"   # the status moto answered, or the fault/kill applied


@dataclass
class Rule:
    operation: str             # which calls it matches ("*": every call)
    action: str                # a FAULTS kind, or "kill-before" / "kill-after"
    skip: int = 0              # matching calls let through before it applies
    times: int | None = 1      # matching calls it applies to; None: every one (persistent)
    delay_s: float = 0.0       # "slow": how long the answer is held
    hits: int = 0              # calls it applied to so far
    seen: int = 0              # matching calls seen so far

    def take(self, operation: str) -> bool:
        """Whether this rule applies to the next call of `operation` (and count it)."""
        if self.operation not in ("*", operation):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


class FaultProxy:
    def __init__(self, upstream_url: str, kill_function: Callable[[], None]):
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._kill_function = kill_function
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.rules: list[Rule] = []
        # An interleaving gate (local/interleaving.py) that holds calls until a scheduler releases
        # them; None: every call goes through at once.
        self.gate = None
        # Account-wide rate quotas (local/quotas.py); None: no call is metered.
        self.quotas: Quotas | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server(("127.0.0.1", 0), Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-fault-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------ rules
    def fail(self, operation: str, kind: str, *, times: int | None = 1, skip: int = 0,
             delay_s: float = 0.0) -> Rule:
        """Inject `kind` (one of FAULTS) into calls of `operation`: `times` of them (None: all)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}: one of {FAULTS}")
        if kind == "slow" and delay_s <= 0:
            raise ValueError("a slow answer needs delay_s, longer than the invocation deadline")
        return self._add(Rule(operation, kind, skip=skip, times=times, delay_s=delay_s))

    def kill(self, operation: str, occurrence: int = 1, when: str = "before") -> Rule:
        """SIGKILL the function at the `occurrence`-th call of `operation` from now, `when` is
        "before" forwarding it or "after" moto answered it (the answer never reaches the function)."""
        if when not in KILLS:
            raise ValueError(f"when must be one of {KILLS}")
        return self._add(Rule(operation, f"kill-{when}", skip=occurrence - 1, times=1))

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Back to plain pass-through."""
        with self._lock:
            self.rules.clear()

    def operations_since(self, index: int) -> list[str]:
        """Operations of the calls after the first `index` ones (len(calls) taken earlier)."""
        with self._lock:
            return [c.operation for c in self.calls[index:]]

    # ------------------------------------------------------------------ per request
    def _arrived(self, service: str, operation: str) -> tuple[Call, Rule | None]:
        with self._lock:
            call = Call(index=len(self.calls) + 1, service=service, operation=operation, at=time.time())
            self.calls.append(call)
            # Every rule sees every call (occurrences count even when an earlier rule applies).
            applying = [r for r in self.rules if r.take(operation)]
            return call, (applying[0] if applying else None)

    def _forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
                 ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=300)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders()
                                 if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"], data
        finally:
            conn.close()


def _operation(headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """(service, operation) of a request: X-Amz-Target for JSON 1.1, Action= for the Query protocol."""
    target = headers.get("x-amz-target", "")
    if target:
        prefix, _, op = target.partition(".")
        return ("ssm" if prefix == "AmazonSSM" else prefix.lower()), op
    scope = headers.get("authorization", "").partition("Credential=")[2].split(",")[0].split("/")
    service = scope[3] if len(scope) > 3 else "?"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
    return service, action


def _error_answer(service: str, kind: str, json_protocol: bool, message: str | None = None
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
    status, code = _ERRORS.get(service, _ERRORS["ssm"])[kind]
    request_id = str(uuid.uuid4())
    message = message or f"injected by the fault proxy ({kind})"
    if json_protocol:
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)], body
    fault_type = "Receiver" if status >= 500 else "Sender"
    body = (f'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>{fault_type}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A function killed or timed out mid-call is what the suite does on purpose.
        if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"     # keep-alive, as libcurl expects, and Expect: 100-continue

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._proxy("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._proxy("GET")

    def _proxy(self, method: str) -> None:
        proxy = self.owner
        # The function sends every body with a Content-Length (libcurl, known-size POSTs).
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        lower = {k.lower(): v for k, v in self.headers.items()}
        service, operation = _operation(lower, body)
        call, rule = proxy._arrived(service, operation)
        action = rule.action if rule else None
        quotas = proxy.quotas
        if quotas is not None and not quotas.admit(service, operation):
            # What SSM and Secrets Manager answer past their rate: the botocore users' "Rate exceeded".
            status, headers, answer = _error_answer(service, "throttle", "x-amz-target" in lower, message="Rate exceeded")
            call.outcome = THROTTLED_BY_QUOTA
            return self._answer(status, headers, answer)

        if action == "kill-before":
            call.outcome = "killed before forwarding"
            proxy._kill_function()
            return self._drop()
        if action == "reset":
            call.outcome = "reset"
            return self._reset()
        if action in ("500", "503", "429", "throttle"):
            status, headers, answer = _error_answer(service, action, "x-amz-target" in lower)
            call.outcome = f"injected {status} ({action})"
            return self._answer(status, headers, answer)

        forwarded = [(k, v) for k, v in self.headers.items()
                     if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        gate = proxy.gate
        try:
            ticket = gate.arrive(operation, body, self.client_address[1], self._client_gone) if gate is not None else None
        except Withdrawn:
            call.outcome = "withdrawn: the client gave up while the interleaving gate held it"
            return self._drop()
        try:
            status, headers, answer = proxy._forward(method, self.path, forwarded, body)
        except BaseException:
            if ticket is not None:
                gate.answered(ticket, operation, b"")
            raise
        if ticket is not None:
            gate.answered(ticket, operation, answer)
        call.outcome = str(status)
        if action == "kill-after":
            call.outcome += ", then killed before the answer"
            proxy._kill_function()
            return self._drop()
        if action == "slow":
            call.outcome += f", held {rule.delay_s:.0f}s"
            if not self._wait_while_client_waits(rule.delay_s):
                call.outcome += " (the function gave up first)"
                return self._drop()
        self._answer(status, headers, answer)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)     # moto's own Server and Date headers, not a second pair
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _wait_while_client_waits(self, seconds: float) -> bool:
        """Hold the answer up to `seconds`; False as soon as the client closed its connection."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.5))
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
        return True

    def _client_gone(self) -> bool:
        """Whether the client closed its connection (it sends nothing else while it waits)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
