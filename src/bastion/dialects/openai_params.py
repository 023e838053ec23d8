"""Shaping an OpenAI-dialect request body for one deployment. Pure functions."""

from __future__ import annotations

from typing import Any

from bastion.core.deployment import Operation

CHAT_PARAMS = frozenset(
    {
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
COMPLETION_PARAMS = frozenset(
    {
        "model",
        "prompt",
        "best_of",
        "echo",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "n",
        "presence_penalty",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "suffix",
        "temperature",
        "top_p",
        "user",
    }
)
EMBEDDING_PARAMS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})

KNOWN_PARAMS: dict[Operation, frozenset[str]] = {
    Operation.CHAT: CHAT_PARAMS,
    Operation.COMPLETION: COMPLETION_PARAMS,
    Operation.EMBEDDING: EMBEDDING_PARAMS,
}

# Request fields that steer the gateway (LiteLLM's names) and never go upstream.
GATEWAY_FIELDS = frozenset(
    {
        "mock_response",
        "mock_testing_fallbacks",
        "mock_timeout",
        "fallbacks",
        "num_retries",
        "context_window_fallback_dict",
        "caching",
        "cache",
        "tags",
        "litellm_metadata",
        "guardrails",
        "litellm_call_id",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "timeout",
        "request_timeout",
        "max_retries",
        "drop_params",
        "additional_drop_params",
        "user_api_key",
        "proxy_server_request",
        "secret_fields",
        "litellm_trace_id",
        "litellm_session_id",
        "disable_fallbacks",
        "priority",
    }
)


def upstream_body(
    body: dict[str, Any],
    operation: Operation,
    upstream_model: str,
    *,
    defaults: dict[str, Any],
    drop_params: bool,
    unsupported: frozenset[str],
) -> dict[str, Any]:
    """The body to send upstream: model replaced, gateway fields removed, defaults added.

    ``metadata`` goes upstream only with ``store: true`` (OpenAI's stored completions);
    otherwise it is the gateway's, as in LiteLLM. With ``drop_params`` every field the
    operation does not define, and every field the vendor lacks, is dropped.
    """
    out: dict[str, Any] = {}
    known = KNOWN_PARAMS[operation]
    for name, value in body.items():
        if name in GATEWAY_FIELDS:
            continue
        if name == "metadata" and body.get("store") is not True:
            continue
        if drop_params and (name not in known or name in unsupported):
            continue
        out[name] = value
    for name, value in defaults.items():
        if name not in out and not (drop_params and name not in known):
            out[name] = value
    out["model"] = upstream_model
    return out
