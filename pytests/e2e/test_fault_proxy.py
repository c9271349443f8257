"""The fault proxy itself, seen by the reference SDK (botocore) instead of the function: requests
pass unchanged (moto still accepts their signatures), every call is recorded, and each injected
error has the shape its protocol gives it, which botocore's standard retry mode recognises as
retryable, as it does a reset connection.
"""

from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from local.fault_proxy import FAULTS
from local.stack import LocalStack

# One harmless read per service and protocol: JSON 1.1 (Secrets Manager, SSM), Query (SNS).
READS = {"secretsmanager": ("ListSecrets", "list_secrets"), "ssm": ("ListDocuments", "list_documents"),
         "sns": ("ListTopics", "list_topics")}


def through_proxy(stack: LocalStack, service: str, attempts: int):
    return stack.session().client(service, endpoint_url=stack.faults.url,
                                  config=Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                                                read_timeout=5))


# What botocore's standard mode retries: not a slow answer (its read timeout is the test below),
# nor SNS's 429, whose code (Throttled, AWS's own for ThrottledException) is not in botocore's
# list; the function retries every 429 by its status.
RETRIED = [(service, kind) for service in READS for kind in FAULTS
           if kind != "slow" and (service, kind) != ("sns", "429")]


@pytest.mark.parametrize("service,kind", RETRIED)
def test_an_injected_fault_is_what_the_sdk_retries(stack: LocalStack, service: str, kind: str):
    operation, method = READS[service]
    first = len(stack.faults.calls)
    rule = stack.faults.fail(operation, kind, times=1)
    try:
        getattr(through_proxy(stack, service, attempts=2), method)()
    finally:
        stack.faults.clear()
    assert rule.hits == 1
    assert stack.faults.operations_since(first) == [operation, operation]
    assert stack.faults.calls[-1].outcome == "200"


@pytest.mark.parametrize("service", list(READS))
@pytest.mark.parametrize("kind,status", [("500", 500), ("503", 503), ("429", 429), ("throttle", 400)])
def test_an_injected_error_has_its_protocol_shape(stack: LocalStack, service: str, kind: str, status: int):
    operation, method = READS[service]
    stack.faults.fail(operation, kind, times=None)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            getattr(through_proxy(stack, service, attempts=1), method)()
    finally:
        stack.faults.clear()
    error = e.value.response["Error"]
    # botocore found the code and message only if the body has the protocol's error shape.
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["Code"] and not error["Code"].isdigit(), e.value.response
    assert "fault proxy" in error["Message"], e.value.response


def test_a_slow_answer_is_held_until_the_caller_gives_up(stack: LocalStack):
    rule = stack.faults.fail("ListSecrets", "slow", times=1, delay_s=30)
    try:
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            through_proxy(stack, "secretsmanager", attempts=1).list_secrets()
    finally:
        stack.faults.clear()
    assert rule.hits == 1
    assert stack.faults.calls[-1].outcome.startswith("200, held")
