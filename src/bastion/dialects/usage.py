"""Reading each provider's usage object into the one Usage shape."""

from __future__ import annotations

from typing import Any

from bastion.core.usage import Usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_openai(raw: Any) -> Usage:
    """OpenAI chat/completions/embeddings ``usage`` (also Responses API names)."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = _int(raw.get("prompt_tokens", raw.get("input_tokens")))
    output = _int(raw.get("completion_tokens", raw.get("output_tokens")))
    prompt_details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details") or {}
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    # Some OpenAI-compatible servers (DeepSeek, Anthropic's compat layer) report these flat.
    cached = (
        cached
        or _int(raw.get("prompt_cache_hit_tokens"))
        or _int(raw.get("cache_read_input_tokens"))
    )
    creation = _int(raw.get("cache_creation_input_tokens"))
    details_out = output_details if isinstance(output_details, dict) else {}
    details_in = prompt_details if isinstance(prompt_details, dict) else {}
    return Usage(
        input_tokens=max(prompt - cached - creation, 0),
        output_tokens=output,
        cached_input_tokens=cached,
        cache_creation_input_tokens=creation,
        reasoning_tokens=_int(details_out.get("reasoning_tokens")),
        audio_input_tokens=_int(details_in.get("audio_tokens")),
        audio_output_tokens=_int(details_out.get("audio_tokens")),
    )


def usage_from_anthropic(raw: Any) -> Usage:
    """Anthropic Messages ``usage`` (a message_start or message_delta event's too)."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cached_input_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(raw.get("cache_creation_input_tokens")),
    )


def openai_usage_dict(usage: Usage) -> dict[str, Any]:
    """The OpenAI ``usage`` object for a Usage (for answers translated into OpenAI's dialect)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "audio_tokens": usage.audio_input_tokens,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": usage.audio_output_tokens,
        },
    }


def anthropic_usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
    }
