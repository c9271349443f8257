"""local/iam_policy.py: the evaluation of identity-based policies the local stack applies to the
function's requests, and local/cfn.py's resolution of the template's statements for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.cfn import UnresolvedIntrinsic, load_template, resolve, role_policy_statements
from local.iam_policy import Resource, UnsupportedPolicy, evaluate, explicit_deny, matches

REPO = Path(__file__).resolve().parents[2]
DOC = "arn:aws:ssm:us-east-1:123456789012:document/RotatorPostgres"
INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
TAGGED = {"ssm:resourceTag/RotatorDatabase": "prod"}

RUN_DOCUMENT = {"Sid": "Docs", "Effect": "Allow", "Action": "ssm:SendCommand", "Resource": [DOC]}
RUN_ON_TAGGED = {"Sid": "Hosts", "Effect": "Allow", "Action": "ssm:SendCommand",
                 "Resource": ["arn:aws:ec2:us-east-1:123456789012:instance/*"],
                 "Condition": {"StringEquals": {"ssm:resourceTag/RotatorDatabase": "prod"}}}


def allowed(statements, action, *resources: Resource) -> bool:
    return evaluate(statements, action, resources).allowed


# ----------------------------------------------------------------------------- wildcards
@pytest.mark.parametrize("glob, value, hit", [
    ("*", "anything:at/all", True),
    ("arn:aws:ec2:us-east-1:1:instance/*", "arn:aws:ec2:us-east-1:1:instance/i-1", True),
    ("arn:aws:ec2:us-east-1:1:instance/*", "arn:aws:ec2:us-east-1:1:volume/vol-1", False),
    ("arn:aws:ssm:*:1:document/Rot?tor", "arn:aws:ssm:eu-west-1:1:document/Rotator", True),
    ("arn:aws:ssm:*:1:document/Rot?tor", "arn:aws:ssm:eu-west-1:1:document/Roootator", False),
    ("a.b", "axb", False),                       # regex characters are literal
    ("doc/Rotator", "doc/RotatorX", False),      # the whole value, not a prefix
    ("doc/rotator", "doc/Rotator", False),       # resources are case-sensitive
])
def test_wildcard_match(glob, value, hit):
    assert matches(glob, value) is hit


def test_actions_match_by_wildcard_and_ignore_case():
    st = [{"Effect": "Allow", "Action": ["secretsmanager:Get*"], "Resource": "*"}]
    assert allowed(st, "secretsmanager:GetSecretValue", Resource("*"))
    assert allowed(st, "SecretsManager:getrandompassword", Resource("*"))
    assert not allowed(st, "secretsmanager:PutSecretValue", Resource("*"))
    assert not allowed(st, "ssm:GetCommandInvocation", Resource("*"))


def test_resource_must_match_one_of_the_statements_resources():
    st = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:1:alerts"}]
    assert allowed(st, "sns:Publish", Resource("arn:aws:sns:us-east-1:1:alerts"))
    d = evaluate(st, "sns:Publish", [Resource("arn:aws:sns:us-east-1:1:other")])
    assert not d.allowed and d.resource == "arn:aws:sns:us-east-1:1:other" and d.explicit_deny is None
    # A statement on "*" does not allow a named resource unless its Resource matches it: here it does.
    assert allowed([dict(st[0], Resource="*")], "sns:Publish", Resource("arn:aws:sns:us-east-1:1:other"))


# ----------------------------------------------------------------------------- conditions
def test_string_equals_on_a_resource_tag():
    assert allowed([RUN_ON_TAGGED], "ssm:SendCommand", Resource(INSTANCE, TAGGED))
    assert not allowed([RUN_ON_TAGGED], "ssm:SendCommand",
                       Resource(INSTANCE, {"ssm:resourceTag/RotatorDatabase": "prod2"}))
    assert not allowed([RUN_ON_TAGGED], "ssm:SendCommand",
                       Resource(INSTANCE, {"ssm:resourceTag/RotatorDatabase": "PROD"}))   # values: exact
    assert not allowed([RUN_ON_TAGGED], "ssm:SendCommand", Resource(INSTANCE))               # untagged
    # Condition keys are case-insensitive.
    assert allowed([RUN_ON_TAGGED], "ssm:SendCommand", Resource(INSTANCE, {"SSM:ResourceTag/RotatorDatabase": "prod"}))


def test_condition_values_are_alternatives_and_keys_all_must_hold():
    st = [{"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*",
           "Condition": {"StringEquals": {"k:a": ["1", "2"], "k:b": "x"},
                         "StringLike": {"k:c": "pre*"}}}]
    ok = {"k:a": "2", "k:b": "x", "k:c": "prefix"}
    assert allowed(st, "ssm:SendCommand", Resource("r", ok))
    for key, bad in (("k:a", "3"), ("k:b", "y"), ("k:c", "xpre")):
        assert not allowed(st, "ssm:SendCommand", Resource("r", dict(ok, **{key: bad}))), key


def test_negated_operators_hold_when_the_key_is_missing():
    st = [{"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*",
           "Condition": {"StringNotEquals": {"k:env": "prod"}}}]
    assert allowed(st, "ssm:SendCommand", Resource("r"))
    assert allowed(st, "ssm:SendCommand", Resource("r", {"k:env": "dev"}))
    assert not allowed(st, "ssm:SendCommand", Resource("r", {"k:env": "prod"}))


# ----------------------------------------------------------------------------- several resources
def test_send_command_needs_the_document_and_every_instance():
    both = [RUN_DOCUMENT, RUN_ON_TAGGED]
    other = "arn:aws:ec2:us-east-1:123456789012:instance/i-0fffffffffffffff0"
    assert allowed(both, "ssm:SendCommand", Resource(DOC), Resource(INSTANCE, TAGGED), Resource(other, TAGGED))
    d = evaluate(both, "ssm:SendCommand", [Resource(DOC), Resource(INSTANCE, TAGGED), Resource(other)])
    assert not d.allowed and d.resource == other          # the one untagged instance is named
    d = evaluate([RUN_ON_TAGGED], "ssm:SendCommand", [Resource(DOC), Resource(INSTANCE, TAGGED)])
    assert not d.allowed and d.resource == DOC
    d = evaluate([RUN_DOCUMENT], "ssm:SendCommand", [Resource(DOC), Resource(INSTANCE, TAGGED)])
    assert not d.allowed and d.resource == INSTANCE


# ----------------------------------------------------------------------------- explicit deny
def test_an_explicit_deny_wins_over_any_allow():
    st = [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"},
          {"Sid": "NotProd", "Effect": "Deny", "Action": "ssm:SendCommand", "Resource": "*",
           "Condition": {"StringEquals": {"ssm:resourceTag/env": "prod"}}}]
    assert allowed(st, "ssm:SendCommand", Resource(INSTANCE, {"ssm:resourceTag/env": "dev"}))
    d = evaluate(st, "ssm:SendCommand", [Resource(DOC), Resource(INSTANCE, {"ssm:resourceTag/env": "prod"})])
    assert not d.allowed and d.explicit_deny == "NotProd" and d.resource == INSTANCE


def test_not_resource_names_every_resource_but_those_it_lists():
    """The shared layout's deny of every key but the fleet's (threat 38): NotResource with a
    condition, beside an allow of everything, as a key policy's allow would be."""
    fleet_key = "arn:aws:kms:eu-west-1:1:key/fleet"
    st = [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
          {"Sid": "OnlyTheFleetsKey", "Effect": "Deny", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
           "NotResource": fleet_key, "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}}]
    through = {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    other = "arn:aws:kms:eu-west-1:1:key/other"
    assert allowed(st, "kms:Decrypt", Resource(fleet_key, through))
    d = evaluate(st, "kms:Decrypt", [Resource(other, through)])
    assert not d.allowed and d.explicit_deny == "OnlyTheFleetsKey" and d.resource == other
    assert explicit_deny(st, "kms:GenerateDataKey", Resource(other, through)) == "OnlyTheFleetsKey"
    assert explicit_deny(st, "kms:GenerateDataKey", Resource(fleet_key, through)) is None
    # Not through Secrets Manager (an encrypted topic's key, through SNS), or another action: not denied.
    assert allowed(st, "kms:Decrypt", Resource(other, {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}))
    assert allowed(st, "kms:Encrypt", Resource(other, through))


def test_nothing_is_allowed_without_a_statement():
    assert not allowed([], "sns:Publish", Resource("*"))


# ----------------------------------------------------------------------------- refused policies
@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*", "NotResource": "arn:aws:ssm:*"},
    {"Effect": "Allow", "Action": "ssm:SendCommand"},
    {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*", "Condition": {"ArnLike": {"aws:SourceArn": "*"}}},
    {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "arn:aws:s3:::${aws:username}/*"},
    {"Effect": "Maybe", "Action": "ssm:SendCommand", "Resource": "*"},
    {"Effect": "Allow", "Action": [], "Resource": "*"},
    {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": {"Ref": "Unresolved"}},
])
def test_what_it_cannot_evaluate_is_refused(statement):
    with pytest.raises(UnsupportedPolicy):
        evaluate([statement], "ssm:SendCommand", [Resource("*")])


# ----------------------------------------------------------------------------- the template's statements
def test_fn_if_follows_the_templates_conditions():
    conditions = {"HasValue": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Value"}, ""]}]},
                  "Both": {"Fn::And": [{"Condition": "HasValue"}, {"Fn::Equals": ["a", "a"]}]}}
    choose = {"Fn::If": ["Both", {"Ref": "Value"}, {"Ref": "AWS::StackName"}]}
    assert resolve(choose, {"Value": "", "AWS::StackName": "stack"}, conditions=conditions) == "stack"
    assert resolve(choose, {"Value": "tag", "AWS::StackName": "stack"}, conditions=conditions) == "tag"
    with pytest.raises(UnresolvedIntrinsic):
        resolve({"Fn::If": ["Nowhere", 1, 2]}, {}, conditions=conditions)


def test_the_templates_role_statements_are_found_each_with_its_own_sid():
    """The statements of every policy on the function's role, the inline-less role's separate
    policies included (pytests/e2e/test_least_privilege.py withholds them one by one, by Sid)."""
    template = load_template(REPO / "template.yaml")
    statements = role_policy_statements(template, "RotationFunction")
    sids = [st.get("Sid") for st in statements]
    assert len(sids) == len(set(sids)) and all(sids), f"every statement needs its own Sid: {sids}"
    assert {"RotateTheSecret", "RunTheRotationDocuments", "RunOnTaggedDatabaseHosts",
            "WriteTheFunctionLog"} <= set(sids)
