"""Just enough CloudFormation/SAM reading for the local stack.

`template.yaml` uses the short intrinsic forms (`!Ref`, `!Sub`, `!GetAtt`, ...); `load_template`
(ssm_runner's loader) turns each into its long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`), and
`resolve` evaluates the few intrinsics the local stack needs, with the
values the caller knows (logical name -> local value). Anything it cannot resolve raises, so a
template change never silently hands the function a dict where it expects a string.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping


def load_template(path: str | Path) -> dict[str, Any]:
    """template.yaml with short intrinsics in their long form (the same loader ssm_runner uses)."""
    from local.ssm_runner import load_template as _load

    data = _load(path)
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return data


class UnresolvedIntrinsic(ValueError):
    pass


def resolve(value: Any, refs: Mapping[str, Any], *, where: str = "") -> Any:
    """Evaluate Ref / Fn::Sub / Fn::Join / Fn::GetAtt (for names given in `refs`)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [resolve(v, refs, where=where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
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
                template, extra = arg[0], {k: resolve(v, refs, where=where) for k, v in arg[1].items()}
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
            return sep.join(str(resolve(p, refs, where=where)) for p in parts)
        if key.startswith("Fn::") or key in ("Condition",):
            raise UnresolvedIntrinsic(f"{where}: intrinsic {key} not supported locally")
    if isinstance(value, dict):
        return {k: resolve(v, refs, where=where) for k, v in value.items()}
    return value


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


def policy_actions(template: Mapping[str, Any], function_logical_name: str) -> list[str] | None:
    """Every action an Allow statement grants the function's role, if the template says.

    Looks at SAM `Policies` (inline statements) on the function and at an AWS::IAM::Role named
    by `Role: !GetAtt X.Arn`. Returns None when the template holds no such statements.
    """
    resources = template.get("Resources", {})
    props = function_properties(template, function_logical_name)
    statements: list[dict[str, Any]] = []

    def collect(doc: Any) -> None:
        if isinstance(doc, dict):
            st = doc.get("Statement")
            for s in [st] if isinstance(st, dict) else st if isinstance(st, list) else []:
                # A conditional statement (`!If [Cond, statement, AWS::NoValue]`) counts as granted:
                # the local stack always configures what the condition asks for (an alert topic).
                if isinstance(s, dict) and "Fn::If" in s:
                    s = s["Fn::If"][1]
                if isinstance(s, dict):
                    statements.append(s)

    for pol in props.get("Policies", []) or []:
        collect(pol)
    role = props.get("Role")
    if isinstance(role, dict):
        target = role.get("Fn::GetAtt") or role.get("Ref")
        name = target[0] if isinstance(target, list) else target
        res = resources.get(name, {})
        if res.get("Type") == "AWS::IAM::Role":
            for pol in res.get("Properties", {}).get("Policies", []) or []:
                collect(pol.get("PolicyDocument"))
            for mp in res.get("Properties", {}).get("ManagedPolicyArns", []) or []:
                if isinstance(mp, dict):
                    ref = mp.get("Ref")
                    if ref and resources.get(ref, {}).get("Type") == "AWS::IAM::ManagedPolicy":
                        collect(resources[ref]["Properties"].get("PolicyDocument"))
    for res in resources.values():
        if res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            p = res.get("Properties", {})
            roles = p.get("Roles", []) or []
            if any(isinstance(r, dict) and isinstance(role, dict) and
                   (r.get("Ref") == (role.get("Fn::GetAtt") or [None])[0]) for r in roles):
                collect(p.get("PolicyDocument"))
    if not statements:
        return None
    actions: list[str] = []
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        acts = st.get("Action", [])
        for a in [acts] if isinstance(acts, str) else acts:
            if isinstance(a, str) and a not in actions:
                actions.append(a)
    return actions
