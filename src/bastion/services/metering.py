"""After a call: its usage read from the answer, its cost, and its spend queued.

Non-streamed answers are read once here (the cost goes into the response headers).
Streams are watched as they pass (services/metered_stream.py) and charged when they
end. Either way the spend is added to this worker's ledger at once (so budgets see
it on the next request) and queued for the database (services/spend_writer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.usage import Usage
from bastion.dialects.usage import usage_from_anthropic, usage_from_openai
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budgets import Charge
from bastion.policy.ledger import SpendLedger
from bastion.policy.pricing import UNPRICED, PriceBook, cost
from bastion.services.spend_writer import SpendWriter
from bastion.storage.spend import SpendRecord

logger = logging.getLogger("bastion.spend")

_CALL_TYPES = {
    Operation.CHAT: "acompletion",
    Operation.COMPLETION: "atext_completion",
    Operation.EMBEDDING: "aembedding",
    Operation.IMAGE_GENERATION: "aimage_generation",
    Operation.AUDIO_SPEECH: "aspeech",
    Operation.AUDIO_TRANSCRIPTION: "atranscription",
    Operation.MODERATION: "amoderation",
    Operation.RESPONSES: "aresponses",
}


@dataclass(slots=True)
class CallContext:
    """Who made a call and what it is charged to: filled before the call."""

    request_id: str
    principal: Principal
    charges: list[Charge]
    end_user: str | None
    operation: Operation
    dialect: Dialect
    model_group: str
    started: datetime
    tags: Sequence[str] = ()
    # Told the call's usage when it is charged (rate limits settle their token counts).
    on_usage: Callable[[Usage], None] | None = None
    # What the spend-log row keeps of the request (store_prompts_in_spend_logs only).
    messages: Any = None
    # The response cache (bastion.cache): the request's key, and whether it was a hit.
    cache_key: str | None = None
    cache_hit: bool = False


class Meter:
    def __init__(self, prices: PriceBook, ledger: SpendLedger, writer: SpendWriter) -> None:
        self.prices = prices
        self.ledger = ledger
        self.writer = writer
        # Told each call's charges and cost after the ledger (budgets shared on Redis).
        self.on_charged: Callable[[list[Charge], Decimal], None] | None = None

    def usage_of_answer(self, context: CallContext, body: bytes) -> tuple[Usage, int]:
        """Usage and image count of a complete answer (JSON in the client's dialect).

        Only the ``usage`` object is parsed when it can be cut out safely: an answer
        can be megabytes (embeddings, long completions) and its usage is a few dozen
        bytes at the end. Image answers are parsed whole to count their images.
        """
        if context.operation is Operation.IMAGE_GENERATION:
            data = _loads(body)
            images = len(data.get("data") or []) if isinstance(data, dict) else 0
            raw = data.get("usage") if isinstance(data, dict) else None
        else:
            images = 0
            raw = usage_object(body)
        if context.dialect is Dialect.ANTHROPIC:
            return usage_from_anthropic(raw), images
        return usage_from_openai(raw), images

    def charge(
        self,
        context: CallContext,
        deployment: Deployment,
        usage: Usage,
        *,
        images: int = 0,
        status: str = "success",
        response: Any = None,
    ) -> Decimal:
        # A cache hit costs nothing: no upstream call was made.
        amount = (
            Decimal(0)
            if context.cache_hit
            else self.cost_of(context, deployment, usage, images=images)
        )
        self.ledger.add((c.entity for c in context.charges), amount)
        if self.on_charged is not None and amount:
            self.on_charged(context.charges, amount)
        if context.on_usage is not None:
            context.on_usage(usage)
        principal = context.principal
        key = principal.key if principal.kind is PrincipalKind.KEY else None
        self.writer.record(
            SpendRecord(
                request_id=context.request_id,
                spend=amount,
                start_time=context.started,
                end_time=datetime.now(UTC),
                call_type=_CALL_TYPES.get(context.operation, context.operation.value),
                status=status,
                api_key=key.token if key is not None else None,
                user_id=key.user_id if key is not None else None,
                team_id=key.team_id if key is not None else None,
                organization_id=(
                    principal.organization.organization_id if principal.organization else None
                ),
                end_user=context.end_user,
                model=deployment.upstream_model,
                model_id=deployment.id,
                model_group=context.model_group,
                api_base=deployment.api_base,
                custom_llm_provider=deployment.provider_name,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                cached_tokens=usage.cached_input_tokens,
                cache_creation_tokens=usage.cache_creation_input_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                cache_hit=context.cache_hit,
                request_tags=tuple(context.tags),
                messages=context.messages,
                response=response,
                metadata={
                    "user_api_key_alias": key.key_alias if key is not None else None,
                    "user_api_key_team_alias": (
                        principal.team.team_alias if principal.team is not None else None
                    ),
                    **({"cache_key": context.cache_key} if context.cache_key else {}),
                },
            )
        )
        return amount

    def cost_of(
        self, context: CallContext, deployment: Deployment, usage: Usage, *, images: int = 0
    ) -> Decimal:
        price = self.prices.price_for(deployment) or UNPRICED
        return cost(price, usage, operation=context.operation.value, images=images)

    def key_spend(self, context: CallContext) -> Decimal | None:
        for charge in context.charges:
            if charge.entity[0] == "key":
                return charge.spend + self.ledger.pending(charge.entity)
        return None


# Below this size parsing the whole answer (orjson, in C) is cheaper than cutting.
WHOLE_PARSE_BELOW = 4096


def usage_object(body: bytes) -> Any:
    """The top-level ``usage`` value of a JSON answer, read from the last ``"usage":``
    key (providers put it last); the whole answer is parsed when that is in doubt."""
    at = body.rfind(b'"usage"') if len(body) > WHOLE_PARSE_BELOW else -1
    if at > 0 and body[at - 1 : at] != b"\\":
        start = body.find(b"{", at + 7)
        gap = body[at + 7 : start].strip() if start != -1 else b""
        if gap == b":":
            depth = 0
            for end in range(start, len(body)):
                char = body[end]
                if char == 0x7B:  # {
                    depth += 1
                elif char == 0x7D:  # }
                    depth -= 1
                    if depth == 0:
                        value = _loads(body[start : end + 1])
                        if isinstance(value, dict):
                            return value
                        break
    data = _loads(body)
    return data.get("usage") if isinstance(data, dict) else None


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
