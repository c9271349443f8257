"""The shared layout on the local stack: one stack from template-fleet.yaml (its function, role,
documents and policies), for this package. Secrets are enrolled into it as template-secret.yaml
deploys them (LocalStack.enroll). Like pytests/e2e, it runs the real binary and fails, never skips,
when it is not built; the stacks are package-scoped, so the two packages' stacks never overlap."""

from __future__ import annotations

import pytest

from local.stack import REPO, LocalStack, binary_problem


@pytest.fixture(scope="package")
def fleet():
    problem = binary_problem()
    if problem:
        pytest.fail(f"{problem}: run `make build` first (the end-to-end tests run the real binary)", pytrace=False)
    with LocalStack(template=REPO / "template-fleet.yaml") as stack:
        yield stack
