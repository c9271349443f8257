"""The rotation driver of the local stack: moto's RotateSecret invokes the function through the
Runtime API for each step (asynchronously, as AWS does), with what Secrets Manager does around it
that moto does not (or does otherwise); each rotation is recorded (RotationRecord).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from local.names import FUNCTION_NAME


@dataclass
class StepRecord:
    step: str
    ok: bool
    duration_s: float
    request_id: str
    error_type: str | None = None
    error_message: str | None = None
    payload: Any = None
    cold_start: bool = False


@dataclass
class RotationRecord:
    secret_arn: str
    token: str | None
    rotate_immediately: bool
    mode: str                                   # "rotate" | "test" | "prepare"
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    # The events and the RotationToken they carry stay out of the repr a failed assertion prints.
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    rotation_token: str | None = field(default=None, repr=False)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def ok(self) -> bool | None:
        if not self.done.is_set():
            return None
        return self.error is None and all(s.ok for s in self.steps) and bool(self.steps or self.mode == "prepare")

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if not s.ok), None)


_tls = threading.local()


class RotationDriver:
    """Part of LocalStack (local/stack.py): the RotateSecret and Lambda hooks, and starting and
    awaiting rotations. Uses the stack's runtime, function_timeout_s, send_rotation_token,
    rotations, rotation_tokens, _prepare_only, _threads, client() and _patch()."""

    # -- Secrets Manager: RotateSecret drives the function; PutSecretValue into a filled version
    def _patch_secretsmanager(self) -> None:
        from moto.secretsmanager.exceptions import InvalidRequestException, ResourceExistsException
        from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

        stack = self
        orig_rotate = SecretsManagerBackend.rotate_secret
        orig_check = SecretsManagerBackend._check_with_existing_secrets_and_versions

        def check(backend: Any, secret_name: str, client_request_token: str | None,
                  secret_string: str | None, secret_binary: str | None, on_create: bool = False) -> Any:
            # moto lets PutSecretValue overwrite a version that holds AWSPENDING even when it
            # already has a value. AWS: same token + same value is a no-op, a different value is
            # ResourceExistsException. Only a still-empty pending version may be filled.
            if client_request_token and secret_name in backend.secrets:
                secret = backend.secrets[secret_name]
                v = getattr(secret, "versions", {}).get(client_request_token)
                if v and "AWSPENDING" in v["version_stages"] and ("secret_string" in v or "secret_binary" in v):
                    if v.get("secret_string") == secret_string and v.get("secret_binary") == secret_binary:
                        return secret
                    raise ResourceExistsException(
                        f"You can't use ClientRequestToken {client_request_token} because that value "
                        f"is already in use for a version of secret {secret.arn}.")
            return orig_check(backend, secret_name, client_request_token, secret_string, secret_binary,
                              on_create=on_create)

        def rotate_secret(backend: Any, secret_id: str, client_request_token: str | None = None,
                          rotation_lambda_arn: str | None = None, rotation_rules: dict[str, Any] | None = None,
                          rotate_immediately: bool = True) -> str:
            if not backend._is_valid_identifier(secret_id):
                return orig_rotate(backend, secret_id, client_request_token, rotation_lambda_arn,
                                   rotation_rules, rotate_immediately)
            secret = backend.secrets[secret_id]
            versions = getattr(secret, "versions", {})
            # AWS: AWSPENDING on a version that is not AWSCURRENT means a rotation is unfinished.
            # (moto checks the opposite: it refuses when AWSPENDING sits *with* AWSCURRENT, which
            # is one of the two states a successful rotation may leave.)
            for v in versions.values():
                if "AWSPENDING" in v["version_stages"] and "AWSCURRENT" not in v["version_stages"]:
                    raise InvalidRequestException(
                        "A previous rotation isn't complete. That rotation will be reattempted.")
            for v in versions.values():
                if "AWSPENDING" in v["version_stages"] and "AWSCURRENT" in v["version_stages"]:
                    v["version_stages"].remove("AWSPENDING")
            # moto forgets the configured function when RotateSecret names none (and then moves
            # AWSCURRENT to an empty version). AWS uses the configured one.
            if not rotation_lambda_arn:
                rotation_lambda_arn = getattr(secret, "rotation_lambda_arn", "") or None
                if not rotation_lambda_arn:
                    raise InvalidRequestException(
                        "No Lambda rotation function ARN is associated with this secret.")
            mode = "rotate" if rotate_immediately else "test"
            if secret.arn in stack._prepare_only:
                stack._prepare_only.discard(secret.arn)
                mode = "prepare"
            rec = RotationRecord(secret_arn=secret.arn, token=None, rotate_immediately=rotate_immediately,
                                 mode=mode, rotation_token=str(uuid.uuid4()) if stack.send_rotation_token else None)
            if rec.rotation_token:
                stack.rotation_tokens.append(rec.rotation_token)
            _tls.rotation = rec
            try:
                result = orig_rotate(backend, secret_id, client_request_token, rotation_lambda_arn,
                                     rotation_rules, rotate_immediately)
            finally:
                _tls.rotation = None
            rec.token = json.loads(result).get("VersionId") if isinstance(result, str) else None
            if rec.events:
                rec.token = rec.events[0]["ClientRequestToken"]
            if mode == "test" and rec.token in secret.versions:
                # moto copies FakeSecret.secret_string into the trial version: the value the secret
                # was *created* with. AWS tests with a copy of AWSCURRENT.
                trial = secret.versions[rec.token]
                current = next((v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"]), None)
                if current is not None:
                    for key in ("secret_string", "secret_binary"):
                        trial.pop(key, None)
                        if key in current:
                            trial[key] = current[key]
            stack._fix_default_version(secret)
            stack.rotations.append(rec)
            if mode == "prepare":
                rec.finished_at = time.time()
                rec.done.set()
            else:
                t = threading.Thread(target=stack._run_rotation, args=(backend, secret, rec),
                                     name=f"rotation-{rec.token}", daemon=True)
                stack._threads.append(t)
                t.start()
            return result

        def form_version_ids_to_stages(secret: Any) -> dict[str, list[str]]:
            # AWS lists only versions that still carry a label; moto lists every version.
            return {k: v["version_stages"] for k, v in secret.versions.items() if v["version_stages"]}

        self._patch(FakeSecret, "_form_version_ids_to_stages", form_version_ids_to_stages)
        self._patch(SecretsManagerBackend, "rotate_secret", rotate_secret)
        self._patch(SecretsManagerBackend, "_check_with_existing_secrets_and_versions", check)

    @staticmethod
    def _fix_default_version(secret: Any) -> None:
        # moto points its "default" version (what GetSecretValue without stage answers) at the new
        # version right after RotateSecret; AWS answers AWSCURRENT.
        for vid, v in getattr(secret, "versions", {}).items():
            if "AWSCURRENT" in v["version_stages"]:
                secret.default_version_id = vid
                return

    def _run_rotation(self, backend: Any, secret: Any, rec: RotationRecord) -> None:
        try:
            for event in rec.events:
                res = self.runtime.invoke(event, self.function_timeout_s)
                rec.steps.append(StepRecord(step=event["Step"], ok=res.ok, duration_s=res.duration_s,
                                            request_id=res.request_id, error_type=res.error_type,
                                            error_message=res.error_message, payload=res.payload,
                                            cold_start=res.cold_start))
                if not res.ok:
                    break
            if rec.mode == "test" and rec.token in secret.versions:
                # "The test creates an AWSPENDING version of the secret and then removes it."
                v = secret.versions[rec.token]
                if "AWSCURRENT" not in v["version_stages"]:
                    del secret.versions[rec.token]
        except Exception as e:  # pragma: no cover - recorded, never raised into moto's thread
            rec.error = f"local stack: {e!r}"
        finally:
            self._fix_default_version(secret)
            rec.finished_at = time.time()
            rec.done.set()

    # -- Lambda: moto's invoke (which needs Docker) only collects the events
    def _patch_lambda(self) -> None:
        from moto.awslambda.models import LambdaBackend

        orig_invoke = LambdaBackend.invoke

        def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> Any:
            rec: RotationRecord | None = getattr(_tls, "rotation", None)
            name = function_name.split(":function:")[-1].split(":")[0]
            if rec is None or name != FUNCTION_NAME:
                return orig_invoke(backend, function_name, qualifier, body, headers, response_headers)
            if rec.mode == "prepare":
                return b""
            event = json.loads(body)
            # AWS sends the secret's ARN (moto: its name) and a RotationToken.
            event["SecretId"] = rec.secret_arn
            if rec.rotation_token:
                event["RotationToken"] = rec.rotation_token
            rec.events.append(event)
            return b""

        self._patch(LambdaBackend, "invoke", invoke)

    def begin_rotation(self, arn: str, token: str | None = None) -> str:
        """What Secrets Manager does before invoking createSecret: a new version `token` labelled
        AWSPENDING with no value. Uses RotateSecret itself with the function invocations held."""
        self._prepare_only.add(arn)
        kw = {"SecretId": arn}
        if token:
            kw["ClientRequestToken"] = token
        try:
            vid = self.client("secretsmanager").rotate_secret(**kw)["VersionId"]
        finally:
            self._prepare_only.discard(arn)
        return vid

    def wait_rotation(self, arn: str, timeout_s: float | None = None) -> RotationRecord:
        """The latest rotation of `arn`, once its steps are done."""
        deadline = time.monotonic() + (timeout_s or 4 * self.function_timeout_s + 30)
        while True:
            recs = [r for r in self.rotations if r.secret_arn == arn]
            if recs:
                rec = recs[-1]
                if rec.done.wait(max(0.0, deadline - time.monotonic())):
                    return rec
                raise TimeoutError(f"rotation of {arn} still running")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no rotation of {arn} started")
            time.sleep(0.05)
