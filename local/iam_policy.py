"""IAM identity-policy evaluation, for the local stack's check of the function's own requests.

moto checks only a request's action against a policy whose Resource is "*". This module evaluates
a request the way IAM evaluates an identity-based policy: a request names one action and one or
more resources (SendCommand names the document and every instance), each with the condition keys
IAM knows about it (e.g. `ssm:resourceTag/<key>` of an instance); every resource must be allowed
by some Allow statement and denied by no Deny statement.

It understands what the template's policies use (Effect, Action, Resource or NotResource with `*`
and `?` wildcards, Condition with the String operators below) and refuses anything else
(NotAction, other operators, policy variables) with UnsupportedPolicy, so a template change is
never silently evaluated as something it is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "NotResource", "Condition"}
# Operator -> (does a value match by wildcard?, is the operator negated?)
OPERATORS = {
    "StringEquals": (False, False),
    "StringNotEquals": (False, True),
    "StringLike": (True, False),
    "StringNotLike": (True, True),
}


class UnsupportedPolicy(ValueError):
    pass


@dataclass(frozen=True)
class Resource:
    arn: str
    context: Mapping[str, str] = field(default_factory=dict)   # condition key -> value


@dataclass(frozen=True)
class Decision:
    allowed: bool
    resource: str = ""              # the first resource that was not allowed
    explicit_deny: str | None = None   # Sid (or "") of the Deny statement that matched


@lru_cache(maxsize=512)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters, `?` one character, the whole value."""
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _strings(value: Any, what: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise UnsupportedPolicy(f"{what} must be a string or a non-empty list of strings, not {value!r}")
    if any("${" in v for v in values):
        raise UnsupportedPolicy(f"{what}: policy variables are not supported ({values})")
    return values


def check_statement(statement: Mapping[str, Any]) -> None:
    """Raises UnsupportedPolicy unless the statement uses only what `evaluate` understands."""
    unknown = set(statement) - STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: unsupported keys {sorted(unknown)}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: Effect must be Allow or Deny")
    _strings(statement.get("Action"), "Action")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: exactly one of Resource and NotResource")
    _strings(statement.get("Resource", statement.get("NotResource")), "Resource")
    for operator, keys in (statement.get("Condition") or {}).items():
        if operator not in OPERATORS:
            raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: condition operator {operator}")
        if not isinstance(keys, Mapping) or not keys:
            raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: {operator} needs keys")
        for key, values in keys.items():
            _strings(values, f"{operator} {key}")


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    # Every operator and every key must hold; a key holds when any of its values matches. Keys are
    # case-insensitive, String values case-sensitive. A key the request lacks fails a positive
    # operator and satisfies a negated one (as in IAM).
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, keys in condition.items():
        wildcard, negated = OPERATORS[operator]
        for key, values in keys.items():
            actual = lowered.get(key.lower())
            hit = actual is not None and any(
                matches(v, actual) if wildcard else v == actual for v in _strings(values, key))
            if hit == negated:
                return False
    return True


def _names(statement: Mapping[str, Any], resource: Resource) -> bool:
    # NotResource: every resource but those it names (as IAM reads it).
    if "NotResource" in statement:
        return not any(matches(r, resource.arn) for r in _strings(statement["NotResource"], "NotResource"))
    return any(matches(r, resource.arn) for r in _strings(statement["Resource"], "Resource"))


def _applies(statement: Mapping[str, Any], action: str, resource: Resource) -> bool:
    return (any(matches(a, action, ignore_case=True) for a in _strings(statement["Action"], "Action"))
            and _names(statement, resource)
            and _condition_holds(statement.get("Condition") or {}, resource.context))


def evaluate(statements: Iterable[Mapping[str, Any]], action: str, resources: Iterable[Resource]) -> Decision:
    """Whether the statements allow `action` on every one of `resources` (explicit Deny first)."""
    statements = list(statements)
    for st in statements:
        check_statement(st)
    resources = list(resources)
    if not resources:
        raise ValueError(f"{action}: a request names at least one resource")
    for resource in resources:
        deny = _first_deny(statements, action, resource)
        if deny is not None:
            return Decision(False, resource.arn, explicit_deny=deny)
        if not any(st["Effect"] == "Allow" and _applies(st, action, resource) for st in statements):
            return Decision(False, resource.arn)
    return Decision(True)


def explicit_deny(statements: Iterable[Mapping[str, Any]], action: str, resource: Resource) -> str | None:
    """The Sid ("" without one) of the first Deny statement that applies to `action` on `resource`,
    or None. Alone, for a request whose allow lies outside these statements: a KMS key's own policy
    allows its use through Secrets Manager, and an identity policy's Deny still overrides it."""
    statements = list(statements)
    for st in statements:
        check_statement(st)
    return _first_deny(statements, action, resource)


def _first_deny(statements: list[Mapping[str, Any]], action: str, resource: Resource) -> str | None:
    # The statements are checked already (evaluate and explicit_deny check each once).
    return next((str(st.get("Sid", "")) for st in statements if st["Effect"] == "Deny" and _applies(st, action, resource)), None)
