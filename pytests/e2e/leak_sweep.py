"""The leak sweep: everything the suite produced, searched for every password and credential.

What is searched for is collected from the stack, not listed by hand: every string value of a
password-like field (or the whole SecretString when it is not JSON) of every version of every
secret in the stack (so secrets other tests add are covered too), and every credential the stack
handed out (the admin key's secret, the function's and the hosts' secret keys and session tokens)
and every RotationToken it sent.

What is searched: the function log, every SNS message, every SSM command's parameters and comment,
every invocation's standard output and error (also the untruncated output), every SendCommand the
stack refused, every answer the function gave, and the command line of every process seen while a
host script ran (local.ssm_emulator.CommandLineSampler).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from local.stack import LocalStack

# Shorter values ("a", "") are test fixtures' placeholders, not passwords: they would match anywhere.
MIN_SECRET_LENGTH = 8
PASSWORD_LIKE = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


@dataclass
class Sweep:
    needles: dict[str, str]                 # what it is (never the value) -> the secret
    haystacks: dict[str, str]               # where -> what was produced there
    hits: list[tuple[str, str]] = field(default_factory=list)   # (what, where)

    def summary(self) -> str:
        size = sum(len(t) for t in self.haystacks.values())
        text = (f"{len(self.needles)} passwords and credentials searched for in {len(self.haystacks)} "
                f"outputs ({size:,} characters): {len(self.hits)} hits")
        if self.hits:
            text += ": " + "; ".join(f"{what} in {where}" for what, where in self.hits[:20])
        return text


def find(needles: dict[str, str], haystacks: dict[str, str]) -> list[tuple[str, str]]:
    return [(what, where) for what, secret in needles.items() if len(secret) >= MIN_SECRET_LENGTH
            for where, text in haystacks.items() if secret in text]


def secrets_of(stack: LocalStack) -> dict[str, str]:
    needles: dict[str, str] = {}
    for arn, version, text in stack.every_secret_string():
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            for key, v in value.items():
                if isinstance(v, str) and PASSWORD_LIKE.search(key):
                    needles[f"{key} of {arn} version {version}"] = v
        else:
            needles[f"SecretString of {arn} version {version}"] = text
    for n, credential in enumerate(stack.secrets_in_play()):
        needles[f"credential or RotationToken #{n}"] = credential
    return needles


def produced_by(stack: LocalStack) -> dict[str, str]:
    out = {"function log": stack.function_log()}
    for n, alert in enumerate(stack.alerts()):
        out[f"SNS message #{n}"] = alert["raw"]
    for c in list(stack.commands):
        out[f"SSM command {c.command_id}: parameters and comment"] = json.dumps(c.parameters) + "\n" + c.comment
        for iid, inv in c.invocations.items():
            out[f"SSM command {c.command_id} on {iid}: output"] = "\n".join((inv.stdout, inv.full_stdout, inv.stderr))
    out["SendCommand requests refused"] = json.dumps(stack.ssm.rejected, default=str)
    out["function answers"] = "\n".join(json.dumps([i.result.payload, i.result.error], default=str)
                                        for i in stack.runtime.invocations if i.result is not None)
    out["process command lines during host scripts"] = "\n".join(sorted(stack.ssm.command_lines.seen))
    return out


def sweep(stack: LocalStack, *, extra_needles: dict[str, str] | None = None,
          extra_haystacks: dict[str, str] | None = None) -> Sweep:
    needles = {**secrets_of(stack), **(extra_needles or {})}
    haystacks = {**produced_by(stack), **(extra_haystacks or {})}
    return Sweep(needles, haystacks, find(needles, haystacks))
