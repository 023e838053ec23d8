"""How many tokens a call reserves against tpm limits before it is made.

A cheap upper-ish estimate, settled with the real usage when the answer ends:
the prompt as the request body's size / 4 (bytes per token for English text and
JSON; no tokenizer on the hot path), plus the output the request allows
(``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens``), or
:data:`DEFAULT_OUTPUT_RESERVE` when it sets none.
"""

from __future__ import annotations

from typing import Any

from bastion.core.deployment import Operation

BYTES_PER_TOKEN = 4
DEFAULT_OUTPUT_RESERVE = 256
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_NO_OUTPUT = frozenset({Operation.EMBEDDING, Operation.MODERATION, Operation.RERANK})


def estimate_tokens(body: dict[str, Any], body_bytes: int, operation: Operation) -> int:
    prompt = body_bytes // BYTES_PER_TOKEN
    if operation in _NO_OUTPUT:
        return max(prompt, 1)
    for name in _OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return prompt + value
    return prompt + DEFAULT_OUTPUT_RESERVE
