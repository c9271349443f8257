"""Fixtures for the end-to-end tests: one local stack for this package, real databases per module.

The scenarios run the real function (`./bootstrap` -> the Swift binary). If it is not built the
tests FAIL (never skip) and say so: an end-to-end suite that quietly skips proves nothing.

The stack is package-scoped, not session-scoped: moto's backends and settings are process-wide,
and pytests/hosts runs its own moto server (without authentication) in the same pytest process.
The stack is closed, and moto restored, when the last test of this package is done.
"""

from __future__ import annotations

import time

import pytest

from local.stack import LocalStack

from . import chaos, leak_sweep
from .helpers import ENGINES, DBHost, assert_invariants, binary_problem, make_login

LEAK_SCENARIO = "Leaks: every password and credential, in everything the suite produced"


@pytest.fixture(scope="package")
def stack():
    with LocalStack() as s:
        yield s
        # After the last end-to-end test: the leak sweep over all they produced (leak_sweep.py).
        result = leak_sweep.sweep(s)
        chaos.record(LEAK_SCENARIO, 1, int(not result.hits), result.summary())
        assert not result.hits, result.summary()


@pytest.fixture(scope="package")
def function(stack):
    """The stack, with the real function built. Fails (does not skip) when it is not."""
    problem = binary_problem()
    if problem:
        pytest.fail(f"{problem}: run `make build` first (the end-to-end tests run the real binary)",
                    pytrace=False)
    return stack


@pytest.fixture(scope="module", params=list(ENGINES))
def db(request, stack):
    spec = ENGINES[request.param]
    with spec["server"]() as server:
        stack.register_instance(spec["instance_id"], "Linux", server.host_env())
        yield DBHost(request.param, server, spec["engine"], spec["instance_id"], spec["dbname"])


@pytest.fixture
def login(function, db):
    """A fresh login on the engine's database with its secret; the invariants are checked after."""
    stack = function
    since = time.time()
    lg = make_login(stack, db)
    try:
        yield lg
    finally:
        stack.clear_faults()
    assert_invariants(stack, lg, since)
