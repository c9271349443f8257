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

Two actions are independent when neither writes what the other reads or writes (`independent`).
What they read and write is finer than "the labels" and "the host", because the coarse relation
made the long form too long to finish (some thousands of schedules for a rollback pair alone):

  - the labels are split by version: a call naming a version by its id (GetSecretValue with a
    VersionId; a host command of a single-user rotation, which reads its version's stages and
    password with `get-secret-value --version-id`) reads only that version's stages (a version's SecretString
    never changes); a call that finds a version by its stage (GetSecretValue by VersionStage) or
    lists them (DescribeSecret, ListSecretVersionIds) reads every version's; moving AWSPENDING
    writes the two versions it names, and every other label write (moving AWSCURRENT, which moves
    AWSPREVIOUS too; PutSecretValue) writes every version's. The versions are named by what they
    are to the rotation (`pending`, `current`), so a replay names them the same way;
  - two host commands on one host that both `set` the same version commute: each runs whole under
    the host's lock, reads the same stages (no label moves between two adjacent actions), and
    leaves the host on that version's password whichever runs first; and what the copy learns
    (the command succeeded, or was refused on the stages) is the same in both orders. The one
    thing that differs, the result line's `changed` or `unchanged`, reaches the function's logs,
    its alerts and the operator's console, never a decision (HostCommand.reportedOutcome: any
    outcome of the action counts as success). Two `verify`s are not treated so: a refused login
    may count against the host (MariaDB's connection errors), which could change the second's.

`Explorer` enumerates the schedules by stateless depth-first search with source sets and sleep sets
(source-DPOR: Abdulla, Aronis, Jonsson and Sagonas, "Optimal Dynamic Partial Order Reduction",
POPL 2014). Sleep sets alone (Godefroid 1996) run one schedule of each Mazurkiewicz trace to its
end but start every other ordering too, to be cut short only late; those runs cost as much as a
whole schedule here (each starts from scratch), and outnumbered the traces. Source-DPOR instead
starts an alternative at a choice point only where a run showed a race there: two dependent
actions of different copies with nothing in between that orders them; it then tries an action
that can start the reversed race. Every trace is still run to its end exactly once, which the unit
tests check against brute force on models with concurrent host commands and copies that branch on
what they read. Every run starts from scratch (a fresh secret and login),
and a choice point that a replay reaches with other actions enabled than the first run had is an
error (`Nondeterministic`), never a silent skip. So is a run in which a copy acted on time rather
than on the order of its actions (`Strayed`): a call held so long that its client gave it up for
good (each attempt waits 20 s, and a withdrawn call's retry is the same action), or a copy that
ran into one of the binary's time limits (test_interleavings.py checks each copy's duration).

Which of a copy's actions follow which (its program order) is read from the runs themselves: a copy
parked at a choice point holds every action it can take next (the gate waits for that), so an
action of a copy that was not enabled when another of its actions was chosen comes after it; the
two host commands of one SendCommand are enabled together and ordered by nothing.

The search is stateless, so where it stands between two schedules is its path alone (each choice
point's enabled actions, sleep set, source set and the choices made): `snapshot` writes it down
(as JSON) and `Explorer.resumed` takes it up again, so an exploration of hours can be stopped and
continued (test_interleavings.py keeps one per pair when told where). A resumed search replays the
path's choices like any other, so a resumption on code that behaves otherwise is caught as
`Nondeterministic` at the first choice point that differs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from local.sockets import ancestry, socket_owner

READS_LABELS = frozenset({"DescribeSecret", "GetSecretValue", "ListSecretVersionIds"})
WRITES_LABELS = frozenset({"UpdateSecretVersionStage", "PutSecretValue"})
EVERY_VERSION = "*"
EVERY_VERSIONS_STAGES = f"stages:{EVERY_VERSION}"


@dataclass(frozen=True, order=True)
class Action:
    """A visible action: the `ordinal`-th action named `name` of copy `copy`. `name` is an AWS
    operation with what it names (`action_name`), or "<Action> <version>@<instance id>" for a host
    command, e.g. "set pending@i-0e2e0000000000011"."""
    copy: str
    name: str
    ordinal: int

    @property
    def host(self) -> str | None:
        return self.name.partition("@")[2] or None

    def resources(self) -> tuple[frozenset[str], frozenset[str]]:
        """(read, written): "stages:<version>" (EVERY_VERSION for all of them) and "host:<id>"."""
        words = self.name.partition("@")[0].split()
        operation, named = words[0], words[1:]
        if self.host:
            return frozenset({f"stages:{named[-1] if named else EVERY_VERSION}"}), frozenset({f"host:{self.host}"})
        every = frozenset({EVERY_VERSIONS_STAGES})
        if operation == "GetSecretValue" and named and named[0].startswith("version="):
            return frozenset({f"stages:{named[0].removeprefix('version=')}"}), frozenset()
        if operation == "UpdateSecretVersionStage" and named and named[0] == "AWSPENDING":
            moved = [word.partition("=")[2] for word in named[1:] if word.startswith(("from=", "to="))]
            return every, frozenset(f"stages:{version}" for version in moved) if moved else every
        if operation in WRITES_LABELS:
            return every, every
        return every, frozenset()

    def __str__(self) -> str:
        return f"{self.copy}:{self.name}#{self.ordinal}"


def action_name(operation: str, body: bytes, version_name: Callable[[str], str]) -> str:
    """The name of a visible AWS call: its operation and what decides what it reads and writes (the
    version it names, the stage it moves and between which versions), versions by `version_name`."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    if not isinstance(request, dict):
        request = {}

    def named(key: str) -> str | None:
        value = request.get(key)
        return version_name(value) if isinstance(value, str) and value else None

    words = [operation]
    if operation == "GetSecretValue" and named("VersionId"):
        words.append(f"version={named('VersionId')}")
    elif operation == "GetSecretValue":
        words.append(f"stage={request.get('VersionStage') or 'AWSCURRENT'}")
    elif operation == "UpdateSecretVersionStage" and isinstance(request.get("VersionStage"), str):
        words.append(request["VersionStage"])
        words += [f"{word}={named(key)}" for word, key in (("from", "RemoveFromVersionId"), ("to", "MoveToVersionId")) if named(key)]
    return " ".join(words)


def is_visible(operation: str) -> bool:
    return operation in READS_LABELS or operation in WRITES_LABELS


def _conflict(first: frozenset[str], second: frozenset[str]) -> bool:
    if first & second:
        return True
    return (EVERY_VERSIONS_STAGES in first and any(r.startswith("stages:") for r in second)) or \
        (EVERY_VERSIONS_STAGES in second and any(r.startswith("stages:") for r in first))


def independent(a: Action, b: Action) -> bool:
    """Whether a and b commute: neither writes what the other reads or writes, or both set one
    version on one host (see the module's docstring for why those commute)."""
    if a.host is not None and a.host == b.host:
        verb_a, verb_b = a.name.partition("@")[0], b.name.partition("@")[0]
        if verb_a == verb_b and verb_a.startswith("set "):
            return True
    ra, wa = a.resources()
    rb, wb = b.resources()
    return not (_conflict(wa, rb | wb) or _conflict(wb, ra))


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
                 failing: frozenset[Action] = frozenset(), version_name: Callable[[str], str] = str):
        self._proxy_port = proxy_port
        self._copy_of_pid = copy_of_pid
        self._version_name = version_name     # a version id -> what it is to the rotation
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
    def arrive(self, operation: str, body: bytes, client_port: int, client_gone: Callable[[], bool]) -> _Held | None:
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
            held.action = self._number(copy, action_name(operation, body, self._version_name))
            self._arrived(held)
        while not held.release.wait(0.2):
            if client_gone():
                with self._cond:
                    if not held.release.is_set():
                        self._held.remove(held)
                        self._counts[(copy, held.action.name)] -= 1
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
        version = (invocation.parameters.get("VersionId") or [""])[0]
        name = f"{action} {self._version_name(version)}" if version else action
        held = _Held(f"{name}@{invocation.instance_id}", None, command_id=invocation.command_id)
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
    """A choice point of the current path: the actions enabled there, those asleep (their traces
    run from here already), the source set (the choices to try here: the first, and those race
    analysis added) and the choices made so far, in order; the last is the current one."""
    enabled: list[Action]
    sleep: frozenset[Action]
    sources: set[Action]
    explored: list[Action]

    @property
    def chosen(self) -> Action:
        return self.explored[-1]

    def snapshot(self) -> dict:
        def listed(actions) -> list[list]:
            return [[a.copy, a.name, a.ordinal] for a in actions]
        return {"enabled": listed(self.enabled), "sleep": listed(sorted(self.sleep)),
                "sources": listed(sorted(self.sources)), "explored": listed(self.explored)}

    @staticmethod
    def resumed(snapshot: dict) -> _Node:
        def actions(key: str) -> list[Action]:
            return [Action(str(copy), str(name), int(ordinal)) for copy, name, ordinal in snapshot[key]]
        node = _Node(actions("enabled"), frozenset(actions("sleep")), set(actions("sources")), actions("explored"))
        if not node.explored or not set(node.explored) <= node.sources or not node.sources <= set(node.enabled):
            raise ValueError("a choice point whose choices are not among its sources and enabled actions")
        return node


class Explorer:
    """Stateless depth-first search over schedules with source sets and sleep sets (source-DPOR).
    `run_schedule(choose)` runs one schedule from scratch, calling `choose(depth, enabled)` at each
    choice point; `explore` calls it until every trace was run (or `limit` schedules)."""

    def __init__(self) -> None:
        self._path: list[_Node] = []
        self._blocked = False
        self._resumed = False         # taken up after a schedule: backtrack before the next run
        self._choices = 0             # choice points this run passed (each is a node of the path)
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
            self._choices += 1
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
            # Every action enabled here is asleep: whatever follows was run already. The run goes
            # on to its end (the copies must finish) without further choices to explore.
            self._blocked = True
            return enabled[0]
        self._path.append(_Node(enabled, sleep, {candidates[0]}, [candidates[0]]))
        self._choices += 1
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
            self._choices = 0
            run_schedule(self.choose)
            if self._choices < len(self._path):
                # The copies ended before the choice points the first run found: the replay is not
                # the run it stands for, and the choices left below it would be made on nothing.
                raise Nondeterministic(f"the replay ended after {self._choices} choices, the first run "
                                       f"made {len(self._path)}")
            if self._blocked:
                self.redundant += 1
            else:
                self.schedules += 1
            self._add_sources()
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

    def _add_sources(self) -> None:
        """Race analysis of the run just made (up to where the sleep sets cut it short): for each
        race, two dependent actions i < j of different copies that nothing between them orders,
        the choice point before i gets an action that can start the reversed race (one of the
        first actions of what ran after i and is not ordered after it, then j), unless it already
        has one among its sources."""
        actions = [node.chosen for node in self._path]
        before: list[set[int]] = []            # before[j]: the indices of the actions ordered before j
        for j, b in enumerate(actions):
            ordered: set[int] = set()
            for i in range(j):
                a = actions[i]
                # A copy's action comes after its earlier ones unless both were enabled together
                # (one SendCommand's host commands); another copy's, after those it depends on.
                if a.copy == b.copy and b not in self._path[i].enabled or a.copy != b.copy and not independent(a, b):
                    ordered.add(i)
                    ordered |= before[i]
            before.append(ordered)
        for j, b in enumerate(actions):
            for i in before[j]:
                a = actions[i]
                if a.copy == b.copy or independent(a, b) or any(i in before[k] for k in before[j] if k > i):
                    continue
                later = [k for k in range(i + 1, j) if i not in before[k]] + [j]
                starts = {actions[k] for k in later if not any(m in before[k] for m in later if m != k)}
                node = self._path[i]
                if not starts <= set(node.enabled):
                    # Cannot happen while every copy is parked at each choice point; were it to,
                    # trying everything there is what stays sound.
                    node.sources |= set(node.enabled)
                elif not starts & node.sources:
                    node.sources.add(min(starts))

    def _backtrack(self) -> bool:
        while self._path:
            node = self._path[-1]
            left = sorted(a for a in node.sources if a not in node.sleep and a not in node.explored)
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
