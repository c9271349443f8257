"""SSM Run Command for the local stack: moto records commands, this runs them.

moto 5.2.1's SendCommand stores the command and reports every invocation as an immediate
`Success` with empty output; it implements neither ListCommandInvocations nor CancelCommand.
`SSMEmulator.install()` patches moto in-process so that:

  - SendCommand rejects what SSM rejects (unknown document, a DocumentVersion that is not one of
    the document's registered versions (InvalidDocumentVersion), undeclared parameter or a value
    failing its allowedPattern, more than 50 instance ids, Comment over 100 characters, bad
    TimeoutSeconds, malformed or unknown instance id), then runs the document's script for every
    instance in a background thread with `local.ssm_runner.run_document`, in that instance's
    registered environment (database sockets + the instance role's temporary credentials); the
    version that runs is the one named, else the default (moto 5.2.1 drops DocumentVersion: the
    SendCommand response is patched to pass it on), and `commands` records both;
  - GetCommandInvocation answers InvocationDoesNotExist for the first `invocation_delay_s` after
    SendCommand (as real SSM does), then InProgress, then the real Status / ResponseCode /
    StandardOutputContent / StandardErrorContent (cut at 24,000 / 8,000 characters as the agent
    cuts them, the kept text ending in "--output truncated--");
  - ListCommandInvocations is consistent with it (empty list at first);
  - CancelCommand stops a running invocation (status Cancelled);
  - per-instance fault hooks let tests lie like a broken host or agent would: an invocation that
    ends Failed / TimedOut / Cancelled / Undeliverable, stays unknown for some reads, never
    answers, loses its result line, or prints more than SSM keeps.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from local.moto_support import Patches
from local.ssm_runner import MAX_STDERR_LENGTH, MAX_STDOUT_LENGTH, InvalidDocumentVersion, document_version, truncate_output

STDOUT_LIMIT = MAX_STDOUT_LENGTH
STDERR_LIMIT = MAX_STDERR_LENGTH
LIST_OUTPUT_LIMIT = 2_500
INSTANCE_ID_RE = re.compile(r"^(i-([0-9a-zA-Z]{8}|[0-9a-zA-Z]{17})|mi-[0-9a-zA-Z]{17})$")
MARKER_VAR = "LOCAL_SSM_INVOCATION"
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "DeliveryTimedOut", "Undeliverable"}

# How an invocation that a fault ends as `name` looks: (Status, StatusDetails, ResponseCode, whether
# the script ran first). Where the script can have run, it does: the worst case, a host that
# changed the password and then reported a failure.
ENDINGS: dict[str, tuple[str, str, int, bool]] = {
    "Failed": ("Failed", "Failed", 1, True),
    "TimedOut": ("TimedOut", "ExecutionTimedOut", 137, True),        # the agent's kill: 128 + SIGKILL
    "Cancelled": ("Cancelled", "Cancelled", -1, True),               # someone else's CancelCommand
    "Undeliverable": ("Failed", "Undeliverable", -1, False),         # the agent never got it
    "DeliveryTimedOut": ("TimedOut", "DeliveryTimedOut", -1, False),
}


@dataclass
class Fault:
    """How an instance misbehaves. `actions` limits it to commands whose Action parameter is in
    the set; `times` makes it apply to that many commands only."""
    strip_result_line: bool = False     # SSM says Success/0 but the ROTATOR-RESULT line is gone
    never_answer: bool = False          # invocation stays InProgress until cancelled
    run_before_hanging: bool = False    # with never_answer: the script really runs, the answer never comes
    end_as: str | None = None           # a key of ENDINGS: the invocation ends so, whatever the script did
    unknown_reads: int = 0              # the first reads of the invocation answer "it does not exist"
    unknown_views: frozenset[str] = frozenset({"get", "list"})   # ... through these APIs
    extra_stdout: int = 0               # characters the host prints before the script's own output
    hold_until: threading.Barrier | None = None   # wait until this many invocations are held, then run
    actions: frozenset[str] | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.end_as is not None and self.end_as not in ENDINGS:
            raise ValueError(f"end_as must be one of {sorted(ENDINGS)}")

    def applies(self, action: str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return self.actions is None or action in self.actions


@dataclass
class HostInstance:
    instance_id: str
    platform: str                    # "Linux" | "Windows"
    env: dict[str, str]              # the complete environment scripts get on this host
    ping_status: str = "Online"      # what DescribeInstanceInformation reports: Online | ConnectionLost | Inactive
    agent_version: str = "3.3.3050.0"  # and the agent's version: one that sets SSM_<Name> variables (3.3.2746.0 on)
    # A host simulated in memory (local/fleet.py) instead of the document's script: called with the
    # command's parameters and its cancel event, it answers (Status, ResponseCode, stdout, stderr).
    stand_in: Callable[[dict[str, list[str]], threading.Event], tuple[str, int, str, str]] | None = None


@dataclass
class InvocationState:
    command_id: str
    instance_id: str
    document_name: str
    plugin_name: str
    parameters: dict[str, list[str]]
    comment: str
    requested_at: dt.datetime
    visible_after: float                    # monotonic time before which it "does not exist"
    status: str = "Pending"
    status_details: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    fault: Fault | None = None              # taken for this invocation at SendCommand
    document_version: str = "1"             # the version that runs (the default unless SendCommand named one)
    faults: list[str] = field(default_factory=list)   # which of its lies were told
    note: str = ""
    full_stdout: str = ""                   # all the host printed, before SSM's cut (debugging, leak checks)
    unknown_reads: int = 0                  # reads left that answer "does not exist" (fault.unknown_reads)


@dataclass
class CommandRecord:
    command_id: str
    document_name: str
    parameters: dict[str, list[str]]
    instance_ids: list[str]
    comment: str
    timeout_seconds: int | None
    requested_at: dt.datetime
    invocations: dict[str, InvocationState] = field(default_factory=dict)
    document_version: str | None = None     # the DocumentVersion SendCommand named (None: none)
    ran_version: str = "1"                  # the version that ran: the named one, else the default

    @property
    def action(self) -> str | None:
        vals = self.parameters.get("Action") or []
        return vals[0] if vals else None


def _iso(t: dt.datetime | None) -> str:
    if t is None:
        return ""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _elapsed(a: dt.datetime | None, b: dt.datetime | None) -> str:
    if a is None:
        return ""
    end = b or dt.datetime.now(dt.UTC)
    return f"PT{max(0.0, (end - a).total_seconds()):.3f}S"


def host_chatter(n: int) -> str:
    """`n` characters of harmless lines, as a verbose host (a login banner, a chatty tool) prints."""
    line = "host: a harmless line of chatter that no script asked for, padding the output\n"
    return (line * (n // len(line) + 1))[:n]


def strip_result_lines(stdout: str) -> str:
    return "".join(line for line in stdout.splitlines(keepends=True)
                   if not line.lstrip().startswith("ROTATOR-RESULT"))


class CommandLineSampler:
    """While any host script runs, reads every process's command line (/proc/*/cmdline) every
    few milliseconds and keeps each distinct one: what anyone on the host could have seen with
    `ps`, for the leak checks."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.seen: set[str] = set()
        self._running = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CommandLineSampler:
        with self._lock:
            self._running += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="cmdline-sampler", daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._running -= 1

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._running == 0:
                    self._thread = None
                    return
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        raw = fh.read()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace"))
            time.sleep(self.interval_s)


class SSMEmulator:
    def __init__(self, *, run_document: Callable[..., Any], validate_parameters: Callable[..., Any],
                 invalid_parameters_exc: type[BaseException] | tuple[type[BaseException], ...],
                 invocation_delay_s: float = 0.3, default_execution_timeout_s: int = 3600):
        self._run_document = run_document
        self._validate_parameters = validate_parameters
        self._invalid_exc = invalid_parameters_exc
        self.invocation_delay_s = invocation_delay_s
        self.default_execution_timeout_s = default_execution_timeout_s
        self.instances: dict[str, HostInstance] = {}
        self.faults: dict[str, Fault] = {}
        self.gate = None                    # local.interleaving.Gate while a schedule is explored
        self.commands: list[CommandRecord] = []
        self.rejected: list[dict[str, Any]] = []
        self._by_id: dict[str, CommandRecord] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._patches = Patches()
        self._request = threading.local()      # the DocumentVersion of the SendCommand being handled
        self._run_kwargs = self._runner_cancel_support()
        self.command_lines = CommandLineSampler()

    # ------------------------------------------------------------------ public API
    def register_instance(self, instance_id: str, platform: str, env: dict[str, str]) -> None:
        if not INSTANCE_ID_RE.match(instance_id):
            raise ValueError(f"not an instance id: {instance_id!r}")
        if platform not in ("Linux", "Windows"):
            raise ValueError("platform must be Linux or Windows")
        self.instances[instance_id] = HostInstance(instance_id, platform, dict(env))

    def register_stand_in(self, instance_id: str, stand_in: Callable[..., tuple[str, int, str, str]]) -> None:
        """A Linux host whose commands `stand_in` answers in memory (the fleet simulator's hosts)."""
        self.register_instance(instance_id, "Linux", {})
        self.instances[instance_id].stand_in = stand_in

    def set_ping_status(self, instance_id: str, status: str) -> None:
        """What DescribeInstanceInformation says of the agent (commands still run: a test of the report)."""
        self.instances[instance_id].ping_status = status

    def set_agent_version(self, instance_id: str, version: str) -> None:
        """What DescribeInstanceInformation says of the agent's version (commands still run as a current
        agent runs them: a test of the report)."""
        self.instances[instance_id].agent_version = version

    def set_fault(self, instance_id: str, **kw: Any) -> Fault:
        for key in ("actions", "unknown_views"):
            if kw.get(key) is not None:
                kw[key] = frozenset([kw[key]] if isinstance(kw[key], str) else kw[key])
        f = Fault(**kw)
        self.faults[instance_id] = f
        return f

    def clear_fault(self, instance_id: str | None = None) -> None:
        if instance_id is None:
            self.faults.clear()
        else:
            self.faults.pop(instance_id, None)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until no script is running (hanging invocations excepted)."""
        end = time.monotonic() + timeout_s
        for t in list(self._threads):
            t.join(max(0.0, end - time.monotonic()))
        return all(not t.is_alive() for t in self._threads)

    def cancel_all(self) -> None:
        with self._lock:
            invs = [i for c in self.commands for i in c.invocations.values()]
        for inv in invs:
            inv.cancel.set()

    # ------------------------------------------------------------------ moto patching
    def install(self) -> None:
        from moto.ssm.models import SimpleSystemManagerBackend
        from moto.ssm.responses import SimpleSystemManagerResponse

        emu = self
        orig_send = SimpleSystemManagerBackend.send_command

        def send_command(backend: Any, **kw: Any) -> Any:
            kw.setdefault("document_version", getattr(emu._request, "document_version", None))
            return emu._send_command(backend, orig_send, **kw)

        orig_send_response = SimpleSystemManagerResponse.send_command

        def send_command_response(resp: Any) -> Any:
            # moto's response does not pass DocumentVersion to the backend: hand it over here.
            emu._request.document_version = resp._get_param("DocumentVersion")
            try:
                return orig_send_response(resp)
            finally:
                emu._request.document_version = None

        def get_command_invocation(backend: Any, command_id: str, instance_id: str,
                                   plugin_name: str | None) -> dict[str, Any]:
            return emu._get_command_invocation(command_id, instance_id, plugin_name)

        orig_list_commands = SimpleSystemManagerBackend.list_commands

        def list_commands(backend: Any, command_id: str | None, instance_id: str | None) -> Any:
            cmds = orig_list_commands(backend, command_id, instance_id)
            for c in cmds:
                emu._refresh_command(c)
            return cmds

        def list_command_invocations(resp: Any) -> Any:
            from moto.core.responses import ActionResult
            return ActionResult(emu._list_command_invocations(
                resp._get_param("CommandId"), resp._get_param("InstanceId"),
                bool(resp._get_param("Details", False))))

        def cancel_command(resp: Any) -> Any:
            from moto.core.responses import ActionResult
            emu._cancel_command(resp._get_param("CommandId"), resp._get_param("InstanceIds") or [])
            return ActionResult({})

        def describe_instance_information(resp: Any) -> Any:
            # moto 5.2.1 answers from EC2 instances only; the registered hosts are our managed instances.
            from moto.core.responses import ActionResult
            return ActionResult(emu._describe_instance_information(resp._get_param("Filters") or []))

        self._patch(SimpleSystemManagerResponse, "describe_instance_information", describe_instance_information)
        self._patch(SimpleSystemManagerBackend, "send_command", send_command)
        self._patch(SimpleSystemManagerResponse, "send_command", send_command_response)
        self._patch(SimpleSystemManagerBackend, "get_command_invocation", get_command_invocation)
        self._patch(SimpleSystemManagerBackend, "list_commands", list_commands)
        self._patch(SimpleSystemManagerResponse, "list_command_invocations", list_command_invocations)
        self._patch(SimpleSystemManagerResponse, "cancel_command", cancel_command)

    def uninstall(self) -> None:
        self.cancel_all()
        self._patches.undo()
        self.wait_idle(10)

    def _patch(self, owner: Any, name: str, new: Any) -> None:
        self._patches.set(owner, name, new)

    def _describe_instance_information(self, filters: list[dict[str, Any]]) -> dict[str, Any]:
        wanted: set[str] | None = None
        for f in filters:
            if f.get("Key") == "InstanceIds":
                wanted = set(f.get("Values") or [])
            else:
                raise self._err("InvalidFilterKey", f"filter key {f.get('Key')!r} is not supported here")
        names = {"Linux": "Amazon Linux", "Windows": "Microsoft Windows Server 2022 Datacenter"}
        return {"InstanceInformationList": [
            {"InstanceId": h.instance_id, "PingStatus": h.ping_status, "PlatformType": h.platform,
             "PlatformName": names[h.platform], "AgentVersion": h.agent_version, "ResourceType": "EC2Instance"}
            for h in self.instances.values() if wanted is None or h.instance_id in wanted]}

    # ------------------------------------------------------------------ SendCommand
    @staticmethod
    def _err(code: str, message: str) -> BaseException:
        from moto.ssm.exceptions import SSMException
        return SSMException(code, message)

    def _reject(self, code: str, message: str, **ctx: Any) -> BaseException:
        self.rejected.append({"at": time.time(), "code": code, "message": message, **ctx})
        return self._err(code, message)

    @staticmethod
    def _document(backend: Any, name: str | None, version: str | None = None) -> tuple[Any, dict[str, Any]] | None:
        """The document version a SendCommand runs (None: no such document); InvalidDocumentVersion
        when `version` names none of its registered versions."""
        docs = backend._documents.get(name or "")
        if not docs:
            return None
        doc = docs.versions[document_version(version, docs.versions, docs.default_version, docs.latest_version)]
        content = getattr(doc, "content_json", None)
        if not isinstance(content, dict):
            content = json.loads(doc.content) if doc.document_format == "JSON" else yaml.safe_load(doc.content)
        return doc, content

    def _send_command(self, backend: Any, orig: Callable[..., Any], **kw: Any) -> Any:
        requested_version = kw.pop("document_version", None)
        name = kw.get("document_name")
        params: dict[str, Any] = kw.get("parameters") or {}
        instance_ids: list[str] = list(kw.get("instance_ids") or [])
        comment = kw.get("comment") or ""
        timeout = kw.get("timeout_seconds")
        ctx = {"document": name, "document_version": requested_version, "instance_ids": instance_ids, "parameters": params}

        if len(comment) > 100:
            raise self._reject("ValidationException",
                               "1 validation error detected: Value at 'comment' failed to satisfy "
                               "constraint: Member must have length less than or equal to 100", **ctx)
        if len(instance_ids) > 50:
            raise self._reject("ValidationException",
                               "1 validation error detected: Value at 'instanceIds' failed to satisfy "
                               "constraint: Member must have length less than or equal to 50", **ctx)
        if timeout is not None and not (30 <= int(timeout) <= 2592000):
            raise self._reject("ValidationException",
                               "1 validation error detected: Value at 'timeoutSeconds' failed to satisfy "
                               "constraint: Member must have value between 30 and 2592000", **ctx)
        if kw.get("targets"):
            raise self._reject("ValidationException",
                               "local stack: Targets are not supported, send InstanceIds", **ctx)
        if not instance_ids:
            raise self._reject("ValidationException",
                               "Either InstanceIds or Targets must be specified", **ctx)
        for iid in instance_ids:
            if not isinstance(iid, str) or not INSTANCE_ID_RE.match(iid):
                raise self._reject("ValidationException",
                                   "1 validation error detected: Value at 'instanceIds' failed to satisfy "
                                   "constraint: Member must satisfy regular expression pattern: "
                                   r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)", **ctx)
        try:
            found = self._document(backend, name, requested_version)
        except InvalidDocumentVersion as e:
            raise self._reject("InvalidDocumentVersion", e.message, **ctx) from None
        if found is None:
            raise self._reject("InvalidDocument", "The specified document does not exist.", **ctx)
        doc, content = found
        if getattr(doc, "document_type", "Command") != "Command":
            raise self._reject("InvalidDocument", f"Document {name} is not a Command document.", **ctx)
        for key, value in params.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self._reject("InvalidParameters", f"Parameter {key} must be a list of strings.", **ctx)
        try:
            self._validate_parameters(content, params)
        except self._invalid_exc as e:  # type: ignore[misc]
            raise self._reject("InvalidParameters", str(e) or "Invalid parameters", **ctx) from None
        unknown = [i for i in instance_ids if i not in self.instances]
        if unknown:
            raise self._reject("InvalidInstanceId",
                               f"Instances {unknown} not in a valid state for account "
                               f"{backend.account_id}", **ctx)

        command = orig(backend, **kw)   # moto records it (ListCommands, ...)
        steps = content.get("mainSteps") or []
        plugin = steps[0].get("name", "") if steps else ""
        action = steps[0].get("action", "") if steps else ""
        step_timeout = None
        if steps:
            step_timeout = (steps[0].get("inputs") or {}).get("timeoutSeconds")
        exec_timeout = int(step_timeout or self.default_execution_timeout_s)
        now = dt.datetime.now(dt.UTC)
        rec = CommandRecord(command.command_id, name, {k: list(v) for k, v in params.items()},
                            list(instance_ids), comment, timeout, now, document_version=requested_version,
                            ran_version=str(doc.document_version))
        visible = time.monotonic() + self.invocation_delay_s
        for iid in dict.fromkeys(instance_ids):
            fault = self._take_fault(iid, rec.action)
            rec.invocations[iid] = InvocationState(
                command_id=rec.command_id, instance_id=iid, document_name=name, plugin_name=plugin,
                parameters=rec.parameters, comment=comment, requested_at=now, visible_after=visible,
                fault=fault, unknown_reads=fault.unknown_reads if fault else 0, document_version=rec.ran_version)
        with self._lock:
            self.commands.append(rec)
            self._by_id[rec.command_id] = rec
        for iid, inv in rec.invocations.items():
            t = threading.Thread(target=self._run_one, name=f"ssm-{rec.command_id[:8]}-{iid}",
                                 args=(inv, content, action, exec_timeout), daemon=True)
            self._threads.append(t)
            t.start()
        command.status = command.status_details = "Pending"
        command.completed_count = command.error_count = 0
        return command

    # ------------------------------------------------------------------ running
    def _runner_cancel_support(self) -> dict[str, str]:
        """Which keyword (if any) local.ssm_runner.run_document takes to stop a running script."""
        try:
            sig = inspect.signature(self._run_document)
        except (TypeError, ValueError):
            return {}
        for name in ("cancel_event", "cancel", "stop_event"):
            if name in sig.parameters:
                return {"cancel": name}
        return {}

    def _take_fault(self, iid: str, action: str | None) -> Fault | None:
        with self._lock:
            f = self.faults.get(iid)
            if f is None or not f.applies(action):
                return None
            if f.times is not None:
                f.times -= 1
            return f

    def _run_one(self, inv: InvocationState, content: dict[str, Any], action: str, exec_timeout: int) -> None:
        gate = self.gate
        if gate is None:
            return self._run_invocation(inv, content, action, exec_timeout)
        # The interleaving gate (local/interleaving.py) holds the command until its scheduler lets
        # it run, and is told when it ended; it may make the host report a failure after the script ran.
        ending = gate.hold_command(inv)
        if ending is not None:
            inv.fault = Fault(end_as=ending)
        try:
            self._run_invocation(inv, content, action, exec_timeout)
        finally:
            gate.command_finished(inv)

    def _run_invocation(self, inv: InvocationState, content: dict[str, Any], action: str, exec_timeout: int) -> None:
        host = self.instances[inv.instance_id]
        fault = inv.fault
        inv.status = inv.status_details = "InProgress"
        inv.started_at = dt.datetime.now(dt.UTC)
        try:
            if fault and fault.hold_until is not None:
                # Every invocation that holds the barrier is in progress at one moment: for a test of
                # concurrency that must not depend on the machine's speed. A broken or timed-out
                # barrier lets it run anyway, and the test sees fewer at once.
                inv.faults.append("held")
                try:
                    fault.hold_until.wait(timeout=60)
                except threading.BrokenBarrierError:
                    pass
            if fault and fault.never_answer:
                inv.faults.append("never_answer")
                if fault.run_before_hanging:
                    self._execute(inv, content, host, exec_timeout)
                inv.status = inv.status_details = "InProgress"
                inv.response_code = -1
                inv.stdout = inv.stderr = ""
                inv.ended_at = None
                inv.cancel.wait()
                self._end(inv, "Cancelled", "Cancelled", -1, "", "")
                return
            if fault and fault.end_as:
                inv.faults.append(fault.end_as)
                status, details, code, script_runs = ENDINGS[fault.end_as]
                out = err = ""
                if script_runs:
                    _, _, out, err = self._execute(inv, content, host, exec_timeout)
                self._end(inv, status, details, code, out, err)
                return
            if action == "aws:runShellScript" and host.platform == "Windows":
                # The Windows agent skips a step it has no plugin for and reports success:
                # Success, exit 0, and no result line.
                inv.note = f"step skipped: {action} on a {host.platform} instance"
                self._end(inv, "Success", "Success", 0,
                          f"Step execution skipped due to unsupported platform. Step name: {inv.plugin_name}\n", "")
                return
            status, code, out, err = self._execute(inv, content, host, exec_timeout)
            if inv.cancel.is_set():
                self._end(inv, "Cancelled", "Cancelled", -1, out, err)
                return
            if fault and fault.strip_result_line:
                inv.faults.append("strip_result_line")
                out = strip_result_lines(out)
            if fault and fault.extra_stdout:
                inv.faults.append("extra_stdout")
                out = inv.full_stdout = host_chatter(fault.extra_stdout) + out
            details = {"Success": "Success", "Failed": "Failed", "TimedOut": "ExecutionTimedOut",
                       "Cancelled": "Cancelled"}.get(status, status)
            self._end(inv, status, details, code, out, err)
        except Exception as e:  # the emulator must never leave an invocation hanging by accident
            self._end(inv, "Failed", "Failed", 1, "", f"local stack error running the document: {e!r}\n")

    def _execute(self, inv: InvocationState, content: dict[str, Any], host: HostInstance,
                 exec_timeout: int) -> tuple[str, int, str, str]:
        if host.stand_in is not None:
            try:
                status, code, out, err = host.stand_in(inv.parameters, inv.cancel)
            finally:
                inv.finished.set()
            inv.full_stdout = out
            return status, code, out, err
        kwargs: dict[str, Any] = {}
        env = dict(host.env)
        # What the agent exports to every script, plus a marker that lets CancelCommand find the
        # script's process group when ssm_runner cannot be told to stop it.
        env.setdefault("AWS_SSM_INSTANCE_ID", inv.instance_id)
        env.setdefault("AWS_SSM_REGION_NAME", env.get("AWS_REGION", "us-east-1"))
        marker = f"{inv.command_id}/{inv.instance_id}"
        if "cancel" in self._run_kwargs:
            kwargs[self._run_kwargs["cancel"]] = inv.cancel
        else:
            env[MARKER_VAR] = marker
            watcher = threading.Thread(target=self._kill_on_cancel, args=(inv, marker), daemon=True)
            watcher.start()
        try:
            with self.command_lines:
                res = self._run_document(content, inv.parameters, env, exec_timeout, **kwargs)
        finally:
            inv.finished.set()
        status = getattr(res, "status", None) or ("Success" if getattr(res, "response_code", 1) == 0 else "Failed")
        code = getattr(res, "response_code", -1)
        out = getattr(res, "stdout", "") or ""
        err = getattr(res, "stderr", "") or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        inv.full_stdout = out
        return status, int(code if code is not None else -1), out, err

    @staticmethod
    def _kill_on_cancel(inv: InvocationState, marker: str) -> None:
        needle = f"{MARKER_VAR}={marker}".encode() + b"\0"
        while not inv.finished.is_set():
            if inv.cancel.wait(0.1):
                break
        if not inv.cancel.is_set() or inv.finished.is_set():
            return
        for _ in range(50):
            found = False
            for pid_dir in os.listdir("/proc"):
                if not pid_dir.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid_dir}/environ", "rb") as fh:
                        envb = fh.read() + b"\0"
                except OSError:
                    continue
                if needle in envb:
                    found = True
                    try:
                        os.killpg(os.getpgid(int(pid_dir)), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            if not found or inv.finished.wait(0.1):
                return

    def _end(self, inv: InvocationState, status: str, details: str, code: int, out: str, err: str) -> None:
        inv.stdout = truncate_output(out, STDOUT_LIMIT)
        inv.stderr = truncate_output(err, STDERR_LIMIT)
        inv.response_code = code
        inv.ended_at = dt.datetime.now(dt.UTC)
        inv.status, inv.status_details = status, details
        inv.finished.set()

    # ------------------------------------------------------------------ reading
    def _visible(self, inv: InvocationState, view: str) -> bool:
        """Whether a read through `view` ("get" | "list") sees the invocation (each read a fault
        hides counts)."""
        if time.monotonic() < inv.visible_after:
            return False
        with self._lock:
            if inv.unknown_reads > 0 and view in inv.fault.unknown_views:
                inv.unknown_reads -= 1
                return False
        return True

    def _get_command_invocation(self, command_id: str, instance_id: str,
                                plugin_name: str | None) -> dict[str, Any]:
        rec = self._by_id.get(command_id or "")
        inv = rec.invocations.get(instance_id) if rec else None
        if inv is None or not self._visible(inv, "get") or (plugin_name and plugin_name != inv.plugin_name):
            raise self._err("InvocationDoesNotExist", "")
        return {
            "CommandId": inv.command_id,
            "InstanceId": inv.instance_id,
            "Comment": inv.comment,
            "DocumentName": inv.document_name,
            "DocumentVersion": inv.document_version,
            "PluginName": inv.plugin_name,
            "ResponseCode": inv.response_code,
            "ExecutionStartDateTime": _iso(inv.started_at),
            "ExecutionElapsedTime": _elapsed(inv.started_at, inv.ended_at),
            "ExecutionEndDateTime": _iso(inv.ended_at) if inv.status in TERMINAL else "",
            "Status": inv.status,
            "StatusDetails": inv.status_details,
            "StandardOutputContent": inv.stdout if inv.status in TERMINAL else "",
            "StandardOutputUrl": "",
            "StandardErrorContent": inv.stderr if inv.status in TERMINAL else "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }

    def _list_command_invocations(self, command_id: str | None, instance_id: str | None,
                                  details: bool) -> dict[str, Any]:
        with self._lock:
            if command_id:
                rec = self._by_id.get(command_id)
                if rec is None:
                    raise self._err("InvalidCommandId", "")
                recs = [rec]
            else:
                recs = list(self.commands)
        out = []
        for rec in recs:
            for inv in rec.invocations.values():
                if instance_id and inv.instance_id != instance_id:
                    continue
                if not self._visible(inv, "list"):
                    continue
                item: dict[str, Any] = {
                    "CommandId": inv.command_id,
                    "InstanceId": inv.instance_id,
                    "InstanceName": "",
                    "Comment": inv.comment,
                    "DocumentName": inv.document_name,
                    "DocumentVersion": inv.document_version,
                    "RequestedDateTime": inv.requested_at,
                    "Status": inv.status,
                    "StatusDetails": inv.status_details,
                    "TraceOutput": "",
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "CommandPlugins": [],
                    "ServiceRole": "",
                    "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [],
                                           "NotificationType": ""},
                    "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "",
                                               "CloudWatchOutputEnabled": False},
                }
                if details:
                    output = ""
                    if inv.status in TERMINAL:
                        output = inv.stdout
                        if inv.stderr:
                            output += "\n\n----------ERROR-------\n" + inv.stderr
                    plugin: dict[str, Any] = {
                        "Name": inv.plugin_name,
                        "Status": inv.status,
                        "StatusDetails": inv.status_details,
                        "ResponseCode": inv.response_code,
                        "Output": output[:LIST_OUTPUT_LIMIT],
                        "StandardOutputUrl": "",
                        "StandardErrorUrl": "",
                        "OutputS3Region": "",
                        "OutputS3BucketName": "",
                        "OutputS3KeyPrefix": "",
                    }
                    if inv.started_at:
                        plugin["ResponseStartDateTime"] = inv.started_at
                    if inv.ended_at and inv.status in TERMINAL:
                        plugin["ResponseFinishDateTime"] = inv.ended_at
                    item["CommandPlugins"] = [plugin]
                out.append(item)
        return {"CommandInvocations": out}

    def _cancel_command(self, command_id: str | None, instance_ids: list[str]) -> None:
        rec = self._by_id.get(command_id or "")
        if rec is None:
            raise self._err("InvalidCommandId", "")
        for iid, inv in rec.invocations.items():
            if instance_ids and iid not in instance_ids:
                continue
            if inv.status not in TERMINAL:
                inv.status_details = "Cancelling"
                inv.status = "Cancelling"
                inv.cancel.set()

    def _refresh_command(self, command: Any) -> None:
        """Keep moto's ListCommands view in line with what really happened."""
        rec = self._by_id.get(getattr(command, "command_id", ""))
        if rec is None:
            return
        states = [i.status for i in rec.invocations.values()]
        done = [s for s in states if s in TERMINAL]
        command.completed_count = len(done)
        command.error_count = sum(1 for s in states if s in ("Failed", "TimedOut"))
        if len(done) < len(states):
            command.status = command.status_details = "InProgress"
        elif all(s == "Success" for s in states):
            command.status = command.status_details = "Success"
        elif any(s == "Cancelled" for s in states):
            command.status = command.status_details = "Cancelled"
        elif any(s == "TimedOut" for s in states):
            command.status, command.status_details = "TimedOut", "TimedOut"
        else:
            command.status = command.status_details = "Failed"
