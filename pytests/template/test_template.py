"""template.yaml holds everything a deployment needs, least privilege, and SAM accepts and builds it.

What runs here: cfn-lint (no error, no warning), `sam validate` and `sam validate --lint`, `sam build`
through the Makefile (BuildMethod: makefile -> packaging/stage.sh), all without network, and
structural checks of what CloudFormation itself cannot be asked about on this machine: which
principal may do what, the secret's JSON as the function parses it, the alerting path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ops import lint

REPO = lint.REPO
PARAMETERS = {
    "DatabaseInstanceIds": ["i-0123456789abcdef0", "i-0fedcba9876543210"],
    "DatabaseEngine": "postgres",
    "LoginName": "app",
    "DatabaseHost": "db.internal.example.com",
    "AWS::StackName": "rotator",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
}


# ---------------------------------------------------------------------------------- evaluation
def evaluate(template: dict[str, Any], value: Any, overrides: dict[str, Any] | None = None) -> Any:
    """Ref / Sub / Join / Split / If / FindInMap / Equals / Not / GetAtt with the parameters'
    defaults, PARAMETERS and overrides. GetAtt X.Arn becomes 'arn:<X>'; Ref of a resource '<X>'."""
    params = {k: v.get("Default") for k, v in template["Parameters"].items()}
    for k, v in params.items():
        if template["Parameters"][k]["Type"] == "CommaDelimitedList" and isinstance(v, str):
            params[k] = v.split(",")
    params.update(PARAMETERS)
    params.update(overrides or {})

    def ev(v: Any) -> Any:
        if isinstance(v, list):
            return [ev(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                return params[a] if a in params else a
            if k == "Fn::GetAtt":
                return f"arn:{a[0]}" if a[1] == "Arn" else f"{a[0]}.{a[1]}"
            if k == "Fn::Join":
                return a[0].join(str(x) for x in ev(a[1]))
            if k == "Fn::Split":
                return ev(a[1]).split(a[0])
            if k == "Fn::FindInMap":
                m, key, name = ev(a)
                return template["Mappings"][m][key][name]
            if k == "Fn::Equals":
                x, y = ev(a)
                return x == y
            if k == "Fn::Not":
                return not ev(a[0])
            if k == "Fn::Or":
                return any(ev(x) for x in a)
            if k == "Fn::If":
                cond = ev(template["Conditions"][a[0]])
                return ev(a[1] if cond else a[2])
            if k == "Fn::Sub":
                text, extra = (a, {}) if isinstance(a, str) else (a[0], {n: ev(x) for n, x in a[1].items()})

                def sub(m: re.Match[str]) -> str:
                    name = m.group(1)
                    if name in extra:
                        return str(extra[name])
                    if "." in name:
                        res, att = name.split(".", 1)
                        return f"arn:{res}" if att == "Arn" else name
                    return str(params[name] if name in params else name)

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: ev(x) for k, x in v.items()}

    return ev(value)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc["Statement"]
    return [st] if isinstance(st, dict) else st


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


# ---------------------------------------------------------------------------------- the tools
def test_cfn_lint_has_no_error_and_no_warning():
    r = lint.cfn_lint()
    assert r.ok, r.output


@pytest.mark.parametrize("with_lint", [False, True], ids=["validate", "validate-lint"])
def test_sam_validate_offline(sam, with_lint):
    r = lint.sam_validate(lint=with_lint)
    assert r.ok, f"{' '.join(r.command)}\n{r.output}"


def test_sam_build_makes_the_artifact_through_the_makefile(sam, tmp_path):
    """`sam build` runs `make build-RotationFunction` (BuildMethod: makefile), which lays out the
    package with packaging/stage.sh: bootstrap, the binary, its lib/."""
    build_dir = tmp_path / "build"
    command = [*lint.no_network(), sam, "build", "--build-in-source", "--template", str(lint.TEMPLATE),
               "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache")]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=lint.sam_environment(), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "packaging/stage.sh" in proc.stdout + proc.stderr, "the Makefile target did not call stage.sh"
    artifact = build_dir / "RotationFunction"
    for name in ("bootstrap", "rotator"):
        path = artifact / name
        assert path.is_file() and os.access(path, os.X_OK), f"{name} missing from {sorted(os.listdir(artifact))}"
    assert (artifact / "rotator").read_bytes()[:4] == b"\x7fELF"
    built = (build_dir / "template.yaml").read_text()
    assert "CodeUri: RotationFunction" in built
    print(f"sam build: {time.monotonic() - started:.1f} s, artifact {sorted(os.listdir(artifact))}")


# ---------------------------------------------------------------------------------- the function
def test_function(template):
    fn = template["Resources"]["RotationFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    assert fn["Metadata"]["BuildMethod"] == "makefile"
    p = fn["Properties"]
    assert (p["Runtime"], p["Architectures"], p["Handler"]) == ("provided.al2023", [{"Ref": "Architecture"}], "bootstrap")
    # Lambda's two architectures, x86_64 unless the deployer chooses arm64 (and builds for it).
    architecture = template["Parameters"]["Architecture"]
    assert (architecture["AllowedValues"], architecture["Default"]) == (["x86_64", "arm64"], "x86_64")
    # A step's command may take its whole 120 s document timeout, and so may the restore after
    # it, each within half of what is left: 2 x (120 s + delivery and polling) + 3 s.
    step_timeouts = {int(r["Properties"]["Content"]["mainSteps"][0]["inputs"]["timeoutSeconds"])
                     for r in resources(template, "AWS::SSM::Document").values()}
    assert p["Timeout"] >= 2 * (max(step_timeouts) + 15) + 3 and p["Timeout"] <= 900
    assert p["LoggingConfig"]["LogFormat"] == "JSON"
    group = p["LoggingConfig"]["LogGroup"]["Ref"]
    assert template["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    assert template["Resources"][group]["Properties"]["RetentionInDays"]
    env = p["Environment"]["Variables"]
    assert env["SNS_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    assert template["Resources"]["AlertTopic"]["Type"] == "AWS::SNS::Topic"
    assert "AlertTopicArn" not in template["Parameters"]
    assert p["Role"] == {"Fn::GetAtt": ["RotationFunctionRole", "Arn"]}


def test_the_function_role_grants_only_what_the_steps_call_on_this_stacks_resources(template):
    from local.cfn import policy_actions
    assert sorted(policy_actions(template, "RotationFunction")) == sorted([
        "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage", "secretsmanager:GetRandomPassword", "ssm:GetDocument", "ssm:SendCommand",
        "ssm:GetCommandInvocation", "ssm:ListCommandInvocations", "ssm:CancelCommand", "sns:Publish"])
    policy = template["Resources"]["RotationFunctionPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "RotationFunctionRole"}]
    by_sid = {s["Sid"]: evaluate(template, s) for s in statements(policy["PolicyDocument"])}
    assert by_sid["RotateTheSecret"]["Resource"] == "DatabaseSecret"          # the secret's ARN, only
    assert by_sid["PublishAlerts"]["Resource"] == "AlertTopic"
    docs = by_sid["RunTheRotationDocuments"]["Resource"]
    assert sorted(docs) == sorted(f"arn:aws:ssm:eu-west-1:123456789012:document/{d}" for d in
                                  resources(template, "AWS::SSM::Document"))
    # The function reads its own documents only (it proves each is the shipped one before sending).
    assert by_sid["ReadTheRotationDocuments"]["Action"] == "ssm:GetDocument"
    assert sorted(by_sid["ReadTheRotationDocuments"]["Resource"]) == sorted(docs)
    hosts = by_sid["RunOnTaggedDatabaseHosts"]
    assert sorted(hosts["Resource"]) == ["arn:aws:ec2:eu-west-1:123456789012:instance/*",
                                         "arn:aws:ssm:eu-west-1:123456789012:managed-instance/*"]
    assert hosts["Condition"] == {"StringEquals": {"ssm:resourceTag/RotatorDatabase": "rotator"}}
    (tagged_statement,) = [s for s in statements(policy["PolicyDocument"]) if s["Sid"] == "RunOnTaggedDatabaseHosts"]
    tagged = evaluate(template, tagged_statement, {"HostTagValue": "db-fleet"})
    assert tagged["Condition"]["StringEquals"]["ssm:resourceTag/RotatorDatabase"] == "db-fleet"
    wildcard = {sid for sid, s in by_sid.items() if "*" in as_list(s["Resource"])}
    assert wildcard == {"GeneratePasswords", "FollowHostCommands"}   # APIs without resource-level scoping
    # Lambda's log delivery: this log group only, and outside the steps' policy.
    logs = template["Resources"]["RotationFunctionLogDelivery"]
    assert logs["Type"] == "AWS::IAM::RolePolicy"
    (st,) = statements(logs["Properties"]["PolicyDocument"])
    assert st["Resource"] == {"Fn::GetAtt": ["RotationFunctionLogGroup", "Arn"]}
    # Nothing else grants the role anything (managed policies, other inline policies).
    role = template["Resources"]["RotationFunctionRole"]["Properties"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role
    attached = [k for k, r in template["Resources"].items()
                if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
                and ({"Ref": "RotationFunctionRole"} in r["Properties"].get("Roles", [])
                     or r["Properties"].get("RoleName") == {"Ref": "RotationFunctionRole"})]
    assert sorted(attached) == ["RotationFunctionLogDelivery", "RotationFunctionPolicy"]


def test_secrets_manager_may_invoke_the_function_from_this_account_only(template):
    (perm,) = resources(template, "AWS::Lambda::Permission").values()
    p = perm["Properties"]
    assert p["Principal"] == "secretsmanager.amazonaws.com"
    assert p["Action"] == "lambda:InvokeFunction"
    assert p["SourceAccount"] == {"Ref": "AWS::AccountId"}


# ---------------------------------------------------------------------------------- the secret
def test_secret_json_is_what_the_function_and_the_hosts_parse(template):
    secret = template["Resources"]["DatabaseSecret"]["Properties"]
    gen = secret["GenerateSecretString"]
    assert gen["GenerateStringKey"] == "password"
    value = json.loads(evaluate(template, gen["SecretStringTemplate"]))
    # passwordPlaceholder: the password CloudFormation generates is one no host has, so a failed first
    # rotation restores nothing (Tests/RotationTests/PlaceholderPasswordTests.swift).
    assert value == {"engine": "postgres", "host": "db.internal.example.com", "port": 5432, "username": "app",
                     "dbname": "postgres", "instanceIds": ["i-0123456789abcdef0", "i-0fedcba9876543210"],
                     "passwordPlaceholder": True}
    for engine, port, dbname in (("mysql", 3306, "mysql"), ("mariadb", 3306, "mysql"), ("sqlserver", 1433, "master")):
        v = json.loads(evaluate(template, gen["SecretStringTemplate"], {"DatabaseEngine": engine}))
        assert (v["engine"], v["port"], v["dbname"]) == (engine, port, dbname)
    v = json.loads(evaluate(template, gen["SecretStringTemplate"],
                            {"DatabasePort": "6432", "DatabaseName": "app", "DatabaseInstanceIds": ["mi-0123456789abcdef0"]}))
    assert (v["port"], v["dbname"], v["instanceIds"]) == (6432, "app", ["mi-0123456789abcdef0"])
    assert template["Parameters"]["DatabaseEngine"]["AllowedValues"] == ["postgres", "mysql", "mariadb", "sqlserver"]
    assert template["Parameters"]["DatabaseInstanceIds"]["Type"] == "CommaDelimitedList"
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["SecretKey", "Arn"]}


def test_secret_resource_policy_denies_reading_to_everyone_else(template):
    (pol,) = resources(template, "AWS::SecretsManager::ResourcePolicy").values()
    p = pol["Properties"]
    assert p["SecretId"] == {"Ref": "DatabaseSecret"} and p["BlockPublicPolicy"] is True
    st = next(s for s in statements(p["ResourcePolicy"]) if s.get("Sid") == "DenyReadingToEveryoneElse")
    assert (st["Effect"], st["Principal"], st["Action"]) == ("Deny", "*", "secretsmanager:GetSecretValue")
    allowed = evaluate(template, st["Condition"])["ArnNotLike"]["aws:PrincipalArn"]
    assert allowed == ["arn:RotationFunctionRole", "arn:DatabaseHostRole"]
    readers = ["arn:aws:iam::123456789012:role/app", "arn:aws:iam::123456789012:role/eks-external-secrets"]
    allowed = evaluate(template, st["Condition"], {"SecretReaderArns": readers})["ArnNotLike"]["aws:PrincipalArn"]
    assert allowed == ["arn:RotationFunctionRole", "arn:DatabaseHostRole", *readers]


# Secrets Manager's rules for ScheduleExpression, from its user guide ("Rotation schedules",
# https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html): rate(Value
# Unit), Value a positive integer, Unit hour, hours, day or days, no more often than every four hours,
# at most 999 days; cron(Minutes Hours Day-of-month Month Day-of-week Year) with minutes 0, hours
# 0-23, day-of-month 1-31 (, - * ? / L), month 1-12 or JAN-DEC (, - * /), day-of-week 1-7 or SUN-SAT
# (# , - * ? / L), year *. Our own stricter choices where the guide is silent or a pattern cannot
# decide (docs/deploying.md, "Rotation schedule"): ? in exactly one of the two day fields (as in
# every example of the guide, and EventBridge's rule), hours up to 23 in rate() (a day or more is
# written in days), cron hours as one hour or hour/step with a step of 4 or more.
SCHEDULES_ACCEPTED = [
    ("rate(85 days)", "the default"),
    ("rate(4 hours)", "the guide's example: the shortest interval"),
    ("rate(1 day)", "the guide's example"),
    ("rate(10 days)", "the guide's example"),
    ("rate(999 days)", "the longest period"),
    ("rate(12 hours)", "the API reference's example"),
    ("cron(0 4/12 * * ? *)", "the guide's example: 4:00 and 16:00 every day"),
    ("cron(0 8 1/7 * ? *)", "every 7 days from the 1st at 8:00"),
    ("cron(0 0 ? * SUN#1 *)", "first Sunday of the month (#)"),
    ("cron(0 16 L * ? *)", "last day of the month (L)"),
    ("cron(0 10 ? JAN,APR,JUL,OCT MON-FRI *)", "month names in a list, day-of-week range"),
    ("cron(0 0 1,15 * ? *)", "day-of-month list"),
    ("cron(0 23 ? * 6L *)", "last Friday (L in day-of-week)"),
    ("cron(0 */6 * * ? *)", "every 6 hours"),
]
SCHEDULES_REFUSED = [
    ("rate(3 hours)", "more often than every four hours"),
    ("rate(1 hour)", "more often than every four hours"),
    ("rate(0 days)", "not a positive integer"),
    ("rate(1000 days)", "longer than 999 days"),
    ("rate(30 minutes)", "minutes are not a unit"),
    ("rate(1 week)", "weeks are not a unit"),
    ("rate(85days)", "Value and Unit are separated by a space"),
    ("85", "neither rate() nor cron()"),
    ("cron(15 4 * * ? *)", "minutes must be 0"),
    ("cron(0 4 * * ? 2030)", "year must be *"),
    ("cron(0 4 * * ?)", "five fields"),
    ("cron(0 0 4 * * ? *)", "seven fields"),
    ("cron(0 24 * * ? *)", "hours are 0-23"),
    ("cron(0 * * * ? *)", "every hour: more often than every four hours"),
    ("cron(0 */2 * * ? *)", "every 2 hours: more often than every four hours"),
    ("cron(0 4 32 * ? *)", "day-of-month is 1-31"),
    ("cron(0 4 1 13 ? *)", "month is 1-12"),
    ("cron(0 4 ? * 8 *)", "day-of-week is 1-7"),
    ("cron(0 4 ? * SUN#6 *)", "no sixth weekday in a month"),
    ("cron(0 4 * * * *)", "neither day field is ?"),
    ("cron(0 4 ? * ? *)", "both day fields are ?"),
    ("cron(0 4 ? * MON *) ", "trailing text"),
]


def test_rotation_schedule(template):
    (rs,) = resources(template, "AWS::SecretsManager::RotationSchedule").values()
    p = rs["Properties"]
    assert p["SecretId"] == {"Ref": "DatabaseSecret"}
    assert p["RotationLambdaARN"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    rules = evaluate(template, p["RotationRules"])
    assert rules == {"ScheduleExpression": "rate(85 days)", "Duration": "3h"}
    pattern = re.compile(template["Parameters"]["RotationScheduleExpression"]["AllowedPattern"])
    for expression, why in SCHEDULES_ACCEPTED:
        assert pattern.fullmatch(expression), (expression, why)
    for expression, why in SCHEDULES_REFUSED:
        assert not pattern.fullmatch(expression), (expression, why)
    # Every permission a rotation needs exists before Secrets Manager can start one.
    assert set(rs["DependsOn"]) >= {"RotationFunctionPolicy", "RotationFunctionInvokePermission",
                                    "DatabaseHostAccessPolicy", "DatabaseSecretPolicy"}


def test_keys_rotate_and_are_used_through_their_service_only(template):
    keys = resources(template, "AWS::KMS::Key")
    assert set(keys) == {"SecretKey", "AlertKey"}
    for name, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, name
        for st in statements(key["Properties"]["KeyPolicy"]):
            actions = set(as_list(st["Action"]))
            uses = actions & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
            if not uses:
                assert not any(a in ("kms:*", "*") for a in actions), (name, st["Sid"])
                continue
            principal = st["Principal"]
            if "Service" in principal:
                # Services that publish to the encrypted topic (they pass no ViaService).
                assert name == "AlertKey"
                assert set(as_list(principal["Service"])) <= {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
                continue
            via = evaluate(template, st["Condition"]["StringEquals"]["kms:ViaService"])
            service = "secretsmanager" if name == "SecretKey" else "sns"
            assert via == f"{service}.eu-west-1.amazonaws.com", (name, st["Sid"])

    # No key policy names a principal of this stack: KMS refuses a policy with a principal it cannot
    # see yet, which a role created seconds before may be. The roles are conditions instead.
    by_sid = {(name, st["Sid"]): st for name, key in keys.items() for st in statements(key["Properties"]["KeyPolicy"])}
    for (name, sid), st in by_sid.items():
        assert "Fn::GetAtt" not in json.dumps(st["Principal"]), (name, sid)
        if st["Principal"] == {"AWS": "*"}:
            # Anyone-but-for-the-conditions: exactly one role of this account.
            assert set(st["Condition"]) == {"ArnEquals", "StringEquals"}, (name, sid)
            assert evaluate(template, st["Condition"]["StringEquals"]["kms:CallerAccount"]) == "123456789012", (name, sid)
    roles = {key: evaluate(template, st["Condition"]["ArnEquals"]["aws:PrincipalArn"])
             for key, st in by_sid.items() if st["Principal"] == {"AWS": "*"}}
    assert roles == {
        ("SecretKey", "RotationFunctionUsesItThroughSecretsManager"): "arn:RotationFunctionRole",
        ("SecretKey", "DatabaseHostsDecryptThroughSecretsManager"): "arn:DatabaseHostRole",
        ("AlertKey", "RotationFunctionPublishesThroughSns"): "arn:RotationFunctionRole",
    }
    assert set(as_list(by_sid[("SecretKey", "DatabaseHostsDecryptThroughSecretsManager")]["Action"])) == {"kms:Decrypt"}
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    others = {key for key, st in by_sid.items() if st["Principal"] not in ({"AWS": "*"}, root)}
    assert others == {("AlertKey", "EventBridgeAndCloudWatchPublish")}


def test_what_a_failed_first_create_leaves_behind(template):
    """The secret and its key outlive the stack (the only copy of the password) but not a failed
    first create: CloudFormation's RetainExceptOnCreate, valid for DeletionPolicy only, so a retry
    does not meet the secret's fixed name. Replacing either keeps the old one. Everything else is
    deleted, explicitly where cfn-lint's informational rules ask."""
    policies = {name: (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) for name, r in template["Resources"].items()
                if "DeletionPolicy" in r or "UpdateReplacePolicy" in r}
    assert policies == {
        "SecretKey": ("RetainExceptOnCreate", "Retain"),
        "DatabaseSecret": ("RetainExceptOnCreate", "Retain"),
        "RotationFunctionLogGroup": ("Delete", "Delete"),
        "AlertKey": ("Delete", "Delete"),
    }


def test_database_host_role(template):
    role = template["Resources"]["DatabaseHostRole"]["Properties"]
    (trust,) = statements(role["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    # The SSM agent's own policy, not AmazonSSMManagedInstanceCore (pytests/template/test_hardening.py).
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    profile = template["Resources"]["DatabaseHostInstanceProfile"]
    assert profile["Properties"]["Roles"] == [{"Ref": "DatabaseHostRole"}]
    access = template["Resources"]["DatabaseHostAccessPolicy"]["Properties"]
    assert access["Roles"] == [{"Ref": "DatabaseHostRole"}]
    by_sid = {s["Sid"]: evaluate(template, s) for s in statements(access["PolicyDocument"])}
    assert by_sid["ReadTheRotatedSecret"]["Action"] == "secretsmanager:GetSecretValue"
    assert by_sid["ReadTheRotatedSecret"]["Resource"] == "DatabaseSecret"
    assert by_sid["DecryptItThroughSecretsManager"]["Action"] == "kms:Decrypt"
    assert by_sid["DecryptItThroughSecretsManager"]["Resource"] == "arn:SecretKey"
    assert by_sid["DecryptItThroughSecretsManager"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert len(by_sid) == 2


# ---------------------------------------------------------------------------------- alerts
def test_alerts_reach_the_encrypted_topic(template):
    topic = template["Resources"]["AlertTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlertKey"}
    sub = template["Resources"]["AlertEmailSubscription"]
    assert sub["Condition"] == "HasAlertEmail" and sub["Properties"]["Protocol"] == "email"
    assert evaluate(template, template["Conditions"]["HasAlertEmail"]) is False
    assert evaluate(template, template["Conditions"]["HasAlertEmail"], {"AlertEmail": "ops@example.com"}) is True

    (rule,) = resources(template, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.secretsmanager"]
    assert pattern["detail-type"] == ["AWS Service Event via CloudTrail"]
    assert sorted(pattern["detail"]["eventName"]) == ["RotationAbandoned", "RotationFailed", "TestRotationFailed"]
    # This stack's secret only: the events of every secret of the region reach every rule.
    assert pattern["detail"]["additionalEventData"] == {"SecretId": [{"Ref": "DatabaseSecret"}]}
    assert set(pattern["detail"]) == {"eventSource", "eventName", "additionalEventData"}
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": "AlertTopic"}

    (alarm,) = resources(template, "AWS::CloudWatch::Alarm").values()
    a = alarm["Properties"]
    assert (a["Namespace"], a["MetricName"]) == ("AWS/Lambda", "Errors")
    assert a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RotationFunction"}}]
    assert a["AlarmActions"] == [{"Ref": "AlertTopic"}]

    policy = template["Resources"]["AlertTopicPolicy"]["Properties"]
    principals = {s["Principal"]["Service"]: s for s in statements(policy["PolicyDocument"])}
    assert principals["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        {"Fn::GetAtt": [next(iter(resources(template, "AWS::Events::Rule"))), "Arn"]}
    assert principals["cloudwatch.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        {"Fn::GetAtt": [next(iter(resources(template, "AWS::CloudWatch::Alarm"))), "Arn"]}


def test_documents_are_untouched_by_the_deployment_parts(template):
    """The host scripts and the documents' parameters are the contract; the deployment never
    changes them (pytests/hosts owns their bytes)."""
    from local.ssm_runner import load_documents
    docs = load_documents(lint.TEMPLATE)
    assert set(docs) == {"PostgresRotationDocument", "MySQLRotationDocument", "SQLServerRotationDocument"}
    for name in docs:
        assert "Name" not in template["Resources"][name]["Properties"], "a fixed name would block a second stack"


def test_the_default_parameters_and_outputs(template):
    params = template["Parameters"]
    required = sorted(k for k, v in params.items() if "Default" not in v)
    assert required == ["DatabaseEngine", "DatabaseHost", "DatabaseInstanceIds", "LoginName"]
    assert params["RotationScheduleExpression"]["Default"] == "rate(85 days)"
    outputs = template["Outputs"]
    for key in ("SecretArn", "AlertTopicArn", "DatabaseHostInstanceProfileName", "DatabaseHostAccessPolicyArn",
                "DatabaseHostTag", "RotationFunctionArn"):
        assert key in outputs, key
    assert evaluate(template, outputs["DatabaseHostTag"]["Value"]) == "RotatorDatabase=rotator"


@pytest.mark.parametrize("value,reserved", [(None, "10"), ("1", "1"), ("250", "250"), ("", None), ("0", None)],
                         ids=["default", "one", "many", "empty", "zero"])
def test_reserved_concurrency_is_the_parameter_and_empty_or_zero_reserve_nothing(template, value, reserved):
    """Lambda's ReservedConcurrentExecutions of 0 stops the function: the parameter's 0, like empty,
    means no reservation (the property left out), never a function that cannot run."""
    overrides = {} if value is None else {"ReservedConcurrency": value}
    props = template["Resources"]["RotationFunction"]["Properties"]
    got = evaluate(template, props["ReservedConcurrentExecutions"], overrides)
    assert got == (reserved if reserved is not None else "AWS::NoValue")


def test_reserved_concurrency_takes_only_whole_numbers_lambda_accepts(template):
    pattern = re.compile(template["Parameters"]["ReservedConcurrency"]["AllowedPattern"])
    for accepted in ("", "0", "1", "10", "9999"):
        assert pattern.fullmatch(accepted), accepted
    # "00" would pass the condition's test for "0" and reserve 0: a function that never runs.
    for refused in ("00", "010", "-1", "1.5", "10000", " 10", "ten"):
        assert not pattern.fullmatch(refused), refused


def test_no_file_of_the_build_is_left_in_the_checkout():
    """sam build --build-in-source must not leave SAM's output where git would see it."""
    assert not Path(REPO, "RotationFunction").exists()
