"""The maintained offline price table: the ``genai-prices`` package's bundled data.

Only the data bundled with the installed package is read (``genai_prices.data``), never
its ``UpdatePrices`` downloader or the process-wide snapshot another library may have
replaced, so prices never come from the network. Prices are translated into LiteLLM's
field names (see ``fields.py``) once per model.

Time-of-day prices (off-peak discounts) are not applied: a price is chosen once, when a
deployment is first priced, not per request, so the standard price is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bastion.policy.pricing.fields import RateSheet

if TYPE_CHECKING:
    from genai_prices import types as gp

# genai-prices price key → (LiteLLM field, divisor from its unit to one token/second/…).
_FIELDS: dict[str, tuple[str, Decimal]] = {
    "input_mtok": ("input_cost_per_token", Decimal(1_000_000)),
    "output_mtok": ("output_cost_per_token", Decimal(1_000_000)),
    "cache_read_mtok": ("cache_read_input_token_cost", Decimal(1_000_000)),
    "cache_write_mtok": ("cache_creation_input_token_cost", Decimal(1_000_000)),
    "input_audio_mtok": ("input_cost_per_audio_token", Decimal(1_000_000)),
    "output_audio_mtok": ("output_cost_per_audio_token", Decimal(1_000_000)),
    "output_reasoning_mtok": ("output_cost_per_reasoning_token", Decimal(1_000_000)),
    "input_audio_hours": ("input_cost_per_second", Decimal(3600)),
    "audio_hours": ("input_cost_per_second", Decimal(3600)),
    "input_mchars": ("input_cost_per_character", Decimal(1_000_000)),
    "requests_kcount": ("input_cost_per_request", Decimal(1000)),
}


class GenaiPriceTable:
    """Look a model up in genai-prices by its provider id (``openai``, ``aws``…)."""

    def __init__(self, providers: Sequence[gp.Provider], version: str, now: datetime) -> None:
        self._providers = list(providers)
        self._by_id = {p.id: p for p in self._providers}
        self.version = version
        self._now = now

    @classmethod
    def bundled(cls, now: datetime | None = None) -> GenaiPriceTable | None:
        """The table shipped with the installed genai-prices, or None when it is missing."""
        try:
            import genai_prices
            from genai_prices.data import providers
        except ImportError:
            return None
        return cls(providers, genai_prices.__version__, now or datetime.now(UTC))

    @property
    def source(self) -> str:
        return f"genai-prices {self.version}"

    def has_provider(self, provider_id: str) -> bool:
        return provider_id in self._by_id

    def lookup(self, provider_id: str | None, model: str) -> tuple[str, RateSheet] | None:
        """``(provider_id/model_id, prices)`` for a model, or None when the table lacks it.

        With no provider id, the provider is inferred from the model name, as
        genai-prices does (``claude…`` is Anthropic's).
        """
        ref = model.lower()
        provider = self._by_id.get(provider_id) if provider_id else self._infer_provider(ref)
        if provider is None:
            return None
        found = provider.find_model(ref, all_providers=self._providers)
        if found is None:
            return None
        return f"{provider.id}/{found.id}", self._sheet(found)

    def context_window(self, provider_id: str | None, model: str) -> int | None:
        """The model's context window in tokens, when the table knows it."""
        ref = model.lower()
        provider = self._by_id.get(provider_id) if provider_id else self._infer_provider(ref)
        if provider is None:
            return None
        found = provider.find_model(ref, all_providers=self._providers)
        window = getattr(found, "context_window", None) if found is not None else None
        return window if isinstance(window, int) and window > 0 else None

    def _infer_provider(self, ref: str) -> gp.Provider | None:
        for provider in self._providers:
            if provider.model_match is not None and provider.model_match.is_match(ref):
                return provider
        return None

    def _sheet(self, model: gp.ModelInfo) -> RateSheet:
        from genai_prices import types

        sheet = RateSheet()
        for key, value in vars(self._standard_price(model)).items():
            target = _FIELDS.get(key)
            if target is None or value is None:
                continue
            name, divisor = target
            if isinstance(value, types.TieredPrices):
                sheet.flat.setdefault(name, value.base / divisor)
                for tier in value.tiers:
                    sheet.tiers.setdefault(tier.start, {})[name] = tier.price / divisor
            elif isinstance(value, Decimal):
                sheet.flat.setdefault(name, value / divisor)
        return sheet

    def _standard_price(self, model: gp.ModelInfo) -> gp.ModelPrice:
        from genai_prices import types

        if isinstance(model.prices, types.ModelPrice):
            return model.prices
        # The last conditional price in force wins; time-of-day windows are skipped.
        for conditional in reversed(model.prices):
            constraint = conditional.constraint
            if constraint is None or (
                isinstance(constraint, types.StartDateConstraint) and constraint.active(self._now)
            ):
                return conditional.prices
        return model.prices[0].prices
