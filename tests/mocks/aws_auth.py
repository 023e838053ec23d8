"""What an AWS service checks before it answers, for mock upstreams: SigV4 and a bit of STS.

``AwsIdentities`` holds the access keys a mock accepts (secret, and the session token
temporary credentials must carry) and verifies a request's ``Authorization`` header
the way AWS does: the scope (date, region, service) must fit, ``host`` and
``x-amz-date`` must be signed, the date within five minutes, and the signature,
recomputed with botocore's ``SigV4Auth`` for the key's known secret, must match.

``sts_answer`` answers STS ``AssumeRole`` (itself SigV4-signed, service ``sts``) and
``AssumeRoleWithWebIdentity`` (unsigned, a known token) with new temporary
credentials, which it registers so the mock then accepts them.
"""

from __future__ import annotations

import datetime
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$"
)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True)
class Denied:
    """Why a request is refused: AWS's error type and message (always HTTP 403)."""

    error_type: str
    message: str


@dataclass(frozen=True)
class Verdict:
    access_key: str | None = None
    region: str | None = None  # the region the signature is scoped to
    denied: Denied | None = None


@dataclass(frozen=True)
class _Identity:
    secret: str
    token: str | None = None


class AwsIdentities:
    """Access keys a mock accepts; thread-safe."""

    def __init__(self, credentials: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._known = {key: _Identity(secret) for key, secret in (credentials or {}).items()}

    def add(self, access_key: str, secret: str, token: str | None = None) -> None:
        with self._lock:
            self._known[access_key] = _Identity(secret, token)

    def verify(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        service: str,
        region: str | None,
    ) -> Verdict:
        """``headers`` with lower-case names; ``region`` None accepts any scope region."""
        match = _AUTH.match(headers.get("authorization", ""))
        if match is None:
            return Verdict(
                denied=Denied("MissingAuthenticationTokenException", "Missing Authentication Token")
            )
        access_key, day, scope_region, scope_service, signed, signature = match.groups()
        with self._lock:
            identity = self._known.get(access_key)
        # Long-term keys carry no session token; temporary ones must carry theirs.
        if identity is None or headers.get("x-amz-security-token") != identity.token:
            return Verdict(
                access_key, scope_region, Denied("UnrecognizedClientException", INVALID_TOKEN)
            )
        denied = _check_scope(headers, day, scope_region, scope_service, signed, service, region)
        if denied is None:
            names = signed.split(";")
            request = AWSRequest(
                method=method,
                url=f"http://{headers.get('host', '')}{path}",
                data=body,
                headers={n: headers[n] for n in names if n != "host" and n in headers},
            )
            request.context["timestamp"] = headers["x-amz-date"]
            signer = SigV4Auth(
                Credentials(access_key, identity.secret, identity.token), service, scope_region
            )
            canonical = signer.canonical_request(request)
            expected = signer.signature(signer.string_to_sign(request, canonical), request)
            if not hmac.compare_digest(expected, signature):
                denied = Denied("InvalidSignatureException", SIGNATURE_MISMATCH)
        return Verdict(access_key, scope_region, denied)


def _check_scope(
    headers: Mapping[str, str],
    day: str,
    scope_region: str,
    scope_service: str,
    signed: str,
    service: str,
    region: str | None,
) -> Denied | None:
    amz_date = headers.get("x-amz-date", "")
    if (region is not None and scope_region != region) or scope_service != service:
        return Denied(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region and service ('{region}', '{service}').",
        )
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names or not amz_date.startswith(day):
        return Denied("IncompleteSignatureException", "host and x-amz-date must be signed")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return Denied("IncompleteSignatureException", "X-Amz-Date is not a valid timestamp")
    if abs(time.time() - when.replace(tzinfo=datetime.UTC).timestamp()) > 300:
        return Denied("InvalidSignatureException", "Signature expired")
    return None


@dataclass(frozen=True)
class StsAnswer:
    status: int
    xml: bytes
    assumed: dict[str, str] | None = None  # action, role and session of a success


def sts_answer(
    identities: AwsIdentities,
    web_identity_tokens: set[str],
    path: str,
    headers: Mapping[str, str],
    body: bytes,
) -> StsAnswer:
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    action = form.get("Action", "")
    if action == "AssumeRoleWithWebIdentity":
        if form.get("WebIdentityToken") not in web_identity_tokens:
            return _sts_error(400, "InvalidIdentityToken", "The web identity token is not valid.")
    elif action == "AssumeRole":
        verdict = identities.verify("POST", path, headers, body, service="sts", region=None)
        if verdict.denied is not None:
            return _sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRole")
    else:
        return _sts_error(400, "InvalidAction", f"Could not find operation {action}")
    access_key = "ASIA" + secrets.token_hex(8).upper()
    secret = secrets.token_urlsafe(30)
    token = "FQoGZXIvYXdzE" + secrets.token_urlsafe(60)
    identities.add(access_key, secret, token)
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    role, session = form.get("RoleArn", ""), form.get("RoleSessionName", "")
    result = f"{action}Result"
    xml = (
        f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{result}>'
        f"<Credentials><AccessKeyId>{access_key}</AccessKeyId>"
        f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken>"
        f"<Expiration>{expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>AROA:{session}</AssumedRoleId><Arn>{role}</Arn>"
        f"</AssumedRoleUser></{result}><ResponseMetadata><RequestId>{secrets.token_hex(8)}"
        f"</RequestId></ResponseMetadata></{action}Response>"
    )
    return StsAnswer(200, xml.encode(), {"action": action, "role": role, "session": session})


def _sts_error(status: int, code: str, message: str) -> StsAnswer:
    xml = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>mock</RequestId></ErrorResponse>"
    )
    return StsAnswer(status, xml.encode())
