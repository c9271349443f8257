"""Kill points: the function is SIGKILLed before and after each AWS call of a rotation (SSM's
SendCommand and the polling calls included, so before and after every host command), then
Secrets Manager's retry re-runs the steps with the same token.

A clean rotation first shows the calls of a full rotation, per step. Each point then runs in a
fresh login: the steps up to the point, the kill there (by the fault proxy, local/fault_proxy.py),
the retry. It holds when the version holding the password the database accepts kept its label
right after the kill, the retry completed the rotation, AWSCURRENT logs in on the real database,
and the intended death was the only one. The clean rotation and every tried one start in a fresh
function process: a warm process skips the calls only a process's first rotation makes (reading
and proving the documents), so a point drawn from one kind of process and tried in the other may
never be reached. The short form (`make test`) tries a fixed sample of points, one per step and
one at the document read, split between two pairs of engine and strategy so that each engine and
each strategy meets a kill; `make chaos` tries every point of both strategies on both engines.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from local.fault_proxy import KILLS
from local.stack import LocalStack

from . import chaos
from .helpers import (
    STEPS,
    DBHost,
    Login,
    assert_invariants,
    assert_working_password_labelled,
    describe_steps,
    make_alternating_login,
    make_login,
    rotation_outcome,
    run_steps,
)

SCENARIO = "Kill points"

# Rotation strategies: name -> a new login (and its secret) of that strategy.
STRATEGIES: dict[str, Callable[[LocalStack, DBHost], Login]] = {
    "single-user": make_login,
    "alternating-users": lambda stack, db: make_alternating_login(stack, db, "kill_" + secrets.token_hex(4)),
}

# Polling repeats the same read a variable number of times; its first round stands for all.
POLLING = {"ListCommandInvocations", "GetCommandInvocation"}


@dataclass(frozen=True)
class KillPoint:
    step: str
    operation: str
    occurrence: int           # of that operation within the step
    when: str                 # before | after (moto answered, the function never saw it)

    def __str__(self) -> str:
        return f"{self.step}: {self.when} {self.operation} #{self.occurrence}"


# The short form: one point per step and one that only a fresh process reaches, each leaving a
# different state behind, split between the two pairs of the short form (each point on one pair;
# make chaos tries every point on all four).
SHORT_SAMPLE = {
    ("postgres", "single-user"): [
        KillPoint("createSecret", "PutSecretValue", 1, "after"),        # the pending value stored
        KillPoint("setSecret", "GetDocument", 1, "before"),             # a cold process, document not yet proven
        KillPoint("testSecret", "GetCommandInvocation", 1, "before"),   # verified, not yet known
    ],
    ("mariadb", "alternating-users"): [
        KillPoint("setSecret", "SendCommand", 1, "after"),              # the host changing the password (the clone's)
        KillPoint("finishSecret", "UpdateSecretVersionStage", 1, "after"),  # AWSCURRENT moved, AWSPENDING not
    ],
}


def rotation_calls(stack: LocalStack, db: DBHost, strategy: str) -> dict[str, list[str]]:
    """The AWS calls of each step of one clean rotation in a fresh function process, in order."""
    login = STRATEGIES[strategy](stack, db)
    stack.runtime.cold_start()
    token = stack.begin_rotation(login.arn)
    calls: dict[str, list[str]] = {}
    for step in STEPS:
        first = len(stack.faults.calls)
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert r.ok, f"the clean rotation failed in {step}: {r.error}"
        calls[step] = stack.faults.operations_since(first)
    return calls


def kill_points(calls: dict[str, list[str]]) -> list[KillPoint]:
    points = []
    for step, operations in calls.items():
        seen: dict[str, int] = {}
        for operation in operations:
            seen[operation] = seen.get(operation, 0) + 1
            if operation in POLLING and seen[operation] > 1:
                continue
            points += [KillPoint(step, operation, seen[operation], when) for when in KILLS]
    return points


def try_point(stack: LocalStack, db: DBHost, strategy: str, point: KillPoint) -> None:
    since = time.time()
    login = STRATEGIES[strategy](stack, db)
    old_version = stack.version_with(login.arn, "AWSCURRENT")
    token = stack.begin_rotation(login.arn)
    stack.runtime.cold_start()          # the process rotation_calls drew the point from
    kill = None
    try:
        for step in STEPS:
            if step == point.step:
                kill = stack.faults.kill(point.operation, point.occurrence, point.when)
            r = stack.invoke(stack.rotation_event(step, login.arn, token))
            if not r.ok:
                break
    finally:
        stack.clear_faults()
    assert kill is not None and kill.hits == 1, f"the kill point was never reached (stopped in {step}: {r.error})"
    assert (step, r.error_type) == (point.step, "Runtime.ExitError"), f"{step}: {r.error}"
    assert_working_password_labelled(login)

    retry = run_steps(stack, login.arn, token)
    assert all(r.ok for _, r in retry), f"the retry failed: {describe_steps(retry)}"
    assert rotation_outcome(login, token, old_version) == "completed"
    assert_invariants(stack, login, since, killed=1)


# The short form tries each strategy on one engine (both engines run the same flow.sh, and each
# engine's own script is under both strategies in make chaos); make chaos tries all four pairs.
PAIRS = [(engine, strategy) for engine in ("postgres", "mariadb") for strategy in STRATEGIES] if chaos.FULL \
    else list(SHORT_SAMPLE)


@pytest.mark.parametrize("db, strategy", PAIRS, indirect=["db"])
def test_kill_points(function: LocalStack, db: DBHost, strategy: str):
    stack = function
    points = kill_points(rotation_calls(stack, db, strategy))
    # Every sample point must be one the rotation reaches, on every pair (not only where it is tried).
    missing = [str(p) for sample in SHORT_SAMPLE.values() for p in sample if p not in points]
    assert not missing, f"sample points not in the rotation's calls {points}: {missing}"
    chosen = points if chaos.FULL else SHORT_SAMPLE[(db.name, strategy)]
    failures = []
    for point in chosen:
        try:
            try_point(stack, db, strategy, point)
        except AssertionError as e:
            failures.append(f"{point}: {e}")
    chaos.record(SCENARIO, len(chosen), len(chosen) - len(failures), f"{db.name}, {strategy}")
    assert not failures, f"{len(failures)} of {len(chosen)} kill points did not hold:\n" + "\n".join(failures)
