"""The budget settings of the config file, turned into the objects that enforce them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bastion.config.model import ProxyConfig
from bastion.policy.budget_windows import WindowBudgets
from bastion.policy.durations import parse_duration
from bastion.services.alert_claims import AlertClaims
from bastion.services.alerts import Alerter, AlertSettings

if TYPE_CHECKING:
    from bastion.limits.limiter import RateLimiter


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


def alerter(
    general_extra: Mapping[str, Any], warnings: list[str], limits: RateLimiter | None = None
) -> Alerter:
    """``general_settings.alerting`` and friends (see services/alerts.py); with the rate
    limiter on Redis, alerts are claimed there first (services/alert_claims.py)."""
    settings = AlertSettings.from_config(general_extra)
    warnings.extend(settings.warnings)
    return Alerter(settings, AlertClaims.through(limits, settings.budget_alert_ttl))
