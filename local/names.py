"""The local stack's fixed names: account, region, the function, its alert topic and queue, the
hosts' role and tag (shared by local/stack.py and the modules it is made of)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "rotator"
FUNCTION_LOGICAL_NAME = "RotationFunction"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
LOG_STREAM = "local/[$LATEST]function"
TOPIC_NAME = "rotator-alerts"
QUEUE_NAME = "rotator-alerts-inbox"

# The hosts read the secret; in the shared layout also its RotatorLogin tag (DescribeSecret).
HOST_ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
STACK_NAME = "rotator-local"                # AWS::StackName of the local stack
# The tag the template's policy requires on database hosts (its key is fixed in template.yaml);
# HostTagValue is empty by default, and then the value is the stack's name.
HOST_TAG = {"RotatorDatabase": STACK_NAME}
# Who deploys the shared layout's per-secret units (their SecretAdministratorArns, which the unit requires).
SECRET_ADMINISTRATOR = f"arn:aws:iam::{ACCOUNT}:role/secret-administrators"
TEMPLATE_POLICY = "template.yaml"           # AuthRecord.policy of requests under the template's policy
