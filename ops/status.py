"""What state a rotated secret is in: `make status SECRET_ID=...` (python3 -m ops.status SECRET_ID).

Prints the secret's versions with their staging labels, whether rotation is on and with which
function and schedule, when it last rotated and when it rotates next, and whether a rotation is
stuck: a version holding AWSPENDING without AWSCURRENT. Secrets Manager refuses to start another
rotation until that version is finished or abandoned (and the function keeps AWSPENDING on purpose
when no host could be proven to accept AWSCURRENT: docs/deploying.md, "A stuck rotation").

Exit status: 0 no rotation pending, 1 a rotation is stuck (or still running: see the note it
prints), 2 the secret could not be read (usage, permissions, not found).

Credentials, region and endpoint come from the usual places (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL, ...). It needs secretsmanager:DescribeSecret and, for the versions' dates,
secretsmanager:ListSecretVersionIds; it never reads a secret value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

OK, STUCK, ERROR = 0, 1, 2
# The longest a healthy rotation takes: four steps of at most the function's timeout (300 s).
ROTATION_BOUND = dt.timedelta(minutes=20)


def _when(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return None


def collect(client: Any, secret_id: str) -> dict[str, Any]:
    """Everything the report says, as data (also what --json prints)."""
    d = client.describe_secret(SecretId=secret_id)
    stages: dict[str, list[str]] = {k: sorted(v) for k, v in (d.get("VersionIdsToStages") or {}).items() if v}
    created: dict[str, Any] = {}
    try:
        kw: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": False}
        for _ in range(100):            # botocore has no paginator for it; 100 pages is plenty
            page = client.list_secret_version_ids(**kw)
            for v in page.get("Versions", []):
                created[v["VersionId"]] = v.get("CreatedDate")
            if not page.get("NextToken"):
                break
            kw["NextToken"] = page["NextToken"]
    except Exception as e:  # noqa: BLE001 - dates are a nicety; the stages come from DescribeSecret
        created = {}
        versions_error = f"{type(e).__name__}: {e}"
    else:
        versions_error = None

    current = [v for v, s in stages.items() if "AWSCURRENT" in s]
    pending = [v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s]
    now = dt.datetime.now(dt.timezone.utc)
    order = {"AWSCURRENT": 0, "AWSPENDING": 1, "AWSPREVIOUS": 2}
    versions = sorted(
        ({"VersionId": v, "Stages": s, "CreatedDate": _when(created.get(v)) if v in created else None}
         for v, s in stages.items()),
        key=lambda r: (min((order.get(x, 3) for x in r["Stages"]), default=4), r["VersionId"]))
    rules = d.get("RotationRules") or {}
    next_rotation = _as_datetime(d.get("NextRotationDate"))
    pending_age = None
    if pending:
        born = _as_datetime(created.get(pending[0]))
        if born is not None:
            pending_age = (now - born).total_seconds()
    return {
        "ARN": d.get("ARN"),
        "Name": d.get("Name"),
        "RotationEnabled": bool(d.get("RotationEnabled")),
        "RotationLambdaARN": d.get("RotationLambdaARN"),
        "ScheduleExpression": rules.get("ScheduleExpression")
        or (f"rate({rules['AutomaticallyAfterDays']} days)" if rules.get("AutomaticallyAfterDays") else None),
        "Duration": rules.get("Duration"),
        "LastRotatedDate": _when(d.get("LastRotatedDate")) if d.get("LastRotatedDate") else None,
        "LastChangedDate": _when(d.get("LastChangedDate")) if d.get("LastChangedDate") else None,
        "NextRotationDate": _when(next_rotation) if next_rotation else None,
        "RotationOverdue": bool(d.get("RotationEnabled") and next_rotation and next_rotation < now and not pending),
        "Versions": versions,
        "CurrentVersion": current[0] if current else None,
        "PendingVersion": pending[0] if pending else None,
        "PendingAgeSeconds": pending_age,
        "Stuck": bool(pending),
        "VersionsError": versions_error,
    }


def render(s: dict[str, Any]) -> str:
    lines = [f"secret          {s['ARN']}"]
    if s["RotationEnabled"]:
        sched = s["ScheduleExpression"] or "?"
        window = f", window {s['Duration']}" if s.get("Duration") else ""
        lines.append(f"rotation        enabled: {sched}{window}")
        lines.append(f"function        {s['RotationLambdaARN'] or '-'}")
    else:
        lines.append("rotation        NOT enabled" + (f" (function {s['RotationLambdaARN']})" if s["RotationLambdaARN"] else ""))
    lines.append(f"last rotated    {s['LastRotatedDate'] or 'never'}")
    lines.append(f"next rotation   {s['NextRotationDate'] or '-'}" + ("  (overdue)" if s["RotationOverdue"] else ""))
    lines.append("versions")
    for v in s["Versions"]:
        created = f"  created {v['CreatedDate']}" if v.get("CreatedDate") else ""
        lines.append(f"  {v['VersionId']:<40} {','.join(v['Stages']):<24}{created}")
    if not s["Versions"]:
        lines.append("  (none labelled)")
    if s["VersionsError"]:
        lines.append(f"  (creation dates unavailable: {s['VersionsError']})")
    if s["CurrentVersion"] is None:
        lines.append("WARNING: no version holds AWSCURRENT")
    if s["Stuck"]:
        lines.append(f"state           STUCK: version {s['PendingVersion']} holds AWSPENDING but not AWSCURRENT:")
        lines.append("                a rotation did not finish, and Secrets Manager starts no other until it does.")
        age = s["PendingAgeSeconds"]
        if age is not None and age < ROTATION_BOUND.total_seconds():
            lines.append(f"                (it began {int(age // 60)} min ago: if a rotation is running right now, check again")
            lines.append(f"                in {int((ROTATION_BOUND.total_seconds() - age) // 60) + 1} min)")
        lines.append("                Read the SNS alert or the function's log and fix the host; then make rotate")
        lines.append("                SECRET_ID=... makes Secrets Manager retry this same version (docs/deploying.md,")
        lines.append("                \"A stuck rotation\"). Never just remove AWSPENDING: a host may hold only it.")
    else:
        lines.append("state           OK: no rotation pending (not stuck)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m ops.status", description=__doc__.split("\n\n")[0])
    ap.add_argument("secret_id", help="the secret's name or ARN")
    ap.add_argument("--json", action="store_true", help="print the state as JSON")
    ap.add_argument("--region", help="AWS region (default: the usual configuration)")
    args = ap.parse_args(argv)
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        print("ops.status needs boto3: pip install -r local/requirements.txt", file=sys.stderr)
        return ERROR
    try:
        client = boto3.client("secretsmanager", region_name=args.region) if args.region else boto3.client("secretsmanager")
        state = collect(client, args.secret_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        print(f"cannot read {args.secret_id}: {e}", file=sys.stderr)
        return ERROR
    print(json.dumps(state, indent=2) if args.json else render(state))
    return STUCK if state["Stuck"] else OK


if __name__ == "__main__":
    sys.exit(main())
