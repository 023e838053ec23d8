"""Client wire dialects: the API shape a request arrives in and its answer leaves in."""

from __future__ import annotations

from enum import StrEnum


class Dialect(StrEnum):
    OPENAI = "openai"  # /v1/chat/completions, /v1/completions, /v1/embeddings
    ANTHROPIC = "anthropic"  # /v1/messages
