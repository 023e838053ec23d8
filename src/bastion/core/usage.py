"""Token usage in one shape, whatever the provider calls the parts.

``input_tokens`` counts input billed at the base rate: it excludes cache reads
(``cached_input_tokens``) and cache writes (``cache_creation_input_tokens``), as
Anthropic reports it; OpenAI's ``prompt_tokens`` is the sum of the three.
``output_tokens`` includes ``reasoning_tokens`` and ``audio_output_tokens``, which
break it down further, as OpenAI's ``completion_tokens`` does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens + self.cache_creation_input_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens
