"""Enrolling secrets in a shared rotator (docs/deploying.md, "Deploying a fleet"), end to end on the
local stack with the real binary and real PostgreSQL: a second and a third secret are enrolled from
template-secret.yaml without anything of the shared stack changing, and each rotates, as the second
and the hundredth of a hundred do; a writer of a
secret's value who names another login gets nothing done on any host (threat 31); and what the shared
policy allows is exactly the fleet's prefix and tag (least privilege, the shared layout)."""

from __future__ import annotations

import json
import time

from local.authorization import AWS_MANAGED_SECRETS_KEY
from local.iam_policy import Resource, evaluate
from local.stack import ACCOUNT, REGION, STACK_NAME, LocalStack

from .support import INSTANCE_ID, enroll, rotate


def shared_stack(stack: LocalStack) -> dict:
    """Everything of the shared stack an enrollment could have had to change: what the local stack
    holds of it and what AWS (moto) holds, its roles' policies, its documents, its key and topic."""
    iam, ssm = stack.client("iam"), stack.client("ssm")
    roles = {role: {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]} for role in stack.role_arns}
    documents = {name: {k: ssm.get_document(Name=name)[k] for k in ("Content", "DocumentVersion")}
                 for name in stack.document_names.values()}
    lam = stack.client("lambda")
    function = lam.get_function_configuration(FunctionName="rotator")
    try:
        invokers = json.loads(lam.get_policy(FunctionName="rotator")["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        invokers = None
    return {"policy": stack.function_policy(), "environment": dict(stack.function_env),
            "documents": json.dumps(stack.documents, sort_keys=True), "exports": stack.exports(),
            "function": {k: function.get(k) for k in ("Environment", "Role", "Timeout", "MemorySize", "CodeSha256")},
            "invokers": invokers, "roles": roles, "ssm documents": documents,
            "key policy": stack.client("kms").get_key_policy(KeyId=stack.exports()[f"{STACK_NAME}-SecretKeyArn"],
                                                              PolicyName="default")["Policy"],
            "topic": stack.client("sns").get_topic_attributes(TopicArn=stack.topic_arn)["Attributes"].get("Policy")}


def commands_for(stack: LocalStack, arn: str) -> list:
    return [c for c in stack.commands if arn in json.dumps(c.parameters)]


def test_a_second_and_a_third_secret_enroll_without_changing_the_shared_stack_and_rotate(fleet, postgres):
    since = time.time()
    before = shared_stack(fleet)
    arns = {login: enroll(fleet, postgres, login) for login in ("fleet_app2", "fleet_app3")}
    assert shared_stack(fleet) == before
    for login, arn in arns.items():
        tags = {t["Key"]: t["Value"] for t in fleet.client("secretsmanager").describe_secret(SecretId=arn)["Tags"]}
        assert tags == {"RotatorFleet": STACK_NAME, "RotatorLogin": login}
        assert arn.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rotator/{STACK_NAME}/secret-{login}-")
        rec = rotate(fleet, arn)
        assert rec.ok, rec
        current = fleet.secret_value(arn)
        assert current["username"] == login and "passwordPlaceholder" not in current
        assert postgres.can_login(login, current["password"]) and not postgres.can_login(login, "Initial-Pass-12")
    # Every request the function made was allowed by the shared policy on the enrolled secret itself.
    requests = [r for r in fleet.function_requests()
                if r.at >= since and r.service == "secretsmanager" and r.action != "GetRandomPassword"]
    assert requests and all(r.ok for r in requests)
    assert {tuple(r.resources) for r in requests} == {(arn,) for arn in arns.values()}


def test_a_hundredth_secret_enrolls_without_changing_the_shared_stack_and_rotates(fleet, postgres):
    """A hundred units enrolled one after the other: the shared stack is what it was before the
    first, and the second and the hundredth rotate end to end on the real PostgreSQL, each changing
    its own login only."""
    before = shared_stack(fleet)
    logins = [f"fleet_hundred_{n:03d}" for n in range(1, 101)]
    arns = [enroll(fleet, postgres, login) for login in logins]
    assert shared_stack(fleet) == before
    assert len(set(arns)) == 100
    for n in (2, 100):
        login, arn = logins[n - 1], arns[n - 1]
        rec = rotate(fleet, arn)
        assert rec.ok, rec
        current = fleet.secret_value(arn)
        assert current["username"] == login and "passwordPlaceholder" not in current
        assert postgres.can_login(login, current["password"]) and not postgres.can_login(login, "Initial-Pass-12")
        commands = commands_for(fleet, arn)
        assert commands and all(c.instance_ids == [INSTANCE_ID] for c in commands)
    # The others were not rotated: the first still has its own password.
    assert postgres.can_login(logins[0], "Initial-Pass-12")


def test_a_current_version_naming_another_login_changes_no_host(fleet, postgres):
    """A writer of the secret's value (threat 31) makes AWSCURRENT name another application's login:
    the function refuses before any command, and the other login keeps its password."""
    arn = enroll(fleet, postgres, "fleet_victim_owner")
    postgres.create_login("fleet_other", "Other-Pass-12")
    current = fleet.secret_value(arn)
    forged = dict(current, username="fleet_other", password="Other-Pass-12")
    fleet.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(forged),
                                                    VersionStages=["AWSCURRENT"])
    since = time.time()
    rec = rotate(fleet, arn)
    assert not rec.ok and rec.failed_step is not None and rec.failed_step.step == "createSecret"
    assert rec.failed_step.error_type == "InvalidSecret" and "RotatorLogin" in (rec.failed_step.error_message or "")
    assert commands_for(fleet, arn) == []
    assert postgres.can_login("fleet_other", "Other-Pass-12")
    assert any(arn in a["message"] for a in fleet.alerts() if a.get("raw")), "no alert named the secret"
    assert all(r.ok for r in fleet.function_requests() if r.at >= since)


def test_a_secret_the_hosts_owner_did_not_list_changes_nothing_on_it(fleet, postgres):
    """Enrolling a secret (its unit, its tags) is the secret's owner's act: a host changes a login
    for it only once the host's owner lists it (threat 33). Unlisted, setSecret fails on the host
    (exit 3), the rotation is rolled back, and the login keeps its password."""
    arn = enroll(fleet, postgres, "fleet_unlisted", on_host=False)
    rec = rotate(fleet, arn)
    assert not rec.ok and rec.failed_step is not None and rec.failed_step.step == "setSecret"
    assert "does not list the secret" in (rec.failed_step.error_message or ""), rec.failed_step
    assert postgres.can_login("fleet_unlisted", "Initial-Pass-12")


def made_by_hand(stack: LocalStack, server, login: str) -> str:
    """A secret under the fleet's prefix with the fleet's tags, made without a unit (so on the
    account's aws/secretsmanager key), for a new login the host's owner lists. Returns its ARN."""
    server.create_login(login, "Initial-Pass-12")
    arn = stack.create_db_secret(f"rotator/{STACK_NAME}/{login}", "postgres", server, login, "Initial-Pass-12", [INSTANCE_ID])
    stack.client("secretsmanager").tag_resource(SecretId=arn, Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME},
                                                                   {"Key": "RotatorLogin", "Value": login}])
    stack.allow_on_host(INSTANCE_ID, arn, login)
    return arn


def denied_before_any_host(stack: LocalStack, arn: str, message: str, **configuration: str) -> list:
    """A rotation of `arn` with the function's environment changed so (threat 38's D): it fails in
    createSecret on a denial whose message says `message`, no command reaches a host, and the
    function's denied requests are returned."""
    since = time.time()
    with stack.function_configured(**configuration):
        rec = rotate(stack, arn)
    assert not rec.ok and rec.failed_step is not None and rec.failed_step.step == "createSecret"
    assert message in (rec.failed_step.error_message or ""), rec.failed_step
    assert commands_for(stack, arn) == []
    denied = [r for r in stack.function_requests() if r.at >= since and not r.ok]
    assert denied
    return denied


def test_a_secret_made_by_hand_on_another_key_is_refused_before_any_host(fleet, postgres):
    """A secret created under the fleet's prefix with the fleet's tags but not through a unit, on the
    account's aws/secretsmanager key, which every principal of the account may use (threat 35): the
    function refuses it before any host command, even on a host that lists it."""
    login = "fleet_by_hand"
    arn = made_by_hand(fleet, postgres, login)
    rec = rotate(fleet, arn)
    assert not rec.ok and rec.failed_step is not None and rec.failed_step.error_type == "InvalidSecret"
    assert "not the fleet's key" in (rec.failed_step.error_message or ""), rec.failed_step
    assert commands_for(fleet, arn) == [] and postgres.can_login(login, "Initial-Pass-12")


def test_a_configuration_without_the_key_check_still_uses_no_other_key(fleet, postgres):
    """Threat 38: whoever may change the function's configuration empties SECRET_KEY_ARN, so the
    function no longer refuses a secret made by hand on aws/secretsmanager (35). Its role still
    denies any key but the fleet's through Secrets Manager: the secret's value is never read, and
    no command reaches the host, which lists it."""
    login = "fleet_keyless_config"
    arn = made_by_hand(fleet, postgres, login)
    denied = denied_before_any_host(fleet, arn, "Access to KMS is not allowed", SECRET_KEY_ARN="")
    assert {(r.action, r.denied_resource) for r in denied} == {("GetSecretValue", AWS_MANAGED_SECRETS_KEY)}
    assert postgres.can_login(login, "Initial-Pass-12")


def test_a_configuration_without_the_login_pin_still_changes_no_untagged_secret(fleet, postgres):
    """Threat 38: whoever may change the function's configuration empties LOGIN_TAG, so the function
    no longer refuses an enrolled secret whose RotatorLogin tag was taken off (31). Its role still
    reads and writes the value of a secret carrying the tag only: no command reaches the host."""
    arn = enroll(fleet, postgres, "fleet_untagged_config")
    fleet.client("secretsmanager").untag_resource(SecretId=arn, TagKeys=["RotatorLogin"])
    denied = denied_before_any_host(fleet, arn, "secretsmanager:GetSecretValue", LOGIN_TAG="")
    assert {(r.action, r.error) for r in denied} == {("GetSecretValue", "AccessDenied")}
    assert postgres.can_login("fleet_untagged_config", "Initial-Pass-12")


def test_the_shared_policy_allows_the_fleets_tagged_secrets_only(fleet, postgres):
    policy = fleet.function_policy()
    arn = enroll(fleet, postgres, "fleet_app4")
    sm = fleet.client("secretsmanager")
    prefix = f"rotator/{STACK_NAME}/"
    untagged = sm.create_secret(Name=prefix + "untagged", SecretString="{}")["ARN"]
    elsewhere = sm.create_secret(Name="elsewhere/tagged", SecretString="{}",
                                 Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME}])["ARN"]

    def tagged(secret_arn: str, fleet_name: str = STACK_NAME, login: str | None = "app") -> Resource:
        tags = {"RotatorFleet": fleet_name} | ({"RotatorLogin": login} if login is not None else {})
        return Resource(secret_arn, {f"secretsmanager:ResourceTag/{k}": v for k, v in tags.items()})

    for action in ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                   "secretsmanager:UpdateSecretVersionStage"):
        assert evaluate(policy, action, [tagged(arn)]).allowed, action
        assert not evaluate(policy, action, [Resource(untagged)]).allowed, action
        assert not evaluate(policy, action, [tagged(untagged, "another-fleet")]).allowed, action
        assert not evaluate(policy, action, [tagged(elsewhere)]).allowed, action
        # Without a RotatorLogin tag (or with an empty one), only describing it (threat 38).
        for login in (None, ""):
            assert evaluate(policy, action, [tagged(arn, login=login)]).allowed == (action == "secretsmanager:DescribeSecret")
    assert not evaluate(policy, "secretsmanager:DeleteSecret", [tagged(arn)]).allowed
    assert not evaluate(policy, "secretsmanager:TagResource", [tagged(arn)]).allowed


def test_a_secret_that_loses_the_fleet_tag_is_out_of_the_functions_reach(fleet, postgres):
    """The tag condition is what scopes the function: untagged, an enrolled secret's rotation is
    denied at its first call, and nothing reaches a host."""
    arn = enroll(fleet, postgres, "fleet_app5")
    fleet.client("secretsmanager").untag_resource(SecretId=arn, TagKeys=["RotatorFleet"])
    current = fleet.version_with(arn, "AWSCURRENT")
    since = time.time()
    rec = rotate(fleet, arn)
    assert not rec.ok and rec.failed_step is not None and "secretsmanager:DescribeSecret" in (rec.failed_step.error_message or "")
    denied = [r for r in fleet.function_requests() if r.at >= since and not r.ok]
    assert denied and {r.error for r in denied} == {"AccessDenied"} and {tuple(r.resources) for r in denied} == {(arn,)}
    assert commands_for(fleet, arn) == [] and fleet.version_with(arn, "AWSCURRENT") == current


def test_the_shared_policy_is_the_single_stacks_but_for_its_scope_on_secrets():
    """Each statement of the single stack's policy is shown needed on the real binary
    (pytests/e2e/test_least_privilege.py); the shared stack's are the same statements, with the
    secrets' resource widened to the fleet's prefix and narrowed by its tag, and nothing else."""
    from local.cfn import load_template, role_policy_statements
    from local.stack import REPO
    single = role_policy_statements(load_template(REPO / "template.yaml"), "RotationFunction")
    shared = role_policy_statements(load_template(REPO / "template-fleet.yaml"), "RotationFunction")
    # What the shared layout adds (threat 38): describing a secret apart from using its value, and
    # the deny of every other key (pytests/template/test_fleet.py says what they hold).
    added = {"DescribeTheSecrets", "OnlyTheFleetsKeyThroughSecretsManager"}
    assert [st.get("Sid") for st in shared if st.get("Sid") not in added] == [st.get("Sid") for st in single]
    assert added <= {st.get("Sid") for st in shared}
    for mine, theirs in zip((st for st in shared if st.get("Sid") not in added), single, strict=True):
        if mine.get("Sid") == "RotateTheSecret":
            assert theirs["Resource"] == {"Ref": "DatabaseSecret"} and "Condition" not in theirs
            assert theirs["Action"] == ["secretsmanager:DescribeSecret", *mine["Action"]]
            mine, theirs = ({k: v for k, v in st.items() if k not in ("Resource", "Condition", "Action")} for st in (mine, theirs))
        assert mine == theirs
