"""Anthropic Messages bodies on Bedrock's InvokeModel: the same body, re-enveloped. Pure.

Bedrock names the model in the URL and the stream in the operation, so ``model`` and
``stream`` leave the body; ``anthropic_version`` becomes ``bedrock-2023-05-31`` and
the client's ``anthropic-beta`` header values travel as the body's ``anthropic_beta``
list. The answer is Anthropic's JSON unchanged. A streamed answer arrives as
event-stream ``chunk`` events whose ``bytes`` hold one Anthropic event's JSON in
base64: each is re-emitted as that event's SSE (``event: <type>``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from bastion.dialects.openai_params import GATEWAY_FIELDS

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Request fields that steer a gateway or name the model: never part of Bedrock's body.
_REMOVED = frozenset({"model", "stream"}) | GATEWAY_FIELDS


def invoke_body(
    body: dict[str, Any],
    client_headers: dict[str, str],
    *,
    defaults: dict[str, Any] | None = None,
    also_drop: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The InvokeModel body for an Anthropic Messages body."""
    out = {k: v for k, v in body.items() if k not in _REMOVED and k not in also_drop}
    for name, value in (defaults or {}).items():
        if name in ("temperature", "top_p", "top_k") and name not in out:
            out[name] = value
    out["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
    betas = list(out.get("anthropic_beta") or [])
    header = client_headers.get("anthropic-beta", "")
    for beta in header.split(","):
        beta = beta.strip()
        if beta and beta not in betas:
            betas.append(beta)
    if betas:
        out["anthropic_beta"] = betas
    return out


class ChunkError(ValueError):
    """A ``chunk`` event that does not hold an Anthropic event."""


def chunk_to_sse(payload: bytes) -> bytes:
    """One ``chunk`` event payload (``{"bytes": "<base64>"}``) → one Anthropic SSE event."""
    try:
        wrapper = orjson.loads(payload)
        data = base64.b64decode(wrapper["bytes"], validate=True)
        event = orjson.loads(data)
        event_type = event["type"]
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError) as exc:
        raise ChunkError(f"a stream chunk is not an Anthropic event ({exc})") from None
    if not isinstance(event_type, str) or not event_type.isprintable() or "\n" in event_type:
        raise ChunkError("a stream chunk names no event type")
    if b"\n" in data or b"\r" in data:  # SSE data must be one line
        data = orjson.dumps(event)
    return b"event: " + event_type.encode() + b"\ndata: " + data + b"\n\n"
