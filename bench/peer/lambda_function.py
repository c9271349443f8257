"""The benchmark's peer: the rotation function a user would write in Python instead of ours.

It follows AWS's own rotation templates (aws-samples/aws-secrets-manager-rotation-lambdas): one
`lambda_handler` with the same guard, one function per step, boto3 clients. Like ours it changes
the password on the database hosts through the SSM documents of template.yaml (parameters
Action / SecretId / VersionId, the result line of docs/host-contract.md), reads the same
environment (POSTGRES_DOCUMENT, ..., PASSWORD_LENGTH, EXCLUDE_CHARACTERS, SNS_TOPIC_ARN) and keeps
the same secret format. It waits for each host with boto3's `command_executed` waiter, defaults
and all, as the SDK documents it.

The clients are built once per process, outside the handler, as Lambda's best practices advise:
a warm invocation reuses them and their connections.
"""

import json
import logging
import os

import boto3
from botocore.exceptions import WaiterError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

secrets_manager = boto3.client("secretsmanager")
ssm = boto3.client("ssm")
sns = boto3.client("sns")

DOCUMENTS = {
    "postgres": os.environ.get("POSTGRES_DOCUMENT"),
    "postgresql": os.environ.get("POSTGRES_DOCUMENT"),
    "mysql": os.environ.get("MYSQL_DOCUMENT"),
    "mariadb": os.environ.get("MYSQL_DOCUMENT"),
    "sqlserver": os.environ.get("SQLSERVER_DOCUMENT"),
}
SET_OUTCOMES = {"changed", "unchanged"}
VERIFY_OUTCOMES = {"verified"}


def lambda_handler(event, context):
    """Secrets Manager rotation for a database login on EC2 hosts, single user.

    Args:
        event (dict): Step, SecretId, ClientRequestToken and (optionally) RotationToken
        context (LambdaContext): the Lambda runtime information

    Raises:
        ValueError: when the secret is not set up for rotation or a host failed
    """
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]

    metadata = secrets_manager.describe_secret(SecretId=arn)
    if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
        logger.error("Secret %s is not enabled for rotation", arn)
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        logger.error("Secret version %s has no stage for rotation of secret %s.", token, arn)
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    elif "AWSPENDING" not in versions[token]:
        logger.error("Secret version %s not set as AWSPENDING for rotation of secret %s.", token, arn)
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    if step == "createSecret":
        create_secret(arn, token, event.get("RotationToken"))
    elif step == "setSecret":
        set_secret(arn, token)
    elif step == "testSecret":
        test_secret(arn, token)
    elif step == "finishSecret":
        finish_secret(arn, token)
    else:
        raise ValueError("Invalid step parameter")


def create_secret(arn, token, rotation_token):
    """Store a new password as AWSPENDING, unless the pending version already holds one."""
    current_dict = get_secret_dict(arn, "AWSCURRENT")
    try:
        get_secret_dict(arn, "AWSPENDING", token)
        logger.info("createSecret: Successfully retrieved secret for %s.", arn)
    except secrets_manager.exceptions.ResourceNotFoundException:
        passwd = secrets_manager.get_random_password(
            PasswordLength=int(os.environ.get("PASSWORD_LENGTH") or 32),
            ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", ""))
        current_dict["password"] = passwd["RandomPassword"]
        kwargs = {"SecretId": arn, "ClientRequestToken": token, "SecretString": json.dumps(current_dict),
                  "VersionStages": ["AWSPENDING"]}
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        secrets_manager.put_secret_value(**kwargs)
        logger.info("createSecret: Successfully put secret for ARN %s and version %s.", arn, token)


def set_secret(arn, token):
    """Have every host change the login's password to the pending one."""
    run_on_hosts(arn, token, "set", SET_OUTCOMES)
    logger.info("setSecret: Successfully set password on the hosts of %s.", arn)


def test_secret(arn, token):
    """Have every host log in with the pending password."""
    run_on_hosts(arn, token, "verify", VERIFY_OUTCOMES)
    logger.info("testSecret: Successfully verified the pending password on the hosts of %s.", arn)


def finish_secret(arn, token):
    """Move AWSCURRENT to the pending version."""
    metadata = secrets_manager.describe_secret(SecretId=arn)
    current_version = None
    for version in metadata["VersionIdsToStages"]:
        if "AWSCURRENT" in metadata["VersionIdsToStages"][version]:
            if version == token:
                logger.info("finishSecret: Version %s already marked as AWSCURRENT for %s", version, arn)
                return
            current_version = version
            break
    secrets_manager.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                                RemoveFromVersionId=current_version)
    logger.info("finishSecret: Successfully set AWSCURRENT stage to version %s for secret %s.", token, arn)


def run_on_hosts(arn, token, action, outcomes):
    """Run the engine's SSM document on every instance of the pending secret; raise unless each one
    succeeded and printed the result line for this action and version."""
    pending = get_secret_dict(arn, "AWSPENDING", token)
    document = DOCUMENTS.get(str(pending.get("engine", "")).lower())
    if not document:
        raise ValueError("No SSM document configured for engine %s" % pending.get("engine"))
    instance_ids = pending["instanceIds"]
    command_id = ssm.send_command(
        DocumentName=document, InstanceIds=instance_ids, Comment="rotation: %s" % action,
        Parameters={"Action": [action], "SecretId": [arn], "VersionId": [token]})["Command"]["CommandId"]
    logger.info("%s: sent command %s to %s", action, command_id, ",".join(instance_ids))

    waiter = ssm.get_waiter("command_executed")
    failures = []
    for instance_id in instance_ids:
        try:
            waiter.wait(CommandId=command_id, InstanceId=instance_id)
        except WaiterError as e:
            logger.error("%s on %s did not succeed: %s", action, instance_id, e)
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        outcome = reported_outcome(invocation.get("StandardOutputContent", ""), action, token)
        if invocation["Status"] != "Success" or invocation["ResponseCode"] != 0 or outcome not in outcomes:
            failures.append("%s: %s, exit code %s: %s" % (instance_id, invocation["Status"], invocation["ResponseCode"],
                                                          invocation.get("StandardErrorContent", "").strip()[-500:]))
    if failures:
        alert(arn, action, failures)
        raise ValueError("%s failed on %s" % (action, "; ".join(failures)))


def reported_outcome(stdout, action, token):
    """The outcome on the script's last line, `ROTATOR-RESULT action=... version=... outcome=...`,
    if it names this action and version."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("ROTATOR-RESULT "):
        return None
    fields = dict(pair.split("=", 1) for pair in lines[-1].split()[1:] if "=" in pair)
    if fields.get("action") != action or fields.get("version") != token:
        return None
    return fields.get("outcome")


def alert(arn, action, failures):
    topic = os.environ.get("SNS_TOPIC_ARN")
    if topic:
        sns.publish(TopicArn=topic, Subject="Rotation failed",
                    Message=json.dumps({"secretArn": arn, "action": action, "failures": failures}))


def get_secret_dict(arn, stage, token=None):
    """The secret's JSON for a stage (and version); checks the fields the rotation needs."""
    required_fields = ["engine", "host", "username", "password", "instanceIds"]
    if token:
        secret = secrets_manager.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        secret = secrets_manager.get_secret_value(SecretId=arn, VersionStage=stage)
    secret_dict = json.loads(secret["SecretString"])
    for field in required_fields:
        if field not in secret_dict:
            raise KeyError("%s key is missing from secret JSON" % field)
    return secret_dict
