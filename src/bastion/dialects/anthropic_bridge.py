"""The bridge that lets Anthropic-dialect clients (/v1/messages) use OpenAI-style deployments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bastion.dialects.anthropic_to_openai import anthropic_to_openai_request
from bastion.dialects.openai_response_to_anthropic import openai_to_anthropic_response
from bastion.dialects.openai_stream_to_anthropic import anthropic_stream_from_openai


class AnthropicBridge:
    """Anthropic Messages ⇄ OpenAI chat completions (see the three modules it wraps)."""

    def request_to_openai(
        self, body: dict[str, Any], *, drop_unsupported: bool = False, target: str = ""
    ) -> dict[str, Any]:
        return anthropic_to_openai_request(
            body, drop_unsupported=drop_unsupported, target=target or "this deployment"
        )

    def response_from_openai(self, body: bytes, request: dict[str, Any]) -> bytes:
        return openai_to_anthropic_response(body, request)

    def stream_from_openai(
        self, chunks: AsyncIterator[bytes], request: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        return anthropic_stream_from_openai(chunks, request)
