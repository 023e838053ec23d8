"""Reading a price file in LiteLLM's ``model_prices_and_context_window.json`` format.

The file maps a model key (``gpt-4o``, ``azure/gpt-4o``, ``bedrock/…``) to an object
with ``litellm_provider``, ``mode``, cost fields and limits; a ``sample_spec`` entry, keys
starting with ``_`` (comments) and non-cost fields are ignored. Numbers are parsed as
Decimals straight from the text, so ``2.5e-06`` is exactly 0.0000025. The file is local:
Bastion never fetches prices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bastion.core.errors import ConfigError
from bastion.policy.pricing.fields import RateSheet, read_sheet

ENV_VAR = "LITELLM_MODEL_COST_MAP_PATH"
SETTING = "model_cost_map_path"


@dataclass(frozen=True, slots=True)
class CostMapEntry:
    key: str
    sheet: RateSheet
    mode: str | None
    provider: str | None = None  # its litellm_provider


def load_cost_map(path: str | Path) -> dict[str, CostMapEntry]:
    """Every priced entry of the file by key; a bad file or value raises ConfigError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["model cost map file not found"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the model cost map: {exc.strerror}"]) from None
    try:
        raw = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ConfigError(source, [f"not valid JSON: {exc}"]) from None
    return parse_cost_map(raw, source)


def parse_cost_map(raw: Any, source: str = "<cost map>") -> dict[str, CostMapEntry]:
    if not isinstance(raw, dict):
        raise ConfigError(source, ["expected a JSON object of model name -> prices"])
    problems: list[str] = []
    entries: dict[str, CostMapEntry] = {}
    for key, spec in raw.items():
        if key == "sample_spec" or key.startswith("_"):
            continue  # LiteLLM's field template; "_…" keys are comments
        if not isinstance(spec, dict):
            problems.append(f"{key}: expected an object of prices, got {type(spec).__name__}")
            continue
        sheet = read_sheet(spec, key, problems)
        if not sheet:
            continue  # limits or capabilities only: it does not price the model
        mode = spec.get("mode")
        provider = spec.get("litellm_provider")
        entries[key] = CostMapEntry(
            key,
            sheet,
            mode if isinstance(mode, str) else None,
            provider if isinstance(provider, str) else None,
        )
    if problems:
        raise ConfigError(source, problems)
    return entries
