"""PriceBook: each deployment's price, resolved once from every source and cached.

Sources, highest precedence first:

1. the deployment's own cost fields — ``litellm_params`` over ``model_info``
   (``input_cost_per_token``, ``output_cost_per_reasoning_token``,
   ``input_cost_per_token_above_200k_tokens``…), field by field over the table price;
2. an override file in LiteLLM's ``model_prices_and_context_window.json`` format, from
   ``litellm_settings.model_cost_map_path`` or else ``$LITELLM_MODEL_COST_MAP_PATH``
   (an entry there replaces the genai-prices entry for that model as a whole);
3. genai-prices' bundled table (offline);
4. a few per-image prices shipped with Bastion (``builtin_prices.json``).

A deployment no source prices gets ``None`` and a reason; nothing here raises on the
request path. ``unpriced()`` lists such deployments for a startup warning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

import orjson

from bastion.config.model import ProxyConfig
from bastion.policy.pricing.cost_map_file import (
    ENV_VAR,
    CostMapEntry,
    load_cost_map,
    parse_cost_map,
)
from bastion.policy.pricing.fields import RateSheet, build_price, read_sheet
from bastion.policy.pricing.genai_table import GenaiPriceTable
from bastion.policy.pricing.model_price import ModelPrice
from bastion.policy.pricing.names import (
    GENAI_PROVIDERS,
    file_keys,
    genai_refs,
    provider_family,
    split_prefix,
)

# Wildcard deployments are made per requested name; bound what those can make us keep.
MAX_CACHED = 4096
BUILTIN_SOURCE = "bastion built-in prices"


class PricedDeployment(Protocol):
    """What pricing reads of a deployment (``bastion.core.deployment.Deployment`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def provider_name(self) -> str: ...
    @property
    def upstream_model(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def model_info(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PriceResolution:
    price: ModelPrice | None
    reason: str | None = None  # why there is no price; None when priced


@dataclass(frozen=True, slots=True)
class Unpriced:
    deployment_id: str
    model_name: str
    model: str
    reason: str

    def __str__(self) -> str:
        return f"{self.model_name} ({self.model}, id {self.deployment_id}): {self.reason}"


class PriceBook:
    def __init__(
        self,
        *,
        cost_map: Mapping[str, CostMapEntry] | None = None,
        cost_map_source: str | None = None,
        table: GenaiPriceTable | None = None,
        builtin: Mapping[str, CostMapEntry] | None = None,
    ) -> None:
        self._cost_map = dict(cost_map or {})
        self._cost_map_source = cost_map_source or "model cost map"
        self._table = table
        self._builtin = dict(builtin or {})
        self._cache: dict[str, PriceResolution] = {}

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        now: datetime | None = None,
        use_table: bool = True,
    ) -> PriceBook:
        """The book for a config: reads the override file (ConfigError if it is bad)."""
        env = os.environ if environ is None else environ
        setting = config.litellm_settings.model_cost_map_path if config else None
        path = setting or env.get(ENV_VAR)
        cost_map = load_cost_map(path) if path else None
        return cls(
            cost_map=cost_map,
            cost_map_source=f"{path}" if path else None,
            table=GenaiPriceTable.bundled(now) if use_table else None,
            builtin=builtin_prices(),
        )

    @property
    def sources(self) -> list[str]:
        """The price sources in precedence order, for a startup log line."""
        found = ["deployment cost fields"]
        if self._cost_map:
            found.append(f"{self._cost_map_source} ({len(self._cost_map)} models)")
        if self._table is not None:
            found.append(self._table.source)
        if self._builtin:
            found.append(BUILTIN_SOURCE)
        return found

    def price_for(self, deployment: PricedDeployment) -> ModelPrice | None:
        return self.resolve(deployment).price

    def resolve(self, deployment: PricedDeployment) -> PriceResolution:
        """The deployment's price (or why there is none), worked out on first use."""
        cached = self._cache.get(deployment.id)
        if cached is not None:
            return cached
        resolution = self._resolve(deployment)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[deployment.id] = resolution
        return resolution

    def context_window(self, deployment: PricedDeployment) -> int | None:
        """The model's context window per the price table (genai-prices), if it says."""
        if self._table is None:
            return None
        base_model = _text(deployment.model_info.get("base_model")) or _text(
            deployment.params.get("base_model")
        )
        for provider_id, ref in genai_refs(
            deployment.provider_name, deployment.upstream_model, base_model
        ):
            try:
                window = self._table.context_window(provider_id, ref)
            except Exception:  # a changed genai-prices must not break routing
                window = None
            if window is not None:
                return window
        return None

    def forget(self, deployment_id: str | None = None) -> None:
        """Drop a cached resolution (a deployment changed), or all of them."""
        if deployment_id is None:
            self._cache.clear()
        else:
            self._cache.pop(deployment_id, None)

    def unpriced(self, deployments: Iterable[PricedDeployment]) -> list[Unpriced]:
        """Deployments no source prices (wildcard templates skipped), for a startup warning."""
        found = []
        for deployment in deployments:
            if "*" in deployment.upstream_model:
                continue
            resolution = self.resolve(deployment)
            if resolution.price is None:
                found.append(
                    Unpriced(
                        deployment.id,
                        deployment.model_name,
                        f"{deployment.provider_name}/{deployment.upstream_model}",
                        resolution.reason or "no price",
                    )
                )
        return found

    def _resolve(self, deployment: PricedDeployment) -> PriceResolution:
        provider = deployment.provider_name
        model = deployment.upstream_model
        info = deployment.model_info
        params = deployment.params
        base_model = _text(info.get("base_model")) or _text(params.get("base_model"))
        problems: list[str] = []
        overrides = read_sheet(params, "litellm_params", problems).over(
            read_sheet(info, "model_info", problems)
        )
        if problems:
            return PriceResolution(None, "invalid cost fields: " + "; ".join(problems))
        found = self._table_price(provider, model, base_model)
        mode = _text(info.get("mode"))
        if found is None:
            if not overrides:
                return PriceResolution(None, self._why_unpriced(provider, model, base_model))
            label = base_model or f"{provider}/{model}"
            return PriceResolution(build_price(overrides, model=label, source="config", mode=mode))
        label, source, sheet, table_mode = found
        if overrides:
            sheet = overrides.over(sheet)
            source = f"config over {source}"
        price = build_price(sheet, model=label, source=source, mode=mode or table_mode)
        return PriceResolution(price)

    def _table_price(
        self, provider: str, model: str, base_model: str | None
    ) -> tuple[str, str, RateSheet, str | None] | None:
        keys = file_keys(provider, model, base_model)
        # An entry must be for the deployment's provider (LiteLLM's "gpt-4o" is OpenAI's,
        # not an Azure deployment's) unless a bare base_model named it on purpose.
        owner = split_prefix(base_model)[0] if base_model else provider
        for key in keys:
            entry = self._cost_map.get(key)
            if entry is not None and _fits(entry, owner):
                return key, self._cost_map_source, entry.sheet, entry.mode
        if self._table is not None:
            for provider_id, ref in genai_refs(provider, model, base_model):
                try:
                    hit = self._table.lookup(provider_id, ref)
                except Exception:  # a changed genai-prices must not break startup
                    hit = None
                if hit is not None:
                    return hit[0], self._table.source, hit[1], None
        for key in keys:
            entry = self._builtin.get(key)
            if entry is not None and _fits(entry, owner):
                return key, BUILTIN_SOURCE, entry.sheet, entry.mode
        return None

    def _why_unpriced(self, provider: str, model: str, base_model: str | None) -> str:
        fix = (
            "set input_cost_per_token and output_cost_per_token in litellm_params or "
            f"model_info, or list the model in a {ENV_VAR} file; cost is 0 until then"
        )
        tables = ", ".join(self.sources[1:]) or "any price table"
        if base_model:
            return f"no price for base_model '{base_model}' in {tables}; {fix}"
        if provider in ("azure", "azure_text"):
            return (
                f"Azure deployment '{model}' is not a model name the price tables know; set "
                f"model_info.base_model (for example azure/gpt-4o), or {fix}"
            )
        if provider not in GENAI_PROVIDERS:
            return (
                f"provider '{provider}' has no list price (self-hosted, or not in the price "
                f"tables); {fix}"
            )
        return f"no price for '{provider}/{model}' in {tables}; {fix}"


def builtin_prices() -> dict[str, CostMapEntry]:
    text = resources.files("bastion.policy.pricing").joinpath("builtin_prices.json").read_bytes()
    return parse_cost_map(orjson.loads(text), BUILTIN_SOURCE)


def _fits(entry: CostMapEntry, owner: str | None) -> bool:
    if owner is None or entry.provider is None:
        return True
    return provider_family(entry.provider) == provider_family(owner)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
