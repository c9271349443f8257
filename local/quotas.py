"""Account-wide API rate quotas for the local stack: per-API token buckets, as AWS enforces them.

AWS meters calls per account and region, whoever makes them: a hundred function processes polling
SSM at once share one bucket. The fault proxy (local/fault_proxy.py) asks `Quotas.admit` before it
forwards a call, and answers a refused one as the service does: HTTP 400, JSON protocol,
`{"__type": "ThrottlingException", "message": "Rate exceeded"}` (SSM and Secrets Manager alike; the
text botocore users quote from SSM's SendCommand and ListCommandInvocations).

A bucket holds at most `burst` tokens and gains `rate` per second; a call takes one or is refused.
Several operations can share one bucket: Secrets Manager's published quota is one combined rate for
its writes. Off unless a test or `make fleet` installs one (`LocalStack.faults.quotas`).

ASSUMED holds the rates the fleet simulator uses by default. SSM does not publish Run Command's
rates; the figures are assumptions, low enough that users report hitting them (docs/FLEET.md).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float                 # tokens added per second
    burst: float                # most tokens held: the calls allowed at once after a quiet spell
    tokens: float = -1.0        # starts full
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least one call")
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class Limit:
    """One quota: the operations `(service, operation)` that share it, its rate and burst."""
    name: str
    operations: frozenset[tuple[str, str]]
    rate: float
    burst: float


# Secrets Manager's published combined write quota (AWS Secrets Manager quotas: "Combined rate of
# PutSecretValue, RemoveRegionsFromReplication, ReplicateSecretToRegion, StopReplicationToReplica,
# UpdateSecret, and UpdateSecretVersionStage API requests", 50 per second).
SECRETS_MANAGER_WRITES = frozenset(("secretsmanager", op) for op in (
    "PutSecretValue", "RemoveRegionsFromReplication", "ReplicateSecretToRegion", "StopReplicationToReplica",
    "UpdateSecret", "UpdateSecretVersionStage"))


def assumed_limits(send_command: float = 5.0, poll: float = 10.0, secrets_writes: float = 50.0) -> list[Limit]:
    """The fleet simulator's quotas: SSM's assumed (unpublished) Run Command rates, each API its own
    bucket, and Secrets Manager's published write rate. Bursts equal one second's rate."""
    return [
        Limit("SendCommand", frozenset({("ssm", "SendCommand")}), send_command, send_command),
        Limit("ListCommandInvocations", frozenset({("ssm", "ListCommandInvocations")}), poll, poll),
        Limit("GetCommandInvocation", frozenset({("ssm", "GetCommandInvocation")}), poll, poll),
        Limit("SecretsManagerWrites", SECRETS_MANAGER_WRITES, secrets_writes, secrets_writes),
    ]


@dataclass
class Quotas:
    limits: list[Limit]
    clock: Callable[[], float] = time.monotonic
    throttled: Counter = field(default_factory=Counter)   # refused calls per operation
    admitted: Counter = field(default_factory=Counter)    # calls let through per operation (metered ones)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets = {limit.name: TokenBucket(limit.rate, limit.burst) for limit in self.limits}
        self._limit_of: dict[tuple[str, str], str] = {}
        for limit in self.limits:
            for op in limit.operations:
                if op in self._limit_of:
                    raise ValueError(f"{op} is metered by both {self._limit_of[op]} and {limit.name}")
                self._limit_of[op] = limit.name

    def admit(self, service: str, operation: str) -> bool:
        """Whether this call may go through now (it takes a token); calls no quota meters always may."""
        name = self._limit_of.get((service, operation))
        if name is None:
            return True
        with self._lock:
            allowed = self._buckets[name].take(self.clock())
            (self.admitted if allowed else self.throttled)[operation] += 1
            return allowed
