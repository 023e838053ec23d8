"""The cache key of a request: the canonical request, hashed. Pure functions.

The canonical request is the operation, the client's dialect, the model group
(after the key's aliases and the router's ``model_group_alias``), whether the
answer is streamed, and every body field that can change the answer. Fields that
only steer the gateway or identify the caller (``user``, ``metadata``, ``cache``,
``timeout``, ``fallbacks``...) are left out, so two callers asking the same thing
share an entry. Object keys are sorted, so their order never matters; values are
compared exactly (``1`` and ``1.0`` are different requests).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from bastion.core.deployment import Operation
from bastion.core.dialect import Dialect

# Bumped when the canonical form or the stored entry changes: old entries are not read.
KEY_VERSION = "b1"
DEFAULT_NAMESPACE = "bastion:cache"

# Fields that do not change the answer (LiteLLM's gateway fields, caller identity,
# provider-side hints), left out of the key.
IGNORED_FIELDS = frozenset(
    {
        "cache",
        "caching",
        "metadata",
        "litellm_metadata",
        "tags",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "num_retries",
        "max_retries",
        "fallbacks",
        "disable_fallbacks",
        "context_window_fallback_dict",
        "mock_timeout",
        "litellm_call_id",
        "litellm_trace_id",
        "litellm_session_id",
        "proxy_server_request",
        "user_api_key",
        "secret_fields",
        "priority",
        "guardrails",
    }
)


def canonical_request(
    operation: Operation,
    dialect: Dialect,
    model_group: str,
    body: dict[str, Any],
    stream: bool,
    usage_added: bool = False,
) -> bytes:
    """The bytes that identify a request's answer (sorted-key JSON).

    ``usage_added``: the gateway asked for the stream's usage chunk on the client's
    behalf and removes it before the client sees it, so that stream differs from one
    whose client asked for the usage chunk itself (same body by now)."""
    material = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    material["model"] = model_group
    material["stream"] = stream
    if not stream:
        material.pop("stream_options", None)
    parts: list[Any] = [KEY_VERSION, operation.value, dialect.value, material]
    if usage_added:
        parts.append("usage-added")
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)


def cache_key(
    operation: Operation,
    dialect: Dialect,
    model_group: str,
    body: dict[str, Any],
    stream: bool,
    namespace: str | None = None,
    *,
    usage_added: bool = False,
) -> str:
    """``<namespace>:<sha256 of the canonical request>``."""
    digest = hashlib.sha256(
        canonical_request(operation, dialect, model_group, body, stream, usage_added)
    ).hexdigest()
    return f"{namespace or DEFAULT_NAMESPACE}:{digest}"
