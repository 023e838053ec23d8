"""Bedrock's errors, mapped at the boundary: HTTP error answers and mid-stream exceptions.

An HTTP error carries its type in the ``x-amzn-ErrorType`` header
(``ThrottlingException:http://internal.amazon.com/...``) and ``{"message": ...}`` in
the body; a stream carries an ``exception`` message whose ``:exception-type`` header
names it in lowerCamelCase (``throttlingException``). Both become UpstreamStatusError
with a status that drives retries: throttling 429, a model not ready or the service
unavailable 503, a model timeout 408, a rejected request 400, denied access 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from bastion.core.errors import UpstreamError, UpstreamStatusError
from bastion.providers.http import parse_retry_after

# AWS error type → (HTTP status for the client, OpenAI-style error type).
_ERRORS: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "TooManyRequestsException": (429, "rate_limit_error"),
    "ValidationException": (400, "invalid_request_error"),
    "SerializationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_error"),
    "UnrecognizedClientException": (403, "authentication_error"),
    "InvalidSignatureException": (403, "authentication_error"),
    "IncompleteSignatureException": (403, "authentication_error"),
    "MissingAuthenticationTokenException": (403, "authentication_error"),
    "ExpiredTokenException": (403, "authentication_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ModelNotReadyException": (503, "api_error"),
    "ServiceUnavailableException": (503, "api_error"),
    "ServiceUnavailable": (503, "api_error"),
    "ModelTimeoutException": (408, "timeout"),
    "InternalServerException": (500, "api_error"),
    "InternalFailure": (500, "api_error"),
    "ModelErrorException": (424, "api_error"),
    "ModelStreamErrorException": (424, "api_error"),
}


def error_type_name(raw: str) -> str:
    """``throttlingException`` or ``ThrottlingException:http://…`` → ``ThrottlingException``."""
    name = raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:]


def bedrock_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    provider: str,
    secrets: tuple[str | None, ...] = (),
) -> UpstreamError:
    """An HTTP error answer from Bedrock (the ``errors`` hook of ``post_json``/``open_sse``)."""
    data = _json(body)
    raw_type = headers.get("x-amzn-errortype") or str(data.get("__type") or "")
    name = error_type_name(raw_type) if raw_type else ""
    message = str(data.get("message") or data.get("Message") or "")
    if not message and not data:
        message = body[:300].decode("utf-8", "replace").strip()
    mapped = _ERRORS.get(name)
    return _error(
        name,
        message,
        provider,
        secrets,
        status=mapped[0] if mapped else status,
        error_type=mapped[1] if mapped else _type_for(status),
        retry_after=parse_retry_after(headers),
    )


def stream_exception(
    exception_type: str, payload: bytes, provider: str, secrets: tuple[str | None, ...] = ()
) -> UpstreamStatusError:
    """An ``exception`` message in the middle of a stream."""
    data = _json(payload)
    name = error_type_name(exception_type)
    message = str(data.get("message") or data.get("Message") or "")
    status, error_type = _ERRORS.get(name, (500, "api_error"))
    return _error(name, message, provider, secrets, status=status, error_type=error_type)


def stream_error(error_code: str, error_message: str, provider: str) -> UpstreamStatusError:
    """An ``error`` message (``:error-code`` / ``:error-message`` headers) mid-stream."""
    status, error_type = _ERRORS.get(error_type_name(error_code), (500, "api_error"))
    return _error(error_code, error_message, provider, (), status=status, error_type=error_type)


def _error(
    name: str,
    message: str,
    provider: str,
    secrets: tuple[str | None, ...],
    *,
    status: int,
    error_type: str,
    retry_after: float | None = None,
) -> UpstreamStatusError:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    text = message or f"upstream answered HTTP {status}"
    if name:
        text = f"{name}: {text}"
    return UpstreamStatusError(
        f"{provider} error: {text}",
        status=status,
        provider=provider,
        error_type=error_type,
        code=name or None,
        retry_after=retry_after,
    )


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _type_for(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status in (401, 403):
        return "authentication_error" if status == 401 else "permission_error"
    if status == 404:
        return "not_found_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"
