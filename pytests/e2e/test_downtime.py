"""Application downtime during rotations, both strategies, both engines: an application loop
(local/downtime.py) reads AWSCURRENT with a cache of CACHE_S seconds and connects every 50 ms with
a real client while rotations run back to back (`chaos.scale(2, 20)` of them: in make test one to the clone and one back), GAP_S apart.

Alternating users must show zero failed connections: the gap between rotations is longer than the
cache, so applications have left the login a rotation changes before it changes (with a cache
longer than the time between rotations, they would not have). Single user is measured and
recorded, not judged: its failures depend on how long the steps and the cache take.
"""

from __future__ import annotations

import secrets
import time

import pytest

from local.downtime import ApplicationLoop, Measurement
from local.stack import LocalStack

from . import chaos
from .helpers import Login, describe_rotation, make_alternating_login, rotate

CACHE_S = 2.0
GAP_S = CACHE_S + 1.0   # from the end of one rotation to the start of the next: longer than the cache
ROTATIONS = chaos.scale(2, 20)
WARM_UP_CONNECTIONS = 5


def table_query(login: Login, table: str) -> str:
    server = login.db.server
    return f"SELECT count(*) FROM {table if login.db.name == 'postgres' else f'{server.app_database}.{table}'}"


def measure(stack: LocalStack, login: Login, query: str) -> Measurement:
    with ApplicationLoop(stack.client("secretsmanager"), login.arn, CACHE_S, query) as app:
        # Before any rotation the application works: a failure later is the rotation's doing.
        warm_until = time.monotonic() + 60
        while app.measurement.connections < WARM_UP_CONNECTIONS and not app.measurement.crashed \
                and time.monotonic() < warm_until:
            time.sleep(0.1)
        assert app.measurement.connections >= WARM_UP_CONNECTIONS and app.measurement.failed == 0, app.measurement
        for _ in range(ROTATIONS):
            rec = rotate(stack, login.arn)
            assert rec.ok, describe_rotation(rec)
            time.sleep(GAP_S)
    m = app.measurement
    assert not m.crashed, f"the application loop stopped early: {m.crashed}"
    # The loop really ran all along (an attempt takes longer than 50 ms on a busy machine, so the
    # bound is loose: ten per rotation).
    assert m.connections >= WARM_UP_CONNECTIONS + 10 * ROTATIONS, m
    return m


@pytest.mark.chaos("Downtime: alternating users, zero failed connections")
def test_alternating_users_cause_no_failed_connection(function: LocalStack, db):
    stack = function
    table = "items_" + secrets.token_hex(4)
    login = make_alternating_login(stack, db, table)
    m = measure(stack, login, table_query(login, table))
    chaos.record_downtime("alternating users", db.name, ROTATIONS, m.connections, m.failed, CACHE_S)
    assert m.failed == 0, f"{m.failed} of {m.connections} connections failed: {dict(m.errors)}"
    assert login.value()["username"] == (login.username + "_clone" if ROTATIONS % 2 else login.username)


if chaos.FULL:  # measured for docs/RELIABILITY.md, not judged: make test does not collect it
    @pytest.mark.chaos("Downtime: single user, measured")
    def test_single_user_downtime_is_measured(function: LocalStack, login: Login):
        stack = function
        table = "items_" + secrets.token_hex(4)
        login.db.server.create_table(table)
        login.db.server.grant("SELECT", table, login.username)
        m = measure(stack, login, table_query(login, table))
        chaos.record_downtime("single user", login.db.name, ROTATIONS, m.connections, m.failed, CACHE_S)
        print(f"single user, {login.db.name}: {m.failed} of {m.connections} connections failed: {dict(m.errors)}")
