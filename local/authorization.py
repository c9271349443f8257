"""Authorization of requests to the local stack: every request after the setup calls must be signed
(SigV4, checked by moto against botocore's signer, with AWS's own rules on signed headers and clock
skew) by a known key, and allowed by IAM; each is recorded (AuthRecord), and errors are answered as
the real services answer them. The function's requests are also evaluated against template.yaml's
own statements for its role, resources and conditions included (local/iam_policy.py), less what a
test withholds (function_policy_without)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local.moto_support import http_exception
from local.names import ACCOUNT, FUNCTION_LOGICAL_NAME, FUNCTION_NAME, REGION, TEMPLATE_POLICY

# The account's AWS managed key for Secrets Manager (alias/aws/secretsmanager), which encrypts a
# secret that names no key: a fixed ARN here, as AWS gives each account one.
AWS_MANAGED_SECRETS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5ec12e75-0000-4000-8000-000000000000"


@dataclass
class AuthRecord:
    at: float
    principal: str                  # admin | function | host | unknown:<akid> | anonymous
    access_key_id: str
    service: str
    action: str
    session_token: bool
    ok: bool
    error: str | None = None
    unsigned_amz_headers: list[str] = field(default_factory=list)
    # The function's requests: the policy they were evaluated against (TEMPLATE_POLICY, or the
    # template's less what a test withheld), the resources, the one denied if any.
    policy: str = ""
    resources: list[str] = field(default_factory=list)
    denied_resource: str = ""
    # The region the request was signed for (its credential scope): where the caller sent it.
    region: str = ""
    # Secrets Manager requests: the RotationToken member, if the request had one (it is the
    # token Secrets Manager handed the function; the leak checks search for it, never print it:
    # nor does the record's repr, which a failed assertion prints).
    rotation_token: str | None = field(default=None, repr=False)

    @property
    def denied_by_withholding(self) -> bool:
        """A denial a test provoked on purpose, by withholding statements or actions of the function's
        policy (LocalStack.function_policy_without)."""
        return self.error == "AccessDenied" and self.policy not in ("", TEMPLATE_POLICY)


class RequestAuthorization:
    """Part of LocalStack (local/stack.py): the check of every request and the function's policy.
    Uses the stack's admin, _principals, _settings, max_clock_skew_s, auth_log, auth_check,
    _template, _template_refs(), function_statements, withheld_statements/actions,
    _reduced_policy_log_spans, instance_tags, log_path, client() and _patch()."""

    def _verify_auth_is_on(self) -> None:
        import botocore.exceptions
        bad = dict(self.admin, SecretAccessKey="not-the-secret-" + uuid.uuid4().hex)
        try:
            self.client("secretsmanager", bad).list_secrets()
        except botocore.exceptions.ClientError as e:
            self.auth_check = {"rejected": True, "code": e.response["Error"].get("Code"),
                               "status": e.response["ResponseMetadata"].get("HTTPStatusCode")}
        else:
            raise RuntimeError("moto accepted a wrongly signed request: signature checking is off")
        # And a good one passes (also proves the admin key works).
        self.client("secretsmanager").list_secrets()
        # The bad request above is not a fault of anyone under test.
        self.auth_log.clear()

    # -- authentication: record every checked request, answer errors as AWS does
    def _patch_auth(self) -> None:
        from moto.core.authorization import ActionAuthenticatorMixin
        from werkzeug.exceptions import HTTPException

        stack = self
        settings = self._settings
        orig = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

        def between(s: str, a: str, b: str) -> str:
            return s.partition(a)[2].partition(b)[0]

        def wrapped(resp: Any, resource: str = "*") -> None:
            if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                return orig(resp, resource)
            headers = resp.headers
            auth = headers.get("Authorization") or ""
            service = getattr(resp, "service_name", "") or ""
            try:
                action = resp._get_action()
            except Exception:
                action = "?"
            akid = between(auth, "Credential=", "/")
            scope = between(auth, "Credential=", ",").split("/")
            rec = AuthRecord(at=time.time(), principal=stack._principals.get(akid, f"unknown:{akid}" if akid else "anonymous"),
                             access_key_id=akid, service=service, action=str(action),
                             session_token="X-Amz-Security-Token" in headers, ok=False,
                             region=scope[2] if len(scope) > 2 else "")
            if service == "secretsmanager":
                rec.rotation_token = stack._rotation_token_of(resp.body)
            if rec.principal == "function":
                rec.policy = stack.function_policy_name
            signed = [h.strip().lower() for h in between(auth, "SignedHeaders=", ",").split(";") if h.strip()]
            rec.unsigned_amz_headers = sorted(k.lower() for k in headers.keys()
                                              if k.lower().startswith("x-amz-") and k.lower() not in signed)
            try:
                if not auth.startswith("AWS4-HMAC-SHA256 "):
                    raise stack._auth_error(resp, "MissingAuthenticationToken", "Missing Authentication Token")
                if "host" not in signed:
                    raise stack._auth_error(resp, "SignatureDoesNotMatch",
                                            "'Host' must be a signed header")
                amz_date = headers.get("X-Amz-Date") or ""
                if "x-amz-date" not in signed and "date" not in signed:
                    raise stack._auth_error(resp, "SignatureDoesNotMatch",
                                            "'X-Amz-Date' or 'Date' must be a signed header")
                try:
                    when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
                except ValueError:
                    raise stack._auth_error(resp, "IncompleteSignature", "X-Amz-Date is missing or malformed") from None
                skew = abs((dt.datetime.now(dt.UTC) - when).total_seconds())
                if skew > stack.max_clock_skew_s:
                    raise stack._auth_error(resp, "SignatureExpired",
                                            f"Signature expired: {amz_date} is now earlier/later than allowed")
                if resp.method == "GET" and not resp.raw_body:
                    # moto hashes a GET's form data as its body (for Lambda's REST API, the request
                    # headers), so no correctly signed GET passes. AWS hashes the empty body.
                    form, resp.data = resp.data, b""
                    try:
                        orig(resp, resource)
                    finally:
                        resp.data = form
                else:
                    orig(resp, resource)
                if rec.principal == "function":
                    stack._authorize_function_request(resp, service, str(action), rec)
                rec.ok = True
            except HTTPException as e:
                code = rec.error = stack._error_code(e)
                if getattr(e, "_local_converted", False):
                    raise
                raise stack._auth_error(resp, code, stack._error_message(e)) from None
            except KeyError as e:   # moto indexes headers it expects (Authorization, X-Amz-Date)
                rec.error = "IncompleteSignature"
                raise stack._auth_error(resp, "IncompleteSignature", f"missing {e}") from None
            finally:
                stack.auth_log.append(rec)

        self._patch(ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", wrapped)

    @staticmethod
    def _rotation_token_of(body: Any) -> str | None:
        """The RotationToken member of a JSON 1.1 request body (None when absent or unreadable)."""
        try:
            request = json.loads(body or "{}")
        except (TypeError, ValueError):
            return None
        token = request.get("RotationToken") if isinstance(request, dict) else None
        return token if isinstance(token, str) else None

    @staticmethod
    def _error_code(e: Any) -> str:
        code = getattr(e, "_local_code", None)
        if code:
            return code
        m = re.search(r"<Code>([^<]+)</Code>", str(getattr(e, "description", "")))
        return m.group(1) if m else type(e).__name__

    @staticmethod
    def _error_message(e: Any) -> str:
        m = re.search(r"<Message>([^<]*)</Message>", str(getattr(e, "description", "")))
        return m.group(1) if m else str(getattr(e, "description", ""))

    def _auth_error(self, resp: Any, code: str, message: str) -> Any:
        """An authentication/authorization error shaped as the real service answers it."""
        from xml.sax.saxutils import escape
        json_protocol = bool(resp.headers.get("X-Amz-Target"))
        if json_protocol:
            json_code = {"SignatureDoesNotMatch": "InvalidSignatureException",
                         "InvalidClientTokenId": "UnrecognizedClientException",
                         "AccessDenied": "AccessDeniedException",
                         "MissingAuthenticationToken": "MissingAuthenticationTokenException",
                         "IncompleteSignature": "IncompleteSignatureException",
                         "SignatureExpired": "InvalidSignatureException"}.get(code, code)
            e = http_exception(400, json.dumps({"__type": json_code, "message": message}),
                                "application/x-amz-json-1.1")
        else:
            service = getattr(resp, "service_name", "")
            xml_code = "AuthorizationError" if (code == "AccessDenied" and service == "sns") else code
            ns = {"sns": "http://sns.amazonaws.com/doc/2010-03-31/"}.get(service, "")
            body = (f'<ErrorResponse{" xmlns=" + chr(34) + ns + chr(34) if ns else ""}><Error><Type>Sender</Type>'
                    f"<Code>{escape(xml_code)}</Code><Message>{escape(message)}</Message></Error>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
            e = http_exception(403, body, "text/xml")
        e._local_converted = True
        e._local_code = code
        return e

    def function_requests(self) -> list[AuthRecord]:
        return [r for r in self.auth_log if r.principal == "function"]

    def function_log_under_template_policy(self) -> str:
        """The function's log less what it wrote while a test withheld parts of its policy."""
        data = self.log_path.read_bytes() if self.log_path else b""
        kept, at = [], 0
        for start, end in self._reduced_policy_log_spans:
            kept.append(data[at:start])
            at = end
        kept.append(data[at:])
        return b"".join(kept).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ the function's policy
    @property
    def function_policy_name(self) -> str:
        withheld = sorted(self.withheld_statements) + sorted(self.withheld_actions)
        return f"{TEMPLATE_POLICY} without {', '.join(withheld)}" if withheld else TEMPLATE_POLICY

    def function_policy(self) -> list[dict[str, Any]]:
        """The template's statements for the function's role as in force now: intrinsics resolved to
        this stack's ARNs, less any withheld statement or action."""
        from local.cfn import resolve
        from local.iam_policy import check_statement
        refs = self._template_refs(self._template)
        conditions = self._template.get("Conditions") or {}
        policy = []
        for i, raw in enumerate(self.function_statements):
            st = resolve(raw, refs, where=f"{FUNCTION_LOGICAL_NAME} role statement {i}", conditions=conditions)
            if st is None or st.get("Sid") in self.withheld_statements:   # None: !If chose AWS::NoValue
                continue
            check_statement(st)
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            kept = [a for a in actions if a not in self.withheld_actions]
            if kept:
                policy.append(dict(st, Action=kept))
        return policy

    @contextlib.contextmanager
    def function_policy_without(self, *sids: str, actions: Iterable[str] = ()):
        """Inside, the function's requests are evaluated without the template's statements `sids` and
        without `actions` wherever granted (moto's action check stays as it is). Its records carry
        the reduced policy's name, and what it logs meanwhile is left out of
        function_log_under_template_policy()."""
        actions = set(actions)
        policy = self.function_policy()
        unknown = (set(sids) - {st.get("Sid") for st in policy}) | (actions - {a for st in policy for a in st["Action"]})
        if unknown:
            raise KeyError(f"the function's policy has no statement or action {sorted(unknown)}")
        self.withheld_statements.update(sids)
        self.withheld_actions.update(actions)
        start = self.log_path.stat().st_size
        try:
            yield
        finally:
            self.withheld_statements.difference_update(sids)
            self.withheld_actions.difference_update(actions)
            self._reduced_policy_log_spans.append((start, self.log_path.stat().st_size))

    def _function_request_resources(self, service: str, action: str, resp: Any) -> list[Any] | None:
        """The resources IAM evaluates a request of the function against (None: left to moto)."""
        from local.iam_policy import Resource
        param = resp._get_param
        if service == "secretsmanager" and action != "GetRandomPassword":
            # A SecretId that names no secret is left to moto (ResourceNotFoundException): AWS
            # would deny it (AccessDenied), but the bad-input tests hand the function unknown
            # secrets on purpose and expect a refusal, not a denial.
            secret = self._secret_named(param("SecretId"))
            if secret is None:
                return None
            # What IAM knows of a secret for its conditions: its tags (the shared layout's policy
            # allows only secrets tagged for its fleet).
            tags = {str(tag["Key"]): str(tag["Value"]) for tag in getattr(secret, "tags", None) or []}
            context = {f"{prefix}{key}": value for key, value in tags.items()
                       for prefix in ("secretsmanager:ResourceTag/", "aws:ResourceTag/")}
            return [Resource(secret.arn, context)]
        if service == "ssm" and action in ("SendCommand", "GetDocument"):
            document = str(param("DocumentName" if action == "SendCommand" else "Name") or "")
            if not document.startswith("arn:"):
                document = f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/{document}"
            resources = [Resource(document)]
            for iid in param("InstanceIds") or []:
                arn = (f"arn:aws:ssm:{REGION}:{ACCOUNT}:managed-instance/{iid}" if str(iid).startswith("mi-")
                       else f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{iid}")
                tags = self.instance_tags.get(str(iid), {})
                resources.append(Resource(arn, {f"ssm:resourceTag/{k}": v for k, v in tags.items()}))
            return resources
        if service == "sns" and action == "Publish":
            return [Resource(str(param("TopicArn") or param("TargetArn") or ""))]
        # GetRandomPassword and the command-following calls have no resource-level permissions.
        return [Resource("*")]

    @staticmethod
    def _secret_named(secret_id: Any) -> Any:
        try:
            from moto.secretsmanager.models import secretsmanager_backends
            return secretsmanager_backends[ACCOUNT][REGION].secrets.get(secret_id)
        except Exception:
            return None

    @staticmethod
    def _secret_key_of(secret: Any) -> str:
        """The ARN of the KMS key a secret is encrypted with, as KMS names it in a request: the key
        its KmsKeyId names (an ID, an ARN, or an alias resolved now), else aws/secretsmanager's."""
        key = str(getattr(secret, "kms_key_id", None) or "alias/aws/secretsmanager")
        if key.startswith("alias/") or ":alias/" in key:
            alias = key.split(":", 5)[-1]
            if alias == "alias/aws/secretsmanager":
                return AWS_MANAGED_SECRETS_KEY
            from moto.kms.models import kms_backends
            key = kms_backends[ACCOUNT][REGION].get_key_id_from_alias(alias) or key
        return key if key.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"

    def _deny_key_use(self, resp: Any, service: str, action: str, rec: AuthRecord) -> None:
        """Secrets Manager decrypts (GetSecretValue) and encrypts (PutSecretValue) a secret's value
        with its KMS key as the caller. The key's own policy allows that (not modelled here), but an
        explicit deny in the caller's policy overrides it, and Secrets Manager answers the denial."""
        from local.iam_policy import Resource, explicit_deny
        kms_action = {"GetSecretValue": "kms:Decrypt", "PutSecretValue": "kms:GenerateDataKey"}.get(action)
        secret = self._secret_named(resp._get_param("SecretId")) if service == "secretsmanager" else None
        if kms_action is None or secret is None:
            return
        key = Resource(self._secret_key_of(secret), {
            "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT,
            "kms:EncryptionContext:SecretARN": secret.arn})
        deny = explicit_deny(self.function_policy(), kms_action, key)
        if deny is not None:
            rec.denied_resource = key.arn
            raise self._auth_error(resp, "AccessDenied", "Access to KMS is not allowed")

    def _authorize_function_request(self, resp: Any, service: str, action: str, rec: AuthRecord) -> None:
        from local.iam_policy import evaluate
        resources = self._function_request_resources(service, action, resp)
        if resources is None:
            return
        rec.resources = [r.arn for r in resources]
        decision = evaluate(self.function_policy(), f"{service}:{action}", resources)
        if decision.allowed:
            self._deny_key_use(resp, service, action, rec)
            return
        rec.denied_resource = decision.resource
        why = (f"with an explicit deny in an identity-based policy ({decision.explicit_deny})"
               if decision.explicit_deny is not None
               else f"because no identity-based policy allows the {service}:{action} action")
        raise self._auth_error(resp, "AccessDenied",
                               f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rotator-function/{FUNCTION_NAME} "
                               f"is not authorized to perform: {service}:{action} on resource: "
                               f"{decision.resource} {why}")
