"""Just enough CloudFormation/SAM reading for the local stack.

`template.yaml` uses the short intrinsic forms (`!Ref`, `!Sub`, `!GetAtt`, ...); `load_template`
(its YAML loader) turns each into its long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`), and
`resolve` evaluates the few intrinsics the local stack needs, with the
values the caller knows (logical name -> local value) and, for `!If`, the template's Conditions. Anything it cannot resolve raises, so a
template change never silently hands the function a dict where it expects a string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that accepts CloudFormation's short-form intrinsic functions."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """template.yaml with short intrinsics in their long form (ssm_runner reads the documents with it)."""
    with open(path, encoding="utf-8") as handle:
        return parse_template(handle.read(), where=str(path))


def parse_template(text: str, where: str = "the template") -> dict[str, Any]:
    """A template's text, loaded as load_template loads a file."""
    data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{where}: not a CloudFormation template (no Resources)")
    return data


class UnresolvedIntrinsic(ValueError):
    pass


def resolve(value: Any, refs: Mapping[str, Any], *, where: str = "",
            conditions: Mapping[str, Any] | None = None, imports: Mapping[str, Any] | None = None,
            mappings: Mapping[str, Any] | None = None) -> Any:
    """Evaluate Ref / Fn::Sub / Fn::Join / Fn::Split / Fn::GetAtt (for names given in `refs`),
    Fn::ImportValue (from `imports`, another stack's exports), Fn::FindInMap (the template's
    `mappings`), and Fn::If on the template's `conditions` (Fn::Equals / Fn::Not / Fn::And / Fn::Or /
    Condition). A value resolving to AWS::NoValue (None) is left out of the list or mapping holding it."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    again = {"where": where, "conditions": conditions, "imports": imports, "mappings": mappings}
    if isinstance(value, list):
        return [v for v in (resolve(item, refs, **again) for item in value) if v is not None]
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Fn::ImportValue":
            name = resolve(arg, refs, **again)
            if imports is None or name not in imports:
                raise UnresolvedIntrinsic(f"{where}: no export {name!r} to import")
            return imports[name]
        if key == "Fn::Split":
            sep, text = arg
            return str(resolve(text, refs, **again)).split(sep)
        if key == "Fn::FindInMap":
            names = [resolve(a, refs, **again) for a in arg]
            try:
                return (mappings or {})[names[0]][names[1]][names[2]]
            except (KeyError, TypeError):
                raise UnresolvedIntrinsic(f"{where}: no mapping {names}") from None
        if key == "Fn::If":
            name, if_true, if_false = arg
            chosen = if_true if condition_holds(name, refs, conditions, where=where) else if_false
            return resolve(chosen, refs, **again)
        if key == "Ref":
            if arg in refs:
                return refs[arg]
            raise UnresolvedIntrinsic(f"{where}: cannot resolve !Ref {arg}")
        if key == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else str(arg)
            if name in refs:
                return refs[name]
            raise UnresolvedIntrinsic(f"{where}: cannot resolve !GetAtt {name}")
        if key == "Fn::Sub":
            if isinstance(arg, list):
                template, extra = arg[0], {k: resolve(v, refs, **again) for k, v in arg[1].items()}
            else:
                template, extra = arg, {}

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in extra:
                    return str(extra[name])
                if name in refs:
                    return str(refs[name])
                raise UnresolvedIntrinsic(f"{where}: cannot resolve ${{{name}}} in !Sub")

            return re.sub(r"\$\{([^}]+)\}", sub, template)
        if key == "Fn::Join":
            sep, parts = arg
            parts = resolve(parts, refs, **again)
            return sep.join(str(p) for p in (parts if isinstance(parts, list) else [parts]))
        if key.startswith("Fn::") or key in ("Condition",):
            raise UnresolvedIntrinsic(f"{where}: intrinsic {key} not supported locally")
    if isinstance(value, dict):
        return {k: v for k, v in ((k, resolve(v, refs, **again)) for k, v in value.items()) if v is not None}
    return value


def condition_holds(name: str, refs: Mapping[str, Any], conditions: Mapping[str, Any] | None, *,
                    where: str = "") -> bool:
    """The value of the template's condition `name`."""
    if not conditions or name not in conditions:
        raise UnresolvedIntrinsic(f"{where}: no condition {name}")

    def holds(expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            (key, arg), = expr.items()
            if key == "Condition":
                return condition_holds(arg, refs, conditions, where=where)
            if key == "Fn::Equals":
                a, b = (resolve(x, refs, where=where, conditions=conditions) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not holds(arg[0])
            if key == "Fn::And":
                return all(holds(x) for x in arg)
            if key == "Fn::Or":
                return any(holds(x) for x in arg)
        raise UnresolvedIntrinsic(f"{where}: cannot evaluate condition {name}: {expr!r}")

    return holds(conditions[name])


def function_properties(template: Mapping[str, Any], logical_name: str) -> dict[str, Any]:
    """Properties of a function resource merged over SAM's Globals.Function."""
    resources = template.get("Resources", {})
    if logical_name not in resources:
        raise KeyError(f"template has no resource {logical_name}")
    props = dict((template.get("Globals", {}) or {}).get("Function", {}) or {})
    own = resources[logical_name].get("Properties", {}) or {}
    for key, val in own.items():
        if key == "Environment" and "Environment" in props:
            merged = dict((props["Environment"] or {}).get("Variables", {}) or {})
            merged.update((val or {}).get("Variables", {}) or {})
            props["Environment"] = {"Variables": merged}
        else:
            props[key] = val
    return props


def role_policy_statements(template: Mapping[str, Any], function_logical_name: str) -> list[dict[str, Any]]:
    """Every statement of every policy the template gives the function's role, intrinsics unresolved.

    Looks at SAM `Policies` (inline statements) on the function and, for an AWS::IAM::Role named by
    `Role: !GetAtt X.Arn`, at its inline and managed policies and at AWS::IAM::Policy /
    AWS::IAM::RolePolicy resources attached to it. A statement may be a whole `!If`.
    """
    resources = template.get("Resources", {})
    props = function_properties(template, function_logical_name)
    statements: list[dict[str, Any]] = []

    def collect(doc: Any) -> None:
        if isinstance(doc, dict):
            st = doc.get("Statement")
            statements.extend(s for s in ([st] if isinstance(st, dict) else st if isinstance(st, list) else [])
                              if isinstance(s, dict))

    for pol in props.get("Policies", []) or []:
        collect(pol)
    role = props.get("Role")
    target = (role.get("Fn::GetAtt") or role.get("Ref")) if isinstance(role, dict) else None
    role_name = target[0] if isinstance(target, list) else target
    res = resources.get(role_name, {})
    if res.get("Type") == "AWS::IAM::Role":
        for pol in res.get("Properties", {}).get("Policies", []) or []:
            collect(pol.get("PolicyDocument"))
        for mp in res.get("Properties", {}).get("ManagedPolicyArns", []) or []:
            if isinstance(mp, dict):
                ref = mp.get("Ref")
                if ref and resources.get(ref, {}).get("Type") == "AWS::IAM::ManagedPolicy":
                    collect(resources[ref]["Properties"].get("PolicyDocument"))
    for other in resources.values():
        p = other.get("Properties", {})
        if other.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            if role_name and any(isinstance(r, dict) and r.get("Ref") == role_name for r in p.get("Roles", []) or []):
                collect(p.get("PolicyDocument"))
        elif other.get("Type") == "AWS::IAM::RolePolicy":
            if role_name and p.get("RoleName") == {"Ref": role_name}:
                collect(p.get("PolicyDocument"))
    return statements


def policy_actions(template: Mapping[str, Any], function_logical_name: str) -> list[str] | None:
    """Every action an Allow statement grants the function's role that the function's code may call.

    `logs:` actions are left out: they are Lambda's delivery of the function's log, which the local
    stack does not emulate. Returns None when the template holds no statements for the role.
    """
    statements = role_policy_statements(template, function_logical_name)
    if not statements:
        return None
    actions: list[str] = []
    for st in statements:
        # A conditional statement (`!If [Cond, statement, AWS::NoValue]`) counts as granted:
        # the local stack always configures what the condition asks for (an alert topic).
        if "Fn::If" in st:
            st = st["Fn::If"][1]
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        acts = st.get("Action", [])
        for a in [acts] if isinstance(acts, str) else acts:
            if isinstance(a, str) and not a.startswith("logs:") and a not in actions:
                actions.append(a)
    return actions
