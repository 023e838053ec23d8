"""The one place errors become OpenAI-shaped HTTP bodies."""

from __future__ import annotations

import orjson

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


def openai_stream_error_event(error: BastionError) -> bytes:
    """An error that happens after a stream began: one SSE event, as OpenAI sends it."""
    return b"data: " + openai_error_body(error) + b"\n\n"
