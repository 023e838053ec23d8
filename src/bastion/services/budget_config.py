"""The budget settings of the config file, turned into the objects that enforce them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bastion.config.model import ProxyConfig
from bastion.policy.budget_windows import WindowBudgets
from bastion.policy.durations import parse_duration
from bastion.services.alerts import Alerter, AlertSettings


def window_budgets(config: ProxyConfig, warnings: list[str]) -> WindowBudgets:
    """``litellm_settings.max_budget`` / ``budget_duration`` (the whole proxy), and the
    holder of per-model key budgets (``model_max_budget``), which are always enforced."""
    settings = config.litellm_settings
    period = None
    if settings.budget_duration:  # validated with the config (config/model.py)
        period = parse_duration(settings.budget_duration)
        if settings.max_budget is None:
            warnings.append(
                "litellm_settings.budget_duration is set without max_budget: no global budget"
            )
    max_budget = Decimal(str(settings.max_budget)) if settings.max_budget is not None else None
    return WindowBudgets(max_budget=max_budget, period=period)


def alerter(general_extra: Mapping[str, Any], warnings: list[str]) -> Alerter:
    """``general_settings.alerting`` and friends (see services/alerts.py)."""
    settings = AlertSettings.from_config(general_extra)
    warnings.extend(settings.warnings)
    return Alerter(settings)
