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

# Fields some OpenAI-compatible servers take beyond OpenAI's own (vLLM, Ollama, Together,
# OpenRouter, Mistral, Perplexity, xAI…): accepted as litellm_params defaults.
PROVIDER_EXTRA_PARAMS = frozenset(
    {
        "top_k",
        "min_p",
        "top_a",
        "typical_p",
        "repetition_penalty",
        "length_penalty",
        "input_type",
        "truncate",
        "embedding_types",
        "safe_prompt",
        "random_seed",
        "reasoning",
        "thinking",
        "chat_template_kwargs",
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
        "skip_special_tokens",
        "include_stop_str_in_output",
        "keep_alive",
        "options",
        "num_ctx",
        "format",
        "search_parameters",
        "return_citations",
        "return_images",
        "search_domain_filter",
        "search_recency_filter",
        "transforms",
        "route",
        "provider",
        "models",
        "documents",
        "citation_options",
        "enable_thinking",
    }
)

KNOWN_PARAMS: dict[Operation, frozenset[str]] = {
    Operation.CHAT: CHAT_PARAMS,
    Operation.COMPLETION: COMPLETION_PARAMS,
    Operation.EMBEDDING: EMBEDDING_PARAMS,
}

REQUEST_PARAMS = CHAT_PARAMS | COMPLETION_PARAMS | EMBEDDING_PARAMS | PROVIDER_EXTRA_PARAMS

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
    also_drop: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The body to send upstream: model replaced, gateway fields removed, defaults added.

    ``metadata`` goes upstream only with ``store: true`` (OpenAI's stored completions);
    otherwise it is the gateway's, as in LiteLLM. With ``drop_params`` every field the
    operation does not define, and every field the vendor lacks, is dropped; fields in
    ``also_drop`` (a request's ``additional_drop_params``) are dropped in any case.
    """
    out: dict[str, Any] = {}
    # Operations without a list here (images, audio, moderations, responses) are passed
    # through as they are: drop_params only knows the chat-style operations' fields.
    known = KNOWN_PARAMS.get(operation)
    if known is None:
        drop_params = False
        known = frozenset()
    for name, value in body.items():
        if name in GATEWAY_FIELDS or name in also_drop:
            continue
        if name == "metadata" and body.get("store") is not True:
            continue
        if drop_params and (name not in known or name in unsupported):
            continue
        out[name] = value
    for name, value in defaults.items():
        if name not in out and name not in also_drop and not (drop_params and name not in known):
            out[name] = value
    out["model"] = upstream_model
    return out
