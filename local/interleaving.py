"""Every interleaving of concurrent copies of rotation steps, run with the real parts.

Two copies of a step run at once in production (a step killed at the function's timeout while its
host command still runs and Secrets Manager's retry; SendCommand retried after a transport error; a
failed CancelCommand; an operator's `rotator cancel` racing a retry). What they share is the
secret's labels in Secrets Manager and the password on each host; everything else a copy touches
is its own (its SSM command and the command's status, its alerts). So a copy's *visible* actions
are:

  - an AWS call that reads the labels (DescribeSecret, GetSecretValue, ListSecretVersionIds) or
    writes them (UpdateSecretVersionStage, PutSecretValue), held by the `Gate` in the fault proxy
    (local/fault_proxy.py) between the copy and moto until the scheduler releases it;
  - one host command of the copy's, on one host, run to completion under the host's per-secret
    lock (it reads the labels and reads and writes that host's password), held by the `Gate` in
    the SSM emulator (local/ssm_emulator.py) before the document runs.

Every other call (SendCommand, the polls that read the copy's own command's result, CancelCommand,
SNS, GetRandomPassword, GetDocument, ...) goes through at once. That is sound: such an action
touches nothing another copy reads or writes, so it commutes with every action of the others, and
running it as early as possible reaches the same states as any other placement (it is a persistent
set of its own). A schedule is then the order in which the visible actions are released; the
scheduler releases one, waits until every copy is parked again (each finished or holding a next
visible action) and chooses the next.

`Explorer` enumerates the schedules by stateless depth-first search with sleep sets (Godefroid,
"Partial-Order Methods for the Verification of Concurrent Systems", 1996): two schedules that differ
only in the order of independent actions (two label reads; a label read and a host command's
run... see `independent`) reach the same state, and of each such class (a Mazurkiewicz trace)
exactly one schedule is run to its end. Every run starts from scratch (a fresh secret and login),
and a choice point that a replay reaches with other actions enabled than the first run had is an
error (`Nondeterministic`), never a silent skip. So is a run in which a copy acted on time rather
than on the order of its actions (`Strayed`): a call held so long that its client gave it up for
good (each attempt waits 20 s, and a withdrawn call's retry is the same action), or a copy that
ran into one of the binary's time limits (test_interleavings.py checks each copy's duration).

The search is stateless, so where it stands between two schedules is its path alone: `snapshot`
writes it down (as JSON) and `Explorer.resumed` takes it up again, so an exploration of hours can be
stopped and continued (test_interleavings.py keeps one per pair when told where). A resumed
search replays the path's choices like any other, so a resumption on code that behaves otherwise is
caught as `Nondeterministic` at the first choice point that differs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from local.sockets import ancestry, socket_owner

LABELS = "labels"
READS_LABELS = frozenset({"DescribeSecret", "GetSecretValue", "ListSecretVersionIds"})
WRITES_LABELS = frozenset({"UpdateSecretVersionStage", "PutSecretValue"})


@dataclass(frozen=True, order=True)
class Action:
    """A visible action: the `ordinal`-th action named `name` of copy `copy`. `name` is an AWS
    operation, or "<Action parameter>@<instance id>" for a host command."""
    copy: str
    name: str
    ordinal: int

    @property
    def host(self) -> str | None:
        return self.name.partition("@")[2] or None

    def resources(self) -> tuple[frozenset[str], frozenset[str]]:
        """(read, written) shared resources: the secret's labels, a host's password."""
        if self.host:
            return frozenset({LABELS}), frozenset({f"host:{self.host}"})
        if self.name in WRITES_LABELS:
            return frozenset(), frozenset({LABELS})
        return frozenset({LABELS}), frozenset()

    def __str__(self) -> str:
        return f"{self.copy}:{self.name}#{self.ordinal}"


def is_visible(operation: str) -> bool:
    return operation in READS_LABELS or operation in WRITES_LABELS


def independent(a: Action, b: Action) -> bool:
    """Whether a and b commute: neither writes what the other reads or writes."""
    ra, wa = a.resources()
    rb, wb = b.resources()
    return not (wa & (rb | wb) or wb & ra)


class Nondeterministic(AssertionError):
    pass


class Stuck(AssertionError):
    pass


class Withdrawn(Exception):
    """A held call whose client closed the connection before it was released."""


class Strayed(AssertionError):
    """The schedule did not run as recorded: a copy acted on time rather than on the order of its
    visible actions (it gave up a held call for good, or lost the answer of one that ran), or a
    visible call came from no copy. Such a run is not counted: the trace it stands for was not run."""


@dataclass
class _Held:
    name: str
    copy: str | None                       # None until a host command's sender is known
    command_id: str | None = None
    action: Action | None = None
    release: threading.Event = field(default_factory=threading.Event)
    done: bool = False


class Gate:
    """Holds the visible actions of the copies of one schedule. Installed on the stack's fault
    proxy and SSM emulator by `Explorer.run`; `copy_of_pid` says which copy a process serves."""

    def __init__(self, proxy_port: int, copy_of_pid: Callable[[int], str | None],
                 failing: frozenset[Action] = frozenset()):
        self._proxy_port = proxy_port
        self._copy_of_pid = copy_of_pid
        self._failing = failing               # host commands that report a failure after running
        self._cond = threading.Condition()
        self._held: list[_Held] = []
        self._counts: dict[tuple[str, str], int] = {}
        self._command_copy: dict[str, str] = {}
        self._client_copy: dict[int, str | None] = {}      # a connection's client port -> its copy
        self._unheld: set[tuple[str, str]] = set()         # (command, instance) sent, not yet held
        self._withdrawn: dict[str, Action] = {}            # a copy's call withdrawn, not yet retried
        self.strayed: list[str] = []
        self.finished: set[str] = set()
        self.copies: set[str] = set()
        self.log: list[Action] = []

    # -- the fault proxy's side
    def arrive(self, operation: str, client_port: int, client_gone: Callable[[], bool]) -> _Held | None:
        """Holds a visible call until it is released. Raises Withdrawn when the client gave up
        first (its attempt timed out, 20 s): the call never reaches moto, as if the network had
        lost it, and the client's retry is the same action (same ordinal), so a slow schedule and
        a fast one see the same choices."""
        copy = self._copy_of_client(client_port)
        if copy is None and is_visible(operation):
            self._stray(f"a {operation} from a process that is no copy (client port {client_port})")
        if copy is None or not is_visible(operation):
            return _Held(operation, copy) if operation == "SendCommand" and copy else None
        held = _Held(operation, copy)
        with self._cond:
            held.action = self._number(copy, operation)
            self._arrived(held)
        while not held.release.wait(0.2):
            if client_gone():
                with self._cond:
                    if not held.release.is_set():
                        self._held.remove(held)
                        self._counts[(copy, operation)] -= 1
                        self._withdrawn[copy] = held.action
                        self._cond.notify_all()
                        raise Withdrawn(str(held.action))
        if client_gone():
            # Released in the moment its client gave up: the call runs, its answer is lost, and the
            # client's retry would be a new action.
            self._stray(f"{held.action} was released after its client gave up on it")
        return held

    def answered(self, held: _Held, operation: str, answer: bytes) -> None:
        with self._cond:
            if operation == "SendCommand" and held.copy:
                try:
                    command_id = json.loads(answer)["Command"]["CommandId"]
                except (ValueError, KeyError, TypeError):
                    command_id = None
                if command_id:
                    self._command_copy[command_id] = held.copy
                    # Each instance's command reaches hold_command in a thread of its own: until
                    # all have, the copy's enabled actions are not all known.
                    held_instances = {h.name.partition("@")[2] for h in self._held if h.command_id == command_id}
                    self._unheld |= {(command_id, iid) for iid in _instance_ids(answer) if iid not in held_instances}
                    for h in self._held:
                        if h.command_id == command_id and h.copy is None:
                            h.copy = held.copy
                            h.action = self._number(held.copy, h.name)
                            self._came_back(h)
            held.done = True
            self._cond.notify_all()

    # -- the SSM emulator's side
    def hold_command(self, invocation) -> str | None:
        action = (invocation.parameters.get("Action") or ["?"])[0]
        held = _Held(f"{action}@{invocation.instance_id}", None, command_id=invocation.command_id)
        with self._cond:
            self._unheld.discard((invocation.command_id, invocation.instance_id))
            copy = self._command_copy.get(invocation.command_id)
            if copy is not None:
                held.copy, held.action = copy, self._number(copy, held.name)
            self._arrived(held)
        held.release.wait()
        return "Failed" if held.action in self._failing else None

    def command_finished(self, invocation) -> None:
        with self._cond:
            for h in self._held:
                if h.command_id == invocation.command_id and h.name.endswith("@" + invocation.instance_id):
                    h.done = True
            self._cond.notify_all()

    # -- the scheduler's side
    def copy_finished(self, copy: str) -> None:
        with self._cond:
            if copy in self._withdrawn:
                self.strayed.append(f"{self._withdrawn.pop(copy)} was withdrawn and its copy ended without retrying it")
            self.finished.add(copy)
            self._cond.notify_all()

    def wait_parked(self, timeout_s: float) -> list[Action]:
        """Waits until no released action is still running and every copy is finished or holds a
        visible action; returns the held actions (sorted), empty when every copy is done."""
        def parked() -> bool:
            if self.strayed:
                return True
            if self._unheld or any(h.release.is_set() and not h.done for h in self._held):
                return False
            waiting = [h for h in self._held if not h.release.is_set()]
            if any(h.action is None for h in waiting):
                return False
            holders = {h.copy for h in waiting}
            return all(c in self.finished or c in holders for c in self.copies)

        with self._cond:
            if not self._cond.wait_for(parked, timeout_s):
                raise Stuck(f"copies not parked after {timeout_s:.0f}s: finished {sorted(self.finished)}, "
                            f"held {[(h.name, h.copy, h.release.is_set(), h.done) for h in self._held]}")
            if self.strayed:
                raise Strayed("; ".join(self.strayed))
            return sorted(h.action for h in self._held if not h.release.is_set())

    def release(self, action: Action, timeout_s: float = 60) -> None:
        """Lets `action` run; when its call was withdrawn meanwhile, the client's retry of it."""
        def holder() -> _Held | None:
            return next((h for h in self._held if h.action == action and not h.release.is_set()), None)

        with self._cond:
            if not self._cond.wait_for(lambda: holder() is not None, timeout_s):
                raise Stuck(f"{action} was withdrawn and not retried within {timeout_s:.0f}s")
            self.log.append(action)
            holder().release.set()

    def release_everything(self) -> None:
        """After a failure: let every copy run to its end."""
        with self._cond:
            for h in self._held:
                h.release.set()

    def _arrived(self, held: _Held) -> None:
        """A held action joins (under the lock)."""
        if held.copy is not None:
            self._came_back(held)
        self._held.append(held)
        self._cond.notify_all()

    def _came_back(self, held: _Held) -> None:
        """A copy whose call was withdrawn must come back with that call (the client's retry, the
        same action): anything else means it gave the call up (under the lock)."""
        withdrawn = self._withdrawn.pop(held.copy, None)
        if withdrawn is not None and withdrawn != held.action:
            self.strayed.append(f"{withdrawn} was withdrawn and its copy went on to {held.action} without it")

    def _stray(self, why: str) -> None:
        with self._cond:
            self.strayed.append(why)
            self._cond.notify_all()

    def _number(self, copy: str, name: str) -> Action:
        n = self._counts.get((copy, name), 0) + 1
        self._counts[(copy, name)] = n
        return Action(copy, name, n)

    def _copy_of_client(self, client_port: int) -> str | None:
        if client_port not in self._client_copy:
            self._client_copy[client_port] = self._find_copy(client_port)
        return self._client_copy[client_port]

    def _find_copy(self, client_port: int) -> str | None:
        # The process holding the client's end of the connection, or an ancestor of it, is a copy.
        # It may have sent its first call before the scheduler knew its process: ask again a while.
        deadline = time.monotonic() + 5
        pid = socket_owner(client_port, self._proxy_port)
        while pid is not None:
            for p in ancestry(pid):
                copy = self._copy_of_pid(p)
                if copy is not None:
                    return copy
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return None


def _instance_ids(answer: bytes) -> list[str]:
    try:
        ids = json.loads(answer)["Command"]["InstanceIds"]
    except (ValueError, KeyError, TypeError):
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


@dataclass
class _Node:
    enabled: list[Action]
    sleep: frozenset[Action]
    explored: list[Action]         # chosen here so far, in order; the last is the current choice

    @property
    def chosen(self) -> Action:
        return self.explored[-1]

    def snapshot(self) -> dict:
        def listed(actions) -> list[list]:
            return [[a.copy, a.name, a.ordinal] for a in actions]
        return {"enabled": listed(self.enabled), "sleep": listed(sorted(self.sleep)), "explored": listed(self.explored)}

    @staticmethod
    def resumed(snapshot: dict) -> _Node:
        def actions(key: str) -> list[Action]:
            return [Action(str(copy), str(name), int(ordinal)) for copy, name, ordinal in snapshot[key]]
        return _Node(actions("enabled"), frozenset(actions("sleep")), actions("explored"))


@dataclass
class Schedule:
    actions: list[Action]
    redundant: bool               # sleep-set blocked: its trace was run already (still checked)

    def __str__(self) -> str:
        return " ".join(map(str, self.actions))


class Explorer:
    """Stateless depth-first search over schedules with sleep sets. `run_schedule(choose)` runs one
    schedule from scratch, calling `choose(depth, enabled)` at each choice point; `explore` calls it
    until every trace was run (or `limit` schedules)."""

    def __init__(self) -> None:
        self._path: list[_Node] = []
        self._depth = 0
        self._blocked = False
        self._resumed = False         # taken up after a schedule: backtrack before the next run
        self.schedules = 0            # complete schedules run, one per trace
        self.redundant = 0            # runs cut short by the sleep sets (their end state checked too)

    def snapshot(self) -> dict:
        """Where the search stands after the schedule it last ran: what `resumed` needs."""
        return {"schedules": self.schedules, "redundant": self.redundant, "path": [node.snapshot() for node in self._path]}

    @staticmethod
    def resumed(snapshot: dict) -> Explorer:
        """The search of `snapshot`, continued by `explore` with the schedule after its last."""
        explorer = Explorer()
        explorer.schedules, explorer.redundant = int(snapshot["schedules"]), int(snapshot["redundant"])
        explorer._path = [_Node.resumed(node) for node in snapshot["path"]]
        explorer._resumed = True
        return explorer

    def choose(self, depth: int, enabled: list[Action]) -> Action:
        if depth < len(self._path):
            node = self._path[depth]
            if node.enabled != enabled:
                raise Nondeterministic(f"at step {depth} the replay found {list(map(str, enabled))}, "
                                       f"the first run {list(map(str, node.enabled))}")
            return node.chosen
        if self._blocked:
            return enabled[0]
        if depth == 0:
            sleep: frozenset[Action] = frozenset()
        else:
            parent = self._path[depth - 1]
            sleep = frozenset(s for s in parent.sleep | set(parent.explored[:-1]) if independent(s, parent.chosen))
        candidates = [a for a in enabled if a not in sleep]
        if not candidates:
            self._blocked = True
            return enabled[0]
        self._path.append(_Node(enabled, sleep, [candidates[0]]))
        return candidates[0]

    def explore(self, run_schedule: Callable[[Callable[[int, list[Action]], Action]], None],
                limit: int | None = None, after_each: Callable[[Explorer], None] | None = None) -> None:
        """Runs schedules until every trace was run (or `limit` schedules in all, those of a
        resumed search's first part included); `after_each` is called after every schedule, where
        `snapshot` can be taken."""
        if self._resumed:
            self._resumed = False
            if not self._backtrack():
                return
        while True:
            self._blocked = False
            run_schedule(self.choose)
            if self._blocked:
                self.redundant += 1
            else:
                self.schedules += 1
            if after_each is not None:
                after_each(self)
            if limit is not None and self.schedules + self.redundant >= limit:
                return
            if not self._backtrack():
                return

    @property
    def finished(self) -> bool:
        """Whether no schedule is left (after `explore` returned without a limit: every trace was run)."""
        return not self._path

    def _backtrack(self) -> bool:
        while self._path:
            node = self._path[-1]
            left = [a for a in node.enabled if a not in node.sleep and a not in node.explored]
            if left:
                node.explored.append(left[0])
                return True
            self._path.pop()
        return False


def run_one(gate: Gate, choose: Callable[[int, list[Action]], Action], timeout_s: float = 120) -> list[Action]:
    """Drives one schedule through `gate` until every copy is done; the actions in release order."""
    depth = 0
    try:
        while True:
            enabled = gate.wait_parked(timeout_s)
            if not enabled:
                return list(gate.log)
            gate.release(choose(depth, enabled))
            depth += 1
    except BaseException:
        gate.release_everything()
        raise
