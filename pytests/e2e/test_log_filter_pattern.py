"""The local stack's JSON filter pattern (local/log_filter.py) against what CloudWatch Logs documents
for `{ $.Key = "value" }` ("Using filter patterns to match terms in JSON log events"): the root
member's whole string value, case included; a message that is not JSON never matches; every JSON
form it does not implement is refused, never matched as everything (moto's own behaviour)."""

from __future__ import annotations

import json

import pytest
from moto.logs.utils import EventMessageFilter as MotoEventMessageFilter

from local.log_filter import UnsupportedFilterPattern, matches, member_equality, message_filter_class

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/fleet/secret-app-AbC123"
Filter = message_filter_class(MotoEventMessageFilter)


def line(**members) -> str:
    return json.dumps({"_aws": {"Timestamp": 1}, "RotatorStep": "1", **members})


@pytest.mark.parametrize("pattern", [f'{{ $.SecretId = "{ARN}" }}', f'{{$.SecretId="{ARN}"}}', f'  {{ $.SecretId =  "{ARN}"  }} '])
def test_the_member_equality_form_is_read_with_or_without_spaces(pattern):
    assert member_equality(pattern) == ("SecretId", ARN)


def test_only_the_root_members_whole_string_value_matches():
    pattern = Filter(f'{{ $.SecretId = "{ARN}" }}')
    assert pattern.matches(line(SecretId=ARN))
    # The attack: a secret named after another's ARN has an ARN that contains it.
    assert not pattern.matches(line(SecretId=f"{ARN}-XyZ789"))
    assert not pattern.matches(line(SecretId=ARN[:-1]))
    assert not pattern.matches(line(SecretId=ARN.upper()))
    # The value elsewhere than in the root member: in another member, nested, or in a list.
    assert not pattern.matches(line(ErrorMessage=ARN))
    assert not pattern.matches(line(Nested={"SecretId": ARN}))
    assert not pattern.matches(line(SecretId=[ARN]))
    # Not JSON, or JSON that is not an object, though the text holds the member and value.
    assert not pattern.matches(f'START SecretId = "{ARN}"')
    assert not pattern.matches(f'prefix {line(SecretId=ARN)}')
    assert not pattern.matches(json.dumps([{"SecretId": ARN}]))


def test_a_number_is_not_the_string_of_its_digits():
    assert not matches("Port", "5432", json.dumps({"Port": 5432}))
    assert matches("Port", "5432", json.dumps({"Port": "5432"}))


@pytest.mark.parametrize("pattern", [
    '{ $.SecretId = "arn:*" }',            # a wildcard
    '{ $.SecretId = "%arn.*%" }',          # a regular expression
    '{ $.SecretId != "x" }',
    '{ $.a.b = "x" }',
    '{ ($.a = "x") && ($.b = "y") }',
    '{ $.a = 1 }',
    '{ $.a = "x\\"" }',
])
def test_every_other_json_pattern_is_refused_not_matched_as_everything(pattern):
    with pytest.raises(UnsupportedFilterPattern):
        Filter(pattern)


def test_other_patterns_are_moto_own():
    quoted = Filter(f'"{ARN}"')
    assert quoted.matches(line(SecretId=f"{ARN}-XyZ789"))    # a quoted term is a substring search
    assert Filter("").matches("anything")
