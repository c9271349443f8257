"""The shared layout on the local stack: one stack from template-fleet.yaml (its function, role,
documents and policies), for this package. Secrets are enrolled into it as template-secret.yaml
deploys them (LocalStack.enroll). Like pytests/e2e, it runs the real binary and fails, never skips,
when it is not built; the stacks are package-scoped, so the two packages' stacks never overlap."""

from __future__ import annotations

import pytest

from local.databases import PostgresServer
from local.stack import REPO, LocalStack, binary_problem

from .support import INSTANCE_ID


@pytest.fixture(scope="package")
def fleet():
    problem = binary_problem()
    if problem:
        pytest.fail(f"{problem}: run `make build` first (the end-to-end tests run the real binary)", pytrace=False)
    with LocalStack(template=REPO / "template-fleet.yaml") as stack:
        yield stack


@pytest.fixture(scope="package")
def postgres(fleet: LocalStack):
    """One PostgreSQL for the package's logins, on the host INSTANCE_ID."""
    with PostgresServer() as server:
        fleet.register_instance(INSTANCE_ID, "Linux", server.host_env())
        yield server
