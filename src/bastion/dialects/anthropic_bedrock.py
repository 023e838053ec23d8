"""Anthropic Messages bodies on Bedrock's InvokeModel: the same body, re-enveloped. Pure.

Bedrock names the model in the URL and the stream in the operation, so ``model`` and
``stream`` leave the body; ``anthropic_version`` becomes ``bedrock-2023-05-31`` and
the client's ``anthropic-beta`` header values travel as the body's ``anthropic_beta``
list, those Bedrock knows only (``BEDROCK_BETAS``): Bedrock answers an unknown beta
flag with a 400, and clients such as Claude Code send flags only Anthropic's own API
knows (``claude-code-20250219``, ``oauth-…``). Betas the client puts in the body's
``anthropic_beta`` itself are kept as they are. Bedrock rejects top-level fields it
does not know ("extraneous key"), so a field outside ``INVOKE_FIELDS`` is a 400
naming it, or dropped with ``drop_params`` (``service_tier``, a routing hint for
Anthropic's own API, is dropped always).
The answer is Anthropic's JSON unchanged. A streamed answer arrives as
event-stream ``chunk`` events whose ``bytes`` hold one Anthropic event's JSON in
base64: each is re-emitted as that event's SSE (``event: <type>``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.openai_params import GATEWAY_FIELDS

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Request fields that steer a gateway or name the model: never part of Bedrock's body.
_REMOVED = frozenset({"model", "stream", "service_tier"}) | GATEWAY_FIELDS
# The beta flags Bedrock's Claude models accept (AWS's Claude Messages documentation).
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "computer-use-2025-11-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
        "fine-grained-tool-streaming-2025-05-14",
    }
)
# The top-level fields Bedrock's Claude Messages body takes (AWS's documentation,
# and the allowlist LiteLLM keeps for Claude Code's requests).
INVOKE_FIELDS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "context_management",
    }
)


def invoke_body(
    body: dict[str, Any],
    client_headers: dict[str, str],
    *,
    defaults: dict[str, Any] | None = None,
    also_drop: frozenset[str] = frozenset(),
    drop_params: bool = False,
    label: str = "Bedrock",
) -> dict[str, Any]:
    """The InvokeModel body for an Anthropic Messages body (``label`` names the target)."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in _REMOVED or name in also_drop:
            continue
        if name not in INVOKE_FIELDS:
            if drop_params:
                continue
            raise InvalidRequestError(
                f"'{name}' is not supported by {label}; remove it, or set drop_params: true "
                "to drop it",
                param=name,
            )
        out[name] = value
    for name, value in (defaults or {}).items():
        if name in ("temperature", "top_p", "top_k") and name not in out:
            out[name] = value
    out["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
    betas = list(out.get("anthropic_beta") or [])
    header = client_headers.get("anthropic-beta", "")
    for beta in header.split(","):
        beta = beta.strip()
        if beta in BEDROCK_BETAS and beta not in betas:
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
