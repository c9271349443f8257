"""What the shared layout's tests share: enrolling a login's unit (template-secret.yaml) into the
running shared stack, as its owners do, and rotating it."""

from __future__ import annotations

from local.databases import PostgresServer
from local.stack import LocalStack

INSTANCE_ID = "i-0f1ee70000000a001"


def enroll(stack: LocalStack, server: PostgresServer, login: str, on_host: bool = True, instance_id: str = INSTANCE_ID) -> str:
    """The secret's unit deployed for a new login on `server`, reached through `instance_id`, and,
    unless on_host is False, the host's owner's line for it (LocalStack.enroll_login). Returns the
    secret's ARN."""
    server.create_login(login, "Initial-Pass-12")
    return stack.enroll_login(f"secret-{login}", "postgres", login, [instance_id], port=server.port, on_hosts=on_host)


def rotate(stack: LocalStack, arn: str):
    """A rotation as Secrets Manager starts it, awaited: its local.stack.RotationRecord."""
    stack.client("secretsmanager").rotate_secret(SecretId=arn)
    return stack.wait_rotation(arn)
