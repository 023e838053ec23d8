"""Carrying a call between a client dialect and OpenAI's, which every provider speaks.

A provider that speaks the client's dialect natively gets the body untouched
(``Provider.dialects``). Otherwise the gateway translates the request into
OpenAI's dialect through the bridge registered for the client's dialect, calls the
provider, and translates the answer (or the stream) back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class DialectBridge(Protocol):
    def request_to_openai(
        self, body: dict[str, Any], *, drop_unsupported: bool = False, target: str = ""
    ) -> dict[str, Any]:
        """An OpenAI chat-completions body; raises InvalidRequestError for what it cannot say.

        With ``drop_unsupported`` (the call's or deployment's ``drop_params``) what it
        cannot say is left out instead; ``target`` names the deployment in errors.
        """

    def response_from_openai(self, body: bytes, request: dict[str, Any]) -> bytes:
        """A complete OpenAI chat completion, rewritten into the client's dialect."""

    def stream_from_openai(
        self, chunks: AsyncIterator[bytes], request: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """OpenAI SSE bytes in (arbitrarily split), the client dialect's SSE bytes out."""
