"""The local stack's account-wide quotas (local/quotas.py, enforced by the fault proxy): a burst past
a bucket is refused with the ThrottlingException SSM and Secrets Manager send, which botocore parses
as such; a refused call never reaches moto; the bucket refills at its rate and no faster. Time is a
hand-moved clock, so no assertion depends on the machine's speed.
"""

from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from local.quotas import Limit, Quotas, TokenBucket, assumed_limits
from local.stack import LocalStack


class HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_its_rate_and_never_more_than_its_burst():
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(5)] == [True, True, True, False, False]
    # Half a second at 2 per second is one call.
    assert [bucket.take(0.5) for _ in range(3)] == [True, False, False]
    # A long quiet spell refills to the burst, not beyond.
    assert [bucket.take(100.0) for _ in range(5)] == [True, True, True, False, False]


def test_operations_of_one_limit_share_its_bucket():
    clock = HandClock()
    quotas = Quotas(assumed_limits(secrets_writes=2), clock=clock)
    assert quotas.admit("secretsmanager", "PutSecretValue")
    assert quotas.admit("secretsmanager", "UpdateSecretVersionStage")
    assert not quotas.admit("secretsmanager", "PutSecretValue")
    # Reads are not metered, and SSM's buckets are SSM's own.
    assert all(quotas.admit("secretsmanager", "GetSecretValue") for _ in range(100))
    assert quotas.admit("ssm", "SendCommand")
    assert quotas.throttled == {"PutSecretValue": 1}


def test_one_operation_in_two_limits_is_refused():
    op = frozenset({("ssm", "SendCommand")})
    with pytest.raises(ValueError):
        Quotas([Limit("a", op, 1, 1), Limit("b", op, 1, 1)])


def through_proxy(stack: LocalStack, service: str):
    # One attempt: the test sees each answer, not botocore's retries.
    return stack.session().client(service, endpoint_url=stack.faults.url,
                                  config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def outcomes(call) -> str:
    try:
        call()
        return "ok"
    except botocore.exceptions.ClientError as e:
        error = e.response["Error"]
        if error["Code"] == "ThrottlingException":
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert error["Message"] == "Rate exceeded"
            return "throttled"
        return "ok"      # moto answered (an error of its own): the call went through


def test_a_burst_past_the_ssm_bucket_is_throttled_and_the_rate_holds(stack: LocalStack):
    clock = HandClock()
    stack.faults.quotas = Quotas([Limit("poll", frozenset({("ssm", "ListCommandInvocations")}), rate=2, burst=3)],
                                 clock=clock)
    ssm = through_proxy(stack, "ssm")
    first = len(stack.faults.calls)
    try:
        burst = [outcomes(ssm.list_command_invocations) for _ in range(5)]
        clock.now += 1.0
        after_a_second = [outcomes(ssm.list_command_invocations) for _ in range(3)]
        unmetered = [outcomes(ssm.list_documents) for _ in range(5)]
    finally:
        stack.faults.quotas = None
    assert burst == ["ok"] * 3 + ["throttled"] * 2
    assert after_a_second == ["ok", "ok", "throttled"]
    assert unmetered == ["ok"] * 5
    # A refused call never reached moto.
    refused = [c for c in stack.faults.calls[first:] if c.outcome == "throttled by quota"]
    assert len(refused) == 3 and {c.operation for c in refused} == {"ListCommandInvocations"}


def test_secrets_manager_writes_share_the_published_bucket(stack: LocalStack):
    clock = HandClock()
    name = "quota-test-secret"
    stack.client("secretsmanager").create_secret(Name=name, SecretString="{}")
    stack.faults.quotas = Quotas(assumed_limits(secrets_writes=2), clock=clock)
    sm = through_proxy(stack, "secretsmanager")
    try:
        results = [outcomes(lambda i=i: sm.put_secret_value(SecretId=name, SecretString=f'{{"n":{i}}}')) for i in range(3)]
        reads = [outcomes(lambda: sm.get_secret_value(SecretId=name)) for _ in range(5)]
    finally:
        stack.faults.quotas = None
        stack.client("secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert results == ["ok", "ok", "throttled"]
    assert reads == ["ok"] * 5
