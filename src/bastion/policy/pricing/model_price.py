"""A model's prices as ready-made Decimals, and the cost of one response from its Usage.

``cost()`` runs once per request, so everything that can be decided once per deployment
(fallback rates, tier order, the per-second rate) is decided when the ``ModelPrice`` is
built, and ``cost()`` only multiplies and adds.

Arithmetic is Decimal in the default context (28 significant digits): a per-token price
such as ``0.0000025`` times a token count is exact, and so is any realistic sum of such
costs, so spend adds up to the cent over millions of calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.core.usage import Usage

ZERO = Decimal(0)

# Operations whose images are produced (priced per output image); any other operation's
# images are inputs (priced per input image, as Vertex AI prices them).
IMAGE_OUTPUT_OPERATIONS = frozenset({"image_generation", "image_edit", "image_variation"})


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per token for each kind of token, with every fallback already applied."""

    input: Decimal = ZERO
    output: Decimal = ZERO
    cache_read: Decimal = ZERO
    cache_creation: Decimal = ZERO
    reasoning: Decimal = ZERO
    audio_input: Decimal = ZERO
    audio_output: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Everything needed to cost a response of one deployment.

    ``tiers`` holds ``(threshold, rates)`` pairs, highest threshold first: when the
    prompt (input plus cache reads and writes) has more tokens than a threshold, that
    tier's rates apply to all tokens of the call, as LiteLLM's ``_above_200k_tokens``
    prices and genai-prices' tiers both mean.
    """

    model: str
    source: str
    rates: TokenRates
    tiers: tuple[tuple[int, TokenRates], ...] = ()
    mode: str | None = None
    input_per_image: Decimal = ZERO
    output_per_image: Decimal = ZERO
    per_second: Decimal = ZERO
    input_per_character: Decimal = ZERO
    per_request: Decimal = ZERO
    # The LiteLLM-named fields the price was built from, for /model/info-style answers.
    fields: tuple[tuple[str, Decimal], ...] = ()

    def rates_for(self, prompt_tokens: int) -> TokenRates:
        for threshold, rates in self.tiers:
            if prompt_tokens > threshold:
                return rates
        return self.rates

    def litellm_fields(self) -> dict[str, Any]:
        """The price as LiteLLM ``model_info`` cost fields (floats, USD)."""
        return {name: float(value) for name, value in self.fields}


# For a deployment no source prices: ``cost(book.price_for(d) or UNPRICED, usage)`` is 0.
UNPRICED = ModelPrice(model="unpriced", source="none", rates=TokenRates())


def cost(
    price: ModelPrice,
    usage: Usage,
    *,
    operation: str = "chat",
    images: int = 0,
    seconds: float = 0,
    characters: int = 0,
) -> Decimal:
    """The USD cost of one response.

    Token parts, per ``Usage``'s definitions: ``input_tokens`` (less its audio part) at
    the input rate, audio input at the audio rate, cache reads and cache writes at their
    rates; ``output_tokens`` less reasoning and audio output at the output rate, those two
    at theirs. An embedding is its prompt at the input rate. ``images`` are output images
    for image generation and input images otherwise; ``seconds`` is audio duration
    (transcription, speech); ``characters`` is speech input for per-character voices.
    Counts that contradict each other (more reasoning than output) are clamped, never
    charged twice.
    """
    inp = usage.input_tokens
    cached = usage.cached_input_tokens
    creation = usage.cache_creation_input_tokens
    rates = price.rates
    if price.tiers:
        rates = price.rates_for(inp + cached + creation)
    if operation == "embedding":
        total = rates.input * (inp + cached + creation)
    else:
        audio_in = usage.audio_input_tokens
        if audio_in:
            audio_in = min(audio_in, inp)
            total = rates.input * (inp - audio_in) + rates.audio_input * audio_in
        else:
            total = rates.input * inp
        if cached:
            total += rates.cache_read * cached
        if creation:
            total += rates.cache_creation * creation
        out = usage.output_tokens
        reasoning = usage.reasoning_tokens
        audio_out = usage.audio_output_tokens
        if reasoning or audio_out:
            reasoning = min(reasoning, out)
            audio_out = min(audio_out, out - reasoning)
            total += (
                rates.output * (out - reasoning - audio_out)
                + rates.reasoning * reasoning
                + rates.audio_output * audio_out
            )
        else:
            total += rates.output * out
    if images:
        per_image = (
            price.output_per_image
            if operation in IMAGE_OUTPUT_OPERATIONS
            else price.input_per_image
        )
        total += per_image * images
    if seconds:
        total += price.per_second * Decimal(repr(float(seconds)))
    if characters:
        total += price.input_per_character * characters
    if price.per_request:
        total += price.per_request
    return total
