"""Generated bad input against the real binary: at least 500 events and secret values with fuzzed
types, lengths, unicode, missing fields, and hostile identifiers (quotes, `$(...)`, backticks, `;`,
newlines, `../`) in every field that could reach an SSM document (SecretId, ClientRequestToken,
instanceIds). Each must be answered with a clear error through the Runtime API, with no command
sent, nothing changed in Secrets Manager, and the same process still serving.

The generator is seeded: a failure names its case, and the same seed reproduces it. The cases are
shared between the two engines. ROTATOR_FUZZ_CASES sets their number: 60 in `make test` (the short
form), 1000 in `make chaos`.
"""

from __future__ import annotations

import json
import os
import random
import uuid

from local.stack import LocalStack

from . import chaos
from .helpers import Login, describe_rotation, leaks

SEED = 20261129
CASES = int(os.environ.get("ROTATOR_FUZZ_CASES") or chaos.scale(60, 1000))

HOSTILE = ["$(reboot)", "`id`", "'; DROP ROLE app; --", '"; rm -rf / #', "a;b", "x\ny", "../../etc/passwd",
           "\u0000", "{{SecretId}}", "%s%s%n", "\u202e\u0645", "i-0123456789abcdef0;reboot", "' OR '1'='1"]
KNOWN_ERRORS = {"InvalidEvent", "InvalidSecret", "VersionNotPending", "AWSError"}


def fuzz_scalar(rng: random.Random):
    """A JSON value of a random type: mostly strings, hostile or unicode or long, sometimes not strings."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 3.5, 10**20, [], {}, ["x"], {"a": 1}])
    if kind == 1:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if kind == 2:
        return "A" * rng.choice([0, 31, 65, 300, 5000])
    return rng.choice(HOSTILE) + rng.choice(["", "x", str(uuid.UUID(int=rng.getrandbits(128)))])


def bad_events(rng: random.Random, arn: str, token: str, count: int):
    """Events that must be refused before anything is sent: each breaks the shape or a field."""
    good = {"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token}
    for i in range(count):
        event = dict(good, Step=rng.choice(["createSecret", "setSecret", "testSecret", "finishSecret"]))
        how = rng.randrange(7)
        if how == 0:
            del event[rng.choice(list(good))]
            label = "missing field"
        elif how == 1:
            event["Step"] = fuzz_scalar(rng)
            label = "Step"
        elif how == 2:
            event["ClientRequestToken"] = fuzz_scalar(rng)
            label = "ClientRequestToken"
        elif how == 3:
            # A well-formed token that is no version of the secret.
            event["ClientRequestToken"] = str(uuid.UUID(int=rng.getrandbits(128)))
            label = "unknown version"
        elif how == 4:
            event["SecretId"] = fuzz_scalar(rng)
            label = "SecretId"
        elif how == 5:
            event["RotationToken"] = rng.choice([1, [], {}, True])
            label = "RotationToken type"
        else:
            body = rng.choice([b"", b"null", b"[]", b"42", b'"createSecret"', b"{", b"\xff\xfe",
                               json.dumps(event).encode()[: rng.randrange(1, 40)]])
            yield i, "not an object", body
            continue
        yield i, label, json.dumps(event).encode()


def bad_secrets(rng: random.Random, valid: dict, count: int):
    """Secret values that must be refused before anything is sent: one field broken each time."""
    mutations = [
        ("engine", lambda: rng.choice(["oracle", "", "POSTGRES ", None, 5, "$(id)", "postgres;"])),
        ("username", lambda: rng.choice(["", None, 7, ["app"], "a\nb", "x" * 129, "\u0000app"])),
        ("password", lambda: rng.choice(["", None, 12345, {"p": 1}])),
        ("host", lambda: rng.choice(["", None, 1, []])),
        ("port", lambda: rng.choice([0, 70000, -1, "five", "54 32", 3.5, [5432], True])),
        ("dbname", lambda: rng.choice([5, [], {"d": 1}, True])),
        ("instanceIds", lambda: rng.choice([[], None, "i-0123456789abcdef0", [5], [None],
                                            [rng.choice(HOSTILE)], ["i-0123456789abcdef0", "../i-1"],
                                            [f"i-{n:017x}" for n in range(51)],
                                            ["i-0123456789ABCDEF0"], ["i-0123456789abcdef0\n"]])),
    ]
    for i in range(count):
        how = rng.randrange(len(mutations) + 2)
        if how == len(mutations):
            text = rng.choice(["", "not json", "[]", "null", '"x"', json.dumps(valid)[: rng.randrange(1, 60)]])
            yield i, "not a JSON object", text
            continue
        secret = dict(valid)
        if how == len(mutations) + 1:
            field = rng.choice(["engine", "username", "password", "host", "instanceIds"])
            del secret[field]
            yield i, f"no {field}", json.dumps(secret)
            continue
        field, value = mutations[how]
        secret[field] = value()
        if secret[field] is None:
            del secret[field]
        yield i, f"bad {field}", json.dumps(secret)


def test_generated_bad_input_is_refused_and_changes_nothing(function: LocalStack, login: Login):
    stack = function
    rng = random.Random(f"{SEED}-{login.db.name}")
    cases = CASES // 2
    sm = stack.client("secretsmanager")
    starts, deaths = len(stack.runtime.starts), len(stack.runtime.deaths)
    failures: list[str] = []

    def check(label: str, body: bytes, arn: str) -> None:
        before = stack.stages(arn)
        commands = len(stack.commands)
        r = stack.invoke(body)
        problems = []
        if r.ok:
            problems.append("answered OK")
        elif r.error_type not in KNOWN_ERRORS or not r.error_message:
            problems.append(f"unclear error {r.error}")
        if len(stack.commands) != commands:
            problems.append("a command was sent")
        if stack.stages(arn) != before:
            problems.append(f"stages changed: {before} -> {stack.stages(arn)}")
        if problems:
            failures.append(f"{label}: {body[:120]!r}: {'; '.join(problems)}")

    # Events: against the login's own secret, with a real pending version to aim at.
    token = stack.begin_rotation(login.arn)
    event_count = cases // 2
    for i, label, body in bad_events(rng, login.arn, token, event_count):
        check(f"event {i} ({label})", body, login.arn)
    sm.update_secret_version_stage(SecretId=login.arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)

    # Secret values: a broken AWSCURRENT refused by createSecret, or a broken AWSPENDING by setSecret.
    valid = login.value()
    secret_count = cases - event_count
    for i, label, text in bad_secrets(rng, valid, secret_count):
        as_pending = i % 2 == 1
        current = json.dumps(valid) if as_pending else text or " "
        sm.put_secret_value(SecretId=login.arn, SecretString=current, VersionStages=["AWSCURRENT"])
        token = stack.begin_rotation(login.arn)
        step = "createSecret"
        if as_pending:
            sm.put_secret_value(SecretId=login.arn, ClientRequestToken=token, SecretString=text or " ",
                                VersionStages=["AWSPENDING"])
            step = "setSecret"
        check(f"secret {i} ({label}, {step})", json.dumps(stack.rotation_event(step, login.arn, token)).encode(),
              login.arn)
        sm.update_secret_version_stage(SecretId=login.arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    sm.put_secret_value(SecretId=login.arn, SecretString=json.dumps(valid), VersionStages=["AWSCURRENT"])

    assert event_count + secret_count == cases > 0
    chaos.record("Bad input: generated events and secret values", cases, cases - len(failures), login.db.name)
    assert not failures, f"{len(failures)} of {event_count + secret_count} cases:\n" + "\n".join(failures[:40])
    # One process served them all (started by the first case if nothing had started it yet).
    assert len(stack.runtime.deaths) == deaths and len(stack.runtime.starts) == max(starts, 1), \
        "the process did not survive"
    assert not leaks(stack.function_log(), login.passwords)

    # The same warm process still rotates the (restored) secret.
    version = sm.rotate_secret(SecretId=login.arn)["VersionId"]
    rec = stack.wait_rotation(login.arn)
    assert rec.token == version and rec.ok, describe_rotation(rec)
    assert login.can_login(login.current_password())
