"""AWS Signature Version 4 for Bedrock requests, computed lean on the hot path.

The algorithm is botocore's ``SigV4Auth`` (the unit tests check that both give the
same ``Authorization`` for the same request and instant, and the mock upstream
verifies every request with botocore). It is written out here because botocore's
``add_auth`` spends about 100 µs per request building ``AWSRequest``/``HTTPHeaders``
objects; this version precomputes what is fixed per deployment URL (host, canonical
URI, the static headers' canonical lines) and caches the signing key per day, so a
request costs one SHA-256 of the body, one of the canonical request and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote

from botocore.credentials import ReadOnlyCredentials
from botocore.utils import normalize_url_path

SERVICE = "bedrock"
ALGORITHM = "AWS4-HMAC-SHA256"
# Headers botocore never signs (proxies and clients may change them).
_UNSIGNED = frozenset({"expect", "user-agent", "x-amzn-trace-id", "content-length", "host"})


def canonical_uri(path: str) -> str:
    """The path as SigV4 signs it: normalised, then URI-encoded again (so ``%3A`` → ``%253A``)."""
    return quote(normalize_url_path(path), safe="/~")


class SigV4Signer:
    """Signs POSTs to one URL (host + path) with fixed extra headers, for one region."""

    __slots__ = ("_canonical_uri", "_host", "_key", "_region", "_scope_tail", "_static")

    def __init__(
        self, region: str, host: str, path: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._region = region
        self._host = host
        self._canonical_uri = canonical_uri(path)
        self._scope_tail = f"/{region}/{SERVICE}/aws4_request"
        static = {"host": host}
        for name, value in (headers or {}).items():
            lowered = name.lower()
            if lowered not in _UNSIGNED:
                static[lowered] = " ".join(value.split())
        self._static = static
        # The derived key for (secret, day): four HMACs saved on every other request.
        self._key: tuple[str, str, bytes] = ("", "", b"")

    def sign(
        self, credentials: ReadOnlyCredentials, payload: bytes, now: float | None = None
    ) -> dict[str, str]:
        """The headers to add: ``X-Amz-Date``, ``Authorization`` and the session token."""
        amz_date = _amz_date(time.time() if now is None else now)
        day = amz_date[:8]
        lines = dict(self._static)
        lines["x-amz-date"] = amz_date
        token = credentials.token
        if token:
            lines["x-amz-security-token"] = token
        names = sorted(lines)
        signed_headers = ";".join(names)
        canonical_request = "\n".join(
            (
                "POST",
                self._canonical_uri,
                "",
                "".join(f"{name}:{lines[name]}\n" for name in names),
                signed_headers,
                hashlib.sha256(payload).hexdigest(),
            )
        )
        scope = day + self._scope_tail
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        secret = credentials.secret_key or ""
        cached_secret, cached_day, key = self._key
        if cached_secret != secret or cached_day != day:
            key = signing_key(secret, day, self._region)
            self._key = (secret, day, key)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        out = {
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
                f"SignedHeaders={signed_headers}, Signature={signature}"
            ),
        }
        if token:
            out["X-Amz-Security-Token"] = token
        return out


def _amz_date(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def signing_key(secret: str, day: str, region: str) -> bytes:
    k_date = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    k_region = hmac.new(k_date, region.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_region, SERVICE.encode(), hashlib.sha256).digest()
    return hmac.new(k_service, b"aws4_request", hashlib.sha256).digest()
