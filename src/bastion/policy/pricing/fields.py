"""LiteLLM's cost fields (``input_cost_per_token``, ``…_above_200k_tokens``…) → ModelPrice.

Every price source is first expressed in these names — config overrides and the
override file use them already, genai-prices is translated into them — so that layering
(table < ``model_info`` < ``litellm_params``) is a dict merge and one builder applies the
fallbacks: a missing cache-read, cache-write or audio-input rate is the input rate, a
missing reasoning or audio-output rate is the output rate, and a tier inherits every rate
it does not set from the tier below it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.policy.pricing.model_price import ZERO, ModelPrice, TokenRates

# Per-token fields, and the TokenRates attribute each one sets.
TOKEN_FIELDS: dict[str, str] = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_creation",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "audio_input",
    "output_cost_per_audio_token": "audio_output",
}
UNIT_FIELDS = frozenset(
    {
        "input_cost_per_image",
        "output_cost_per_image",
        "input_cost_per_second",
        "output_cost_per_second",
        "input_cost_per_character",
        "input_cost_per_request",
    }
)
PRICE_FIELDS = frozenset(TOKEN_FIELDS) | UNIT_FIELDS
_TIER_KEY = re.compile(r"^(?P<base>[a-z_]+?)_above_(?P<count>\d+(?:\.\d+)?)(?P<k>k?)_tokens$")


@dataclass
class RateSheet:
    """Flat prices plus ``{threshold: prices}`` tiers, each a LiteLLM field → USD."""

    flat: dict[str, Decimal] = field(default_factory=dict)
    tiers: dict[int, dict[str, Decimal]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.flat or self.tiers)

    def over(self, base: RateSheet) -> RateSheet:
        """This sheet's prices on top of ``base``'s, field by field."""
        tiers = {t: dict(prices) for t, prices in base.tiers.items()}
        for threshold, prices in self.tiers.items():
            tiers.setdefault(threshold, {}).update(prices)
        return RateSheet({**base.flat, **self.flat}, tiers)


def to_decimal(value: Any) -> Decimal | None:
    """A price as an exact Decimal: floats through their shortest repr (2.5e-06 → 0.0000025)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not result.is_finite() or result < 0:
        return None
    return result


def tier_threshold(key: str) -> tuple[str, int] | None:
    """``input_cost_per_token_above_200k_tokens`` → (``input_cost_per_token``, 200000)."""
    match = _TIER_KEY.match(key)
    if match is None or match["base"] not in TOKEN_FIELDS:
        return None
    count = Decimal(match["count"]) * (1000 if match["k"] else 1)
    return match["base"], int(count)


def read_sheet(values: Mapping[str, Any], where: str, problems: list[str]) -> RateSheet:
    """The price fields of a LiteLLM-style mapping; other keys are ignored.

    A field with a value that is not a non-negative number is reported in ``problems``
    (as ``where.field: …``) and left out.
    """
    sheet = RateSheet()
    for key, raw in values.items():
        if not isinstance(key, str) or raw is None:
            continue
        tier = tier_threshold(key) if "_above_" in key else None
        if key not in PRICE_FIELDS and tier is None:
            continue
        value = to_decimal(raw)
        if value is None:
            problems.append(f"{where}.{key}: {raw!r} is not a non-negative number (USD)")
            continue
        if tier is None:
            sheet.flat[key] = value
        else:
            sheet.tiers.setdefault(tier[1], {})[tier[0]] = value
    return sheet


def _rates(prices: Mapping[str, Decimal]) -> TokenRates:
    given = {TOKEN_FIELDS[k]: v for k, v in prices.items() if k in TOKEN_FIELDS}
    inp = given.get("input", ZERO)
    out = given.get("output", ZERO)
    return TokenRates(
        input=inp,
        output=out,
        cache_read=given.get("cache_read", inp),
        cache_creation=given.get("cache_creation", inp),
        reasoning=given.get("reasoning", out),
        audio_input=given.get("audio_input", inp),
        audio_output=given.get("audio_output", out),
    )


def build_price(sheet: RateSheet, *, model: str, source: str, mode: str | None) -> ModelPrice:
    flat = sheet.flat
    tiers: list[tuple[int, TokenRates]] = []
    level = {k: v for k, v in flat.items() if k in TOKEN_FIELDS}
    for threshold in sorted(sheet.tiers):
        level = {**level, **sheet.tiers[threshold]}
        tiers.append((threshold, _rates(level)))
    output_per_second = flat.get("output_cost_per_second", ZERO)
    # LiteLLM bills a duration once: at the output rate when there is one, else the input rate.
    per_second = output_per_second or flat.get("input_cost_per_second", ZERO)
    return ModelPrice(
        model=model,
        source=source,
        rates=_rates(flat),
        tiers=tuple(reversed(tiers)),
        mode=mode,
        input_per_image=flat.get("input_cost_per_image", ZERO),
        output_per_image=flat.get("output_cost_per_image", ZERO),
        per_second=per_second,
        input_per_character=flat.get("input_cost_per_character", ZERO),
        per_request=flat.get("input_cost_per_request", ZERO),
        fields=tuple(sorted(_field_items(sheet))),
    )


def _field_items(sheet: RateSheet) -> Iterable[tuple[str, Decimal]]:
    yield from sheet.flat.items()
    for threshold, prices in sheet.tiers.items():
        suffix = f"{threshold // 1000}k" if threshold % 1000 == 0 else str(threshold)
        for key, value in prices.items():
            yield f"{key}_above_{suffix}_tokens", value
