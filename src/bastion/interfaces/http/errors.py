"""The one place errors become OpenAI-shaped HTTP bodies."""

from __future__ import annotations

import orjson

from bastion.core.dialect import Dialect
from bastion.core.errors import BastionError


def openai_error_body(error: BastionError) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.type,
                "param": error.param,
                "code": error.code if error.code is not None else str(error.status),
            }
        }
    )


def error_body(error: BastionError, dialect: Dialect) -> bytes:
    if dialect is Dialect.ANTHROPIC:
        return anthropic_error_body(error)
    return openai_error_body(error)


def stream_error_event(error: BastionError, dialect: Dialect) -> bytes:
    if dialect is Dialect.ANTHROPIC:
        return anthropic_stream_error_event(error)
    return openai_stream_error_event(error)


def openai_stream_error_event(error: BastionError) -> bytes:
    """An error that happens after a stream began: one SSE event, as OpenAI sends it."""
    return b"data: " + openai_error_body(error) + b"\n\n"


# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    if status == 503:
        return "overloaded_error"
    return "api_error" if status >= 500 or status == 408 else "invalid_request_error"


def anthropic_error_body(error: BastionError) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": anthropic_error_type(error.status), "message": error.message},
        }
    )


def anthropic_stream_error_event(error: BastionError) -> bytes:
    return b"event: error\ndata: " + anthropic_error_body(error) + b"\n\n"
