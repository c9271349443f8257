"""Operating a fleet (issue 12), end to end on the local stack in the shared layout, with the real
binary, real PostgreSQL and the units deployed from template-secret.yaml: `rotator status --fleet`
over units in different states, as lines and as JSON; status, doctor and cancel on an enrolled
secret; a failed rotation's alert and metric lines; the RotationToken on the calls that take it and
nowhere else; a secret with a replica region; a secret named after another's ARN and a log search cut short (threat 41).

Three units are enrolled once for the module: one rotated, one never rotated, and one whose second
rotation failed at setSecret (its host answered without the result line, so the function kept
AWSPENDING; the restore did run, so the host still accepts AWSCURRENT and cancel can prove it)."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from local.names import LOG_GROUP
from local.rotation_driver import RotationRecord
from local.stack import REGION, STACK_NAME, LocalStack
from pytests.operations.cli import OperatorCLI

from .support import INSTANCE_ID, enroll, rotate

REPLICA_REGION = "eu-west-1"
CLI = OperatorCLI()
rotator, make = CLI.rotator, CLI.make
# The dimension sets a step line may declare (docs/deploying.md, "Metrics"): none names a secret.
LOW_CARDINALITY = {(), ("Step",), ("Step", "Outcome"), ("Step", "Reason")}


def name_of(login: str) -> str:
    """The secret's name as the unit (template-secret.yaml) gives it."""
    return f"rotator/{STACK_NAME}/secret-{login}"


@dataclass
class Units:
    healthy: str
    stuck: str
    new: str
    rotations: list[RotationRecord]
    failed: RotationRecord


@pytest.fixture(scope="module")
def units(fleet: LocalStack, postgres) -> Units:
    healthy, stuck, new = (enroll(fleet, postgres, login) for login in ("ops_healthy", "ops_stuck", "ops_new"))
    rotations = [rotate(fleet, healthy), rotate(fleet, stuck)]
    assert all(rec.ok for rec in rotations), [rec.steps for rec in rotations]
    fleet.set_fault(INSTANCE_ID, strip_result_line=True, actions={"set"})
    try:
        failed = rotate(fleet, stuck)
    finally:
        fleet.clear_faults()
    assert not failed.ok and failed.failed_step is not None and failed.failed_step.step == "setSecret", failed.steps
    return Units(healthy, stuck, new, rotations + [failed], failed)


def columns(lines: list[str]) -> list[list[str]]:
    """The fields of the lines after the header, cut where the header's columns begin."""
    header = lines[0]
    starts = [header.index(title) for title in ("NAME", "LOGIN", "LAST ROTATED", "NEXT ROTATION", "STATE", "LAST FAILURE")]
    ends = starts[1:] + [None]
    return [[line[start:end].rstrip() for start, end in zip(starts, ends, strict=True)] for line in lines[1:]]


def enrolled_names(stack: LocalStack) -> list[str]:
    """Every secret whose RotatorFleet tag is exactly the fleet's, from moto's full listing."""
    pages = stack.client("secretsmanager").get_paginator("list_secrets").paginate()
    return sorted(s["Name"] for page in pages for s in page["SecretList"]
                  if {t["Key"]: t["Value"] for t in s.get("Tags") or []}.get("RotatorFleet") == STACK_NAME)


LABELS = {"OK": "healthy", "NOT CONFIGURED": "not-configured", "IN PROGRESS": "in-progress", "STUCK": "stuck", "BROKEN": "broken",
          "OUT OF REACH": "out-of-reach"}


# ------------------------------------------------------------------------------ status --fleet
def test_status_over_the_fleet_shows_each_enrolled_secret_once_with_its_state(fleet, units):
    sm = fleet.client("secretsmanager")
    # Secrets that ListSecrets' prefix filters let through but that are not the fleet's: the tag of
    # another fleet whose name starts with this one's, and a value equal to it under another key.
    sm.create_secret(Name=f"rotator/{STACK_NAME}-other/decoy", SecretString="{}",
                     Tags=[{"Key": "RotatorFleet", "Value": f"{STACK_NAME}-other"}])
    sm.create_secret(Name="elsewhere/decoy", SecretString="{}", Tags=[{"Key": "Team", "Value": STACK_NAME}])
    # The fleet's tags on a secret named outside its prefix, which the shared function cannot reach.
    sm.create_secret(Name="elsewhere/named-outside", SecretString="{}",
                     Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME}, {"Key": "RotatorLogin", "Value": "app"}])
    # A tag value written by whoever may create secrets, meant to forge a line of its own.
    sm.create_secret(Name=f"rotator/{STACK_NAME}/hostile", SecretString="{}",
                     Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME},
                           {"Key": "RotatorLogin", "Value": f"x\n{name_of('forged')}  app  never  -  OK"}])
    # A secret made by hand with the fleet's tags and name, rotated by the shared function, but on
    # aws/secretsmanager: the role denies every read of its value (threat 38).
    by_hand = sm.create_secret(Name=f"rotator/{STACK_NAME}/by-hand", SecretString="{}",
                               Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME}, {"Key": "RotatorLogin", "Value": "app"}])["ARN"]
    fleet.configure_rotation(by_hand)
    # Enough secrets for ListSecrets to answer in more than one page (100 each).
    for n in range(100):
        sm.create_secret(Name=f"rotator/{STACK_NAME}/bulk-{n:03}", SecretString="{}",
                         Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME}])
    expected = enrolled_names(fleet)
    assert len(expected) > 100

    listed_before = sum(r.action == "ListSecrets" for r in fleet.auth_log)
    p = rotator(fleet, "status", "--fleet", STACK_NAME)
    assert p.returncode == 1, p.stdout + p.stderr
    pages = sum(r.action == "ListSecrets" for r in fleet.auth_log) - listed_before
    matched = sum(len(page["SecretList"]) for page in sm.get_paginator("list_secrets").paginate(Filters=[
        {"Key": "tag-key", "Values": ["RotatorFleet"]}, {"Key": "tag-value", "Values": [STACK_NAME]}]))
    assert pages == math.ceil(matched / 100) >= 2

    lines = p.stdout.splitlines()
    assert len(lines) == len(expected) + 2, lines[:5]
    rows = columns(lines[:-1])
    assert [row[0] for row in rows] == expected
    by_name = {row[0]: row for row in rows}
    utc = r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    healthy = by_name[name_of("ops_healthy")]
    assert healthy[1] == "ops_healthy" and re.fullmatch(utc, healthy[2]) and re.fullmatch(utc, healthy[3])
    assert healthy[4:] == ["OK", "-"]
    assert by_name[name_of("ops_new")][1:3] == ["ops_new", "never"] and by_name[name_of("ops_new")][4:] == ["OK", "-"]
    stuck = by_name[name_of("ops_stuck")]
    assert stuck[1] == "ops_stuck" and stuck[4] == "STUCK"
    assert re.match(rf"setSecret failed at {utc} \(HostCommandFailed\): ", stuck[5]), stuck[5]
    assert INSTANCE_ID in stuck[5] and "no ROTATOR-RESULT line" in stuck[5]
    assert by_name[f"rotator/{STACK_NAME}/hostile"][1] == json.dumps(f"x\n{name_of('forged')}  app  never  -  OK")
    assert by_name[f"rotator/{STACK_NAME}/bulk-000"][4:] == [
        "NOT CONFIGURED", "out of the shared function's reach: no RotatorLogin tag; rotation is not enabled"]
    assert by_name["elsewhere/named-outside"][4:] == [
        "NOT CONFIGURED", f"out of the shared function's reach: not named under rotator/{STACK_NAME}/; rotation is not enabled"]
    fleet_key = sm.describe_secret(SecretId=units.healthy)["KmsKeyId"]
    assert fleet_key.startswith("arn:aws:kms:")
    assert by_name[f"rotator/{STACK_NAME}/by-hand"][4:] == [
        "OUT OF REACH", f"out of the shared function's reach: encrypted with aws/secretsmanager, not the fleet's key {fleet_key}"]
    tally = {label: sum(row[4] == label for row in rows) for label in LABELS}
    assert lines[-1] == (f"{len(expected)} secrets in {STACK_NAME}: {tally['OK']} OK, {tally['NOT CONFIGURED']} NOT CONFIGURED, "
                         f"{tally['IN PROGRESS']} IN PROGRESS, {tally['STUCK']} STUCK, {tally['BROKEN']} BROKEN, "
                         f"{tally['OUT OF REACH']} OUT OF REACH")

    # The same facts as one JSON document, through make as an operator runs it.
    p = make(fleet, "fleet-status", f"FLEET={STACK_NAME}", "ARGS=--json")
    assert p.returncode == 2 and "Error 1" in p.stderr, p.stderr    # make's report of the command's exit status 1
    document = json.loads(p.stdout)
    assert document["fleet"] == STACK_NAME and document["needsAttention"] is True
    secrets = {s["name"]: s for s in document["secrets"]}
    assert [s["name"] for s in document["secrets"]] == expected
    assert {name: s["state"] for name, s in secrets.items()} == {row[0]: LABELS[row[4]] for row in rows}
    assert document["counts"] == {verdict: tally[label] for label, verdict in LABELS.items()}
    # The bulk secrets have no RotatorLogin tag.
    assert sum(s["outOfReach"] is not None for s in secrets.values()) == sum(
        row[5].startswith("out of the shared function's reach") for row in rows) >= 101
    assert secrets["elsewhere/named-outside"]["outOfReach"].startswith("out of the shared function's reach: not named")
    assert secrets[name_of("ops_healthy")]["outOfReach"] is None
    assert secrets[name_of("ops_healthy")]["login"] == "ops_healthy"
    assert secrets[name_of("ops_healthy")]["currentVersion"] == units.rotations[0].token
    assert secrets[name_of("ops_new")]["lastRotated"] is None
    assert secrets[name_of("ops_stuck")]["secretArn"] == units.stuck
    assert secrets[name_of("ops_stuck")]["pendingVersion"] == units.failed.token
    failure = secrets[name_of("ops_stuck")]["lastFailure"]
    assert failure["step"] == "setSecret" and failure["reason"] == "HostCommandFailed" and INSTANCE_ID in failure["message"]
    assert secrets[f"rotator/{STACK_NAME}/hostile"]["login"] == f"x\n{name_of('forged')}  app  never  -  OK"


def test_a_secret_named_after_anothers_arn_does_not_hide_its_failure(fleet, units):
    """Threat 41. Whoever may create one secret of the fleet names it after the stuck secret's ARN
    (its name and 6-character suffix), so that its own ARN contains the victim's, and fills the
    shared log group with its step lines after the victim's failure: more than `status` keeps (200)
    of a search that matches the victim's ARN as a substring. Searched by the SecretId member
    exactly, the victim's failure is still the one shown, by status of the secret and of the fleet."""
    victim_name = units.stuck.split(":secret:", 1)[1]
    attacker = fleet.client("secretsmanager").create_secret(
        Name=victim_name, SecretString="{}", Tags=[{"Key": "RotatorFleet", "Value": STACK_NAME}])["ARN"]
    assert units.stuck in attacker and attacker != units.stuck
    # The attacker's lines are the function's own step lines (a healthy rotation's), naming its secret.
    template = next(json.loads(text) for text in fleet.function_log().splitlines()
                    if text.startswith("{") and json.loads(text).get("SecretId") == units.healthy)
    logs = fleet.client("logs")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="attacker")
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="attacker", logEvents=[
        {"timestamp": now_ms + n, "message": json.dumps({**template, "SecretId": attacker, "VersionId": units.failed.token})}
        for n in range(300)])

    p = rotator(fleet, "status", "--secret-id", units.stuck)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"STUCK: version {units.failed.token} holds AWSPENDING but not AWSCURRENT" in p.stdout, p.stdout
    assert re.search(r"^last failure +setSecret failed at .*\(HostCommandFailed\): .*no ROTATOR-RESULT line", p.stdout, re.M), p.stdout
    assert "could not be read" not in p.stdout, p.stdout

    p = rotator(fleet, "status", "--fleet", STACK_NAME)
    lines = p.stdout.splitlines()
    row = next(row for row in columns(lines[:-1]) if row[0] == name_of("ops_stuck"))
    assert row[4] == "STUCK" and row[5].startswith("setSecret failed at ") and "no ROTATOR-RESULT line" in row[5], row


def test_a_log_search_cut_short_is_reported_not_silent(fleet, units):
    """More of the secret's own step lines than status keeps (the newest 200): what it shows may not
    be all there is, and it says so, for the secret and on its fleet line. The lines are copies of
    the victim's failure line, so the last record is still a failure and cancel (later) proceeds."""
    failed_line = next(json.loads(text) for text in fleet.function_log().splitlines()
                       if text.startswith("{") and json.loads(text).get("SecretId") == units.stuck
                       and json.loads(text).get("Outcome") == "Failure")
    logs = fleet.client("logs")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="victim-copies")
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="victim-copies", logEvents=[
        {"timestamp": now_ms + n, "message": json.dumps(failed_line)} for n in range(200)])

    p = rotator(fleet, "status", "--secret-id", units.stuck)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "last failure    setSecret failed at" in p.stdout, p.stdout
    assert re.search(r"A later failure may be missing: the function's log could not be read: the search was incomplete "
                     r"\(only the newest 200 of 20\d matching events were kept\)", p.stdout), p.stdout
    p = rotator(fleet, "status", "--fleet", STACK_NAME)
    row = next(row for row in columns(p.stdout.splitlines()[:-1]) if row[0] == name_of("ops_stuck"))
    assert row[4] == "STUCK" and row[5].startswith("setSecret failed at "), row
    assert row[5].endswith("matching events were kept))") and "the search was incomplete" in row[5], row


# ------------------------------------------------------------------------------ alerts and metrics
def test_a_failed_rotations_alert_names_the_secret(fleet, units):
    alerts = [a for a in fleet.alerts() if units.stuck in a["message"]]
    assert len(alerts) == 1, [a["subject"] for a in fleet.alerts()]
    alert = alerts[0]
    assert alert["message"].startswith(f"Rotation of {units.stuck} failed in step setSecret.")
    # The subject names the secret too (the last part of its ARN: its name and suffix).
    assert f"{name_of('ops_stuck')}-" in alert["subject"] and "(setSecret)" in alert["subject"]
    assert not [a for a in fleet.alerts() if units.healthy in a["message"] or units.new in a["message"]]


def test_step_lines_carry_the_secret_as_a_property_and_only_low_cardinality_dimensions(fleet, units):
    lines = fleet.step_lines(units.healthy, units.stuck, units.new)
    assert {line["SecretId"] for line in lines} == {units.healthy, units.stuck}
    failed = [line for line in lines if line["Outcome"] == "Failure"]
    assert [(line["Step"], line["Reason"], line["VersionId"]) for line in failed] == [
        ("setSecret", "HostCommandFailed", units.failed.token)]
    declared = set()
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            sets = {tuple(dimensions) for dimensions in directive["Dimensions"]}
            assert sets <= LOW_CARDINALITY, (line["Step"], directive["Dimensions"])
            declared |= sets
            # Every dimension's value is one of a few words, whatever the fleet's size.
            for name in {name for dimensions in sets for name in dimensions}:
                assert line[name] in {"createSecret", "setSecret", "testSecret", "finishSecret", "Success", "Failure", "HostCommandFailed"}
    assert declared == LOW_CARDINALITY


# ------------------------------------------------------------------------------ RotationToken
def test_the_rotation_token_goes_on_each_put_and_nowhere_else(fleet, units):
    """Secrets Manager's RotationToken (a cross-account function's proof that Secrets Manager asked
    for the rotation) is a member of PutSecretValue only, in the API: the function sends the event's
    on every PutSecretValue of that rotation, sends it on no other call, and writes it nowhere."""
    for rec in units.rotations:
        assert rec.rotation_token, "the local stack sent no RotationToken"
        calls = [r for r in fleet.function_requests()
                 if r.service == "secretsmanager" and rec.started_at <= r.at <= rec.finished_at]
        puts = [r for r in calls if r.action == "PutSecretValue"]
        assert len(puts) == 1 and puts[0].ok and puts[0].resources == [rec.secret_arn], puts
        # Compared, never shown: a failed assertion prints its operands, and records their repr.
        same_token = puts[0].rotation_token == rec.rotation_token
        assert same_token, "the PutSecretValue did not carry the rotation's RotationToken"
        assert [r.action for r in calls if r.action != "PutSecretValue" and r.rotation_token is not None] == []
        shown = rec.rotation_token in repr(rec) + repr(calls)
        assert not shown, "a record's repr shows a RotationToken"
    tokens = [rec.rotation_token for rec in units.rotations]
    written = [fleet.function_log()] + [a["raw"] for a in fleet.alerts()]
    leaked = sum(any(t in text for text in written) for t in tokens)
    assert leaked == 0, f"{leaked} RotationToken(s) in the function's log or an alert"


# ------------------------------------------------------------------------------ the operator commands
def test_status_doctor_and_cancel_on_enrolled_secrets(fleet, postgres, units):
    p = rotator(fleet, "status", "--secret-id", units.stuck)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"STUCK: version {units.failed.token} holds AWSPENDING but not AWSCURRENT" in p.stdout
    assert "last failure    setSecret failed at" in p.stdout and "(HostCommandFailed)" in p.stdout

    # doctor finds the shared documents in the function's configuration and runs verify on the host.
    sent = len(fleet.commands)
    p = rotator(fleet, "doctor", "--secret-id", units.healthy)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not [line for line in p.stdout.splitlines() if line.startswith(("FAIL", "SKIP"))], p.stdout
    assert f"{fleet.document_names['PostgresRotationDocument']} for postgres, the one this rotator ships" in p.stdout
    verify = [c for c in fleet.commands[sent:] if c.parameters.get("SecretId") == [units.healthy]]
    assert verify and all(c.parameters["Action"] == ["verify"] for c in verify)
    # Before its first rotation a unit holds a placeholder: doctor passes what it can and skips the login.
    p = rotator(fleet, "doctor", "--secret-id", units.new)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "placeholder password" in p.stdout

    p = rotator(fleet, "cancel", "--secret-id", units.stuck)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"Removed AWSPENDING from version {units.failed.token}" in p.stdout
    assert fleet.version_with(units.stuck, "AWSPENDING") is None
    assert postgres.can_login("ops_stuck", fleet.secret_value(units.stuck)["password"])
    p = rotator(fleet, "status", "--fleet", STACK_NAME, "--json")
    assert {s["name"]: s["verdict"] for s in json.loads(p.stdout)["secrets"]}[name_of("ops_stuck")] == "healthy"


# ------------------------------------------------------------------------------ replicas
def test_a_secret_with_a_replica_rotates_once_in_its_primary_region(fleet, postgres):
    """A replica's rotation cannot be configured; the primary's rotation runs in the primary's region,
    where its hosts read it (hosts/linux/prologue.sh takes the region from the secret's ARN)."""
    arn = enroll(fleet, postgres, "ops_replica")
    fleet.client("secretsmanager").replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=[{"Region": REPLICA_REGION}])
    replica_arn = arn.replace(f":{REGION}:", f":{REPLICA_REGION}:")
    replica = fleet.session().client("secretsmanager", endpoint_url=fleet.url, region_name=REPLICA_REGION)
    assert replica.describe_secret(SecretId=replica_arn)["PrimaryRegion"] == REGION
    with pytest.raises(ClientError) as refused:
        replica.rotate_secret(SecretId=replica_arn, RotationLambdaARN=fleet.function_arn)
    assert "replica" in str(refused.value).lower()

    rotations = len(fleet.rotations)
    since = max(r.at for r in fleet.auth_log)
    rec = rotate(fleet, arn)
    assert rec.ok, rec.steps
    assert len(fleet.rotations) == rotations + 1
    sent = [c for c in fleet.commands if arn in json.dumps(c.parameters)]
    assert sent and {tuple(c.parameters["SecretId"]) for c in sent} == {(arn,)}
    host_reads = [r for r in fleet.auth_log if r.principal == "host" and r.at > since]
    assert {r.action for r in host_reads} >= {"GetSecretValue"}
    assert {r.region for r in host_reads} == {REGION}
    assert {r.region for r in fleet.function_requests() if r.at > since} == {REGION}
    current = fleet.secret_value(arn)
    assert postgres.can_login("ops_replica", current["password"])
    # moto keeps one set of versions for a primary and its replicas, so this shows that AWSCURRENT
    # is read through the replica's ARN, not that replication happened (AWS replicates in seconds).
    assert json.loads(replica.get_secret_value(SecretId=replica_arn)["SecretString"]) == current


def test_no_output_held_a_password_or_a_token(fleet):
    assert CLI.outputs, "run with the other tests of this module"
    passwords = [json.loads(value).get("password", "") for _, _, value in fleet.every_secret_string() if value.startswith("{")]
    leaked = [p[:4] + "…" for p in passwords if p and any(p in out for out in CLI.outputs)]
    assert not leaked, f"passwords in the operator commands' output: {leaked}"
    assert not [s for s in fleet.secrets_in_play() if any(s in out for out in CLI.outputs)]
