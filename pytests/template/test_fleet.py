"""The shared layout's templates (docs/deploying.md, "Deploying a fleet"): template-fleet.yaml, the
shared rotator stack, and template-secret.yaml, the unit that enrolls one secret, both generated
from template.in.yaml's members (ops/template.py). cfn-lint runs on them in test_template.py."""

from __future__ import annotations

import copy

import pytest

from local import cfn, ssm_runner
from ops import template

REPO = template.REPO
PREFIX = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:rotator/${AWS::StackName}/*"
FLEET_TAG = {"StringEquals": {"secretsmanager:ResourceTag/RotatorFleet": {"Ref": "AWS::StackName"}}}


@pytest.fixture(scope="module")
def fleet():
    return cfn.load_template(REPO / "template-fleet.yaml")


@pytest.fixture(scope="module")
def unit():
    return cfn.load_template(REPO / "template-secret.yaml")


@pytest.fixture(scope="module")
def single():
    return cfn.load_template(REPO / "template.yaml")


def test_the_generated_templates_are_current():
    for path, text in template.outputs().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: run `make template`"


def test_the_shared_stack_holds_nothing_of_any_one_secret(fleet):
    kinds = {r["Type"] for r in fleet["Resources"].values()}
    assert not kinds & {"AWS::SecretsManager::Secret", "AWS::SecretsManager::ResourcePolicy",
                        "AWS::SecretsManager::RotationSchedule"}, kinds
    assert not {"LoginName", "DatabaseInstanceIds", "MasterSecretArn"} & set(fleet["Parameters"])


def _without_login(content: dict) -> dict:
    content = copy.deepcopy(content)
    content["parameters"].pop("Login")
    return content


def test_the_shared_documents_are_the_single_stacks_but_for_the_login_they_pin(fleet, single):
    shared = ssm_runner.documents_in(fleet)
    own = ssm_runner.documents_in(single)
    assert shared.keys() == own.keys()
    for name in own:
        assert _without_login(shared[name]) == _without_login(own[name]), name
        login = shared[name]["parameters"]["Login"]
        assert login["default"] == "tag:RotatorLogin" and login["allowedValues"] == ["tag:RotatorLogin"], name
    variables = fleet["Resources"]["RotationFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LOGIN_TAG"] == "RotatorLogin"
    assert single["Resources"]["RotationFunction"]["Properties"]["Environment"]["Variables"]["LOGIN_TAG"] == ""


def _secret_statements(doc: dict) -> list[dict]:
    return [st for st in doc["Statement"]
            if any(a.startswith("secretsmanager:") and a != "secretsmanager:GetRandomPassword"
                   for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))]


def test_every_right_on_secrets_is_the_fleets_prefix_and_tag_never_star(fleet):
    """The function's and the hosts' rights follow enrollment: a secret named under the prefix and
    tagged for the fleet, nothing else, and no statement on secrets with Resource '*'."""
    resources = fleet["Resources"]
    policies = [resources["RotationFunctionPolicy"], resources["DatabaseHostAccessPolicy"]]
    for policy in policies:
        statements = _secret_statements(policy["Properties"]["PolicyDocument"])
        assert statements
        for st in statements:
            assert st["Resource"] == {"Fn::Sub": PREFIX}, st
            assert st["Condition"]["StringEquals"] == FLEET_TAG["StringEquals"], st
            assert set(st["Condition"]) <= {"StringEquals", "StringLike"}, st
    decrypt = next(st for st in resources["DatabaseHostAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                   if st["Action"] == "kms:Decrypt")
    assert decrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:SecretARN": {"Fn::Sub": PREFIX}}
    permission = resources["RotationFunctionInvokePermission"]["Properties"]
    assert permission["SourceArn"] == {"Fn::Sub": PREFIX} and permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert resources["RotationFailureRule"]["Properties"]["EventPattern"]["detail"]["additionalEventData"]["SecretId"] == [
        {"prefix": {"Fn::Sub": PREFIX[:-1]}}]


def test_what_the_configuration_asks_of_a_secret_the_role_asks_too(fleet):
    """Threat 38: LOGIN_TAG and SECRET_KEY_ARN are the function's configuration, which D may change;
    the role it cannot change asks the same. Its value is read and written only on a secret with a
    RotatorLogin tag (describing one stays allowed, so the function can say what is missing), and
    no key but the fleet's is used through Secrets Manager."""
    statements = {st["Sid"]: st for st in fleet["Resources"]["RotationFunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    value = statements["RotateTheSecret"]
    assert sorted(value["Action"]) == ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                                       "secretsmanager:UpdateSecretVersionStage"]
    assert value["Condition"]["StringLike"] == {"secretsmanager:ResourceTag/RotatorLogin": "?*"}
    assert statements["DescribeTheSecrets"]["Action"] == "secretsmanager:DescribeSecret"
    assert statements["DescribeTheSecrets"]["Condition"] == FLEET_TAG
    key = statements["OnlyTheFleetsKeyThroughSecretsManager"]
    assert key["Effect"] == "Deny" and sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["NotResource"] == {"Fn::GetAtt": ["SecretKey", "Arn"]} and "Resource" not in key
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}}


def test_the_unit_names_tags_and_guards_its_secret(unit):
    resources = unit["Resources"]
    assert set(resources) == {"DatabaseSecret", "DatabaseSecretPolicy", "RotationSchedule"}
    secret = resources["DatabaseSecret"]["Properties"]
    assert secret["Name"] == {"Fn::Sub": "rotator/${RotatorStackName}/${AWS::StackName}"}
    assert secret["Tags"] == [{"Key": "RotatorFleet", "Value": {"Ref": "RotatorStackName"}},
                              {"Key": "RotatorLogin", "Value": {"Ref": "LoginName"}}]
    # Only administrators may change the tags (the login pin) or the policy that says so, and
    # the template refuses to deploy without any.
    assert "Default" not in unit["Parameters"]["SecretAdministratorArns"]
    assert unit["Rules"]["AdministratorsAreNamed"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SecretAdministratorArns"}]}, ""]}]}
    managing = next(st["Fn::If"][1] for st in resources["DatabaseSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]
                    if "Fn::If" in st)
    assert {"secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:PutResourcePolicy",
            "secretsmanager:DeleteResourcePolicy"} <= set(managing["Action"])
    assert managing["Effect"] == "Deny" and managing["Principal"] == "*"


def test_the_units_guard_outlives_the_unit_and_the_function_checks_the_fleets_key(fleet, unit):
    """Threat 35: deleting (or replacing) a unit keeps the secret with its prefix and tags, so its
    resource policy is kept with it; and the function refuses a secret on any key but the fleet's,
    the one the unit names."""
    policy = unit["Resources"]["DatabaseSecretPolicy"]
    assert policy["DeletionPolicy"] == "Retain" and policy["UpdateReplacePolicy"] == "Retain"
    assert unit["Resources"]["DatabaseSecret"]["Properties"]["KmsKeyId"] == {
        "Fn::ImportValue": {"Fn::Sub": "${RotatorStackName}-SecretKeyArn"}}
    assert fleet["Outputs"]["SecretKeyArn"]["Value"] == {"Fn::GetAtt": ["SecretKey", "Arn"]}
    variables = fleet["Resources"]["RotationFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SECRET_KEY_ARN"] == {"Fn::GetAtt": ["SecretKey", "Arn"]}


def _denies(statement: dict, action: str, arn: str, context: dict) -> bool:
    """Whether `statement` (a Deny, its principal condition already checked) denies the request,
    as IAM evaluates its String conditions (local/iam_policy.py): beside an allow of everything."""
    from local.iam_policy import Resource, evaluate
    deny = {key: statement[key] for key in ("Sid", "Effect", "Action", "Resource")}
    deny["Condition"] = {op: keys for op, keys in statement["Condition"].items() if op.startswith("String")}
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    return evaluate([deny, allow], action, [Resource(arn, context)]).explicit_deny == statement["Sid"]


def test_the_hosts_role_reads_a_unit_secret_only_from_the_units_instances(unit):
    """Threat 36: the shared hosts' role (any local user of any fleet host can take its credentials
    from IMDS) reads and describes a unit's secret only from that unit's instances: denied from any
    other instance, and off any instance (no ec2:SourceInstanceARN)."""
    host_role = "arn:aws:iam::123456789012:role/fleet-hosts"
    imports = {"fleet-DatabaseHostRoleArn": host_role, "fleet-RotationFunctionRoleArn": "arn:aws:iam::123456789012:role/fn"}
    refs = {"RotatorStackName": "fleet", "DatabaseInstanceIds": ["i-0aaa", "i-0bbb"], "AWS::Partition": "aws",
            "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::StackName": "orders"}
    statements = unit["Resources"]["DatabaseSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]
    deny = cfn.resolve(next(st for st in statements if st.get("Sid") == "DenyTheHostsRoleOnOtherInstances"), refs, imports=imports)
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"]["ArnEquals"] == {"aws:PrincipalArn": host_role}
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/fleet/orders-AbC123"
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"):
        for instance in ("i-0aaa", "i-0bbb"):
            assert not _denies(deny, action, arn, {"ec2:SourceInstanceARN": f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"})
        for other in ("i-0ccc", "i-0aaaa", "i-0aa"):
            assert _denies(deny, action, arn, {"ec2:SourceInstanceARN": f"arn:aws:ec2:us-east-1:123456789012:instance/{other}"})
        assert _denies(deny, action, arn, {})


def test_the_fleets_key_serves_only_secrets_under_its_prefix(fleet):
    """Threat 37: the key policy's allows (the hosts' and the function's among them) are each enough
    on their own, so the encryption-context condition is a deny of every use of the key for a secret
    that is not under the fleet's prefix, or names none."""
    statements = fleet["Resources"]["SecretKey"]["Properties"]["KeyPolicy"]["Statement"]
    refs = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::StackName": "fleet"}
    deny = cfn.resolve(next(st for st in statements if st.get("Sid") == "OnlyTheFleetsSecrets"), refs)
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and set(deny["Condition"]) == {"StringNotLike"}
    prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/"
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert not _denies(deny, action, "key", {"kms:EncryptionContext:SecretARN": prefix + "fleet/orders-AbC123"})
        for other in (prefix + "fleet-eu/orders-AbC123", prefix + "other/x-AbC123", prefix[:-len("rotator/")] + "x-AbC123"):
            assert _denies(deny, action, "key", {"kms:EncryptionContext:SecretARN": other})
        assert _denies(deny, action, "key", {})


def test_a_with_that_matches_nothing_or_an_unknown_member_is_refused(tmp_path):
    source = tmp_path / "x.in.yaml"
    source.write_text("Resources:\n  #copy Resources: RotationFunctionRole\n  #with \"no such text\" => \"x\"\n")
    with pytest.raises(template.TemplateError, match="matches nothing"):
        template.expand_copies(source)
    source.write_text("Resources:\n  #copy Resources: NoSuchResource\n")
    with pytest.raises(template.TemplateError, match="no Resources member NoSuchResource"):
        template.expand_copies(source)
    source.write_text("Resources:\n  #copy Resources: RotationFunctionLogGroup\n")
    assert "".join(template.expand_copies(source)) == "Resources:\n" + "".join(
        template.members(template.SOURCE.read_text(encoding="utf-8"), "Resources")["RotationFunctionLogGroup"])
