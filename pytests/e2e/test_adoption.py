"""Adopting a login that applications already use with their own password (docs/deploying.md,
"Adopting a login in use"): the stack writes a random password no host has and marks it
`"passwordPlaceholder":true`; a failed first rotation must leave the database on the applications'
password instead of "restoring" that placeholder, and the retry of the same version finishes.
"""

from __future__ import annotations

import secrets
import time

from local.stack import LocalStack

from .helpers import STEPS, Login, alerts_since, assert_alert, assert_invariants, random_password, rotate


def test_a_failed_first_rotation_leaves_the_applications_password(function: LocalStack, db):
    stack = function
    since = time.time()
    username = "app_" + secrets.token_hex(4)
    own = random_password()                  # what the applications log in with today
    db.server.create_login(username, own)
    placeholder = random_password()          # what the deployment wrote into the secret
    arn = stack.create_db_secret(f"{db.name}/{username}", db.engine, db.server, username, placeholder,
                                 [db.instance_id], dbname=db.dbname, extra={"passwordPlaceholder": True})
    login = Login(stack, db, username, placeholder, arn, passwords=[own, placeholder])
    n_alerts = len(stack.alerts())

    # The first `set` never reaches the host (the agent is unreachable for that one command).
    stack.set_fault(db.instance_id, end_as="Undeliverable", actions={"set"}, times=1)
    try:
        rec = rotate(stack, arn)
    finally:
        stack.clear_faults()
    assert not rec.ok
    assert login.can_login(own), "the applications' own password no longer works"
    assert not login.can_login(placeholder), "the deployment's placeholder was put on the database"
    assert stack.stages(arn)[rec.token] == ["AWSPENDING"]
    alerts = alerts_since(stack, n_alerts)
    assert_alert(alerts, login, "setSecret")
    assert any("Nothing was restored: AWSCURRENT holds the deployment's placeholder password" in a["message"] for a in alerts)

    # Fixed: Secrets Manager retries the same version, which finishes; the new AWSCURRENT is a real
    # password the database has, without the mark.
    for step in STEPS:
        r = stack.invoke(stack.rotation_event(step, arn, rec.token))
        assert r.ok, f"retry {step}: {r.error}"
    assert stack.stages(arn)[rec.token] == ["AWSCURRENT"]
    assert "passwordPlaceholder" not in login.value()
    assert login.can_login(login.current_password()) and not login.can_login(own)
    assert_invariants(stack, login, since)
