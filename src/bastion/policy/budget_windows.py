"""Budgets kept in fixed calendar windows: the global proxy budget and per-model key budgets.

These budgets have no ``spend`` column of their own. Their spend is what the
database already records per request (``daily_spend`` per UTC day, ``spend_logs``
per call), summed over the current window when the auth snapshot is reloaded
(storage/budget_windows.py), plus this worker's ledger since then. A window ends
at a calendar boundary in the budget timezone, like every other budget
(policy/durations.py), so a budget "resets" simply because the next window
starts empty:

========  ===================================================================
``Ns``     windows of N seconds (N minutes, N hours) counted from local midnight
``1d``     one local day
``7d``     Monday to Monday (``1w`` too)
``30d``    the calendar month (``1mo`` too)
``Nmo``    N calendar months, counted from January of year 0
``Nd``     N days counted from 1 January 1970 (other N; ``Nw`` is ``7N`` days)
========  ===================================================================

No duration means one window for all time.

This module is pure: it parses ``model_max_budget`` entries, finds the window for
a duration and ``now``, and tells which entry governs a requested model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.core.errors import InvalidRequestError
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budgets import Charge
from bastion.policy.durations import Duration, DurationError, parse_duration

logger = logging.getLogger("bastion.budgets")

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC; ``start`` is None for the all-time window."""

    start: datetime | None
    end: datetime | None

    @property
    def day_aligned(self) -> bool:
        """Whether the window starts at a UTC midnight (``daily_spend`` rows can sum it)."""
        s = self.start
        return s is None or (s.hour, s.minute, s.second, s.microsecond) == (0, 0, 0, 0)


def window_for(duration: Duration | str | None, now: datetime, tz: tzinfo = UTC) -> Window:
    """The calendar window of ``duration`` that contains ``now``."""
    if duration is None:
        return Window(None, None)
    d = parse_duration(duration) if isinstance(duration, str) else duration
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if d.unit in ("s", "m", "h"):
        step = d.amount * {"s": 1, "m": 60, "h": 3600}[d.unit]
        elapsed = (local.replace(tzinfo=None) - midnight).total_seconds()
        start = midnight + timedelta(seconds=int(elapsed // step) * step)
        end = min(start + timedelta(seconds=step), midnight + timedelta(days=1))
    elif d.unit == "mo" or (d.unit == "d" and d.amount == 30):
        months = 1 if d.unit == "d" else d.amount
        index = (midnight.year * 12 + midnight.month - 1) // months * months
        start = midnight.replace(year=index // 12, month=index % 12 + 1, day=1)
        after = index + months
        end = start.replace(year=after // 12, month=after % 12 + 1)
    else:
        days = d.amount * (7 if d.unit == "w" else 1)
        if days == 7:
            start = midnight - timedelta(days=midnight.weekday())
        else:
            offset = (midnight.date() - _EPOCH).days
            start = midnight - timedelta(days=offset % days)
        end = start + timedelta(days=days)
    return Window(_utc(start, tz), _utc(end, tz))


def _utc(wall: datetime, tz: tzinfo) -> datetime:
    return wall.replace(tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ModelBudget:
    """One ``model_max_budget`` entry: a limit on one model over a period."""

    model: str
    limit: Decimal
    period: Duration | None


class ModelBudgetError(InvalidRequestError, ValueError):
    """A ``model_max_budget`` that cannot be read; a 400 naming the field."""


def parse_model_max_budget(value: Mapping[str, Any] | None) -> list[ModelBudget]:
    """Read LiteLLM's ``{"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}}``.

    ``max_budget`` / ``budget_duration`` are accepted for ``budget_limit`` /
    ``time_period`` (LiteLLM's BudgetConfig takes both), a limit may be a numeric
    string, ``tpm_limit`` / ``rpm_limit`` may sit beside them, and the older plain
    form ``{"gpt-4o": 0.5}`` is a budget with no period. Raises ModelBudgetError.
    """
    budgets: list[ModelBudget] = []
    for model, raw in (value or {}).items():
        where = f"model_max_budget[{model!r}]"
        if not isinstance(model, str) or not model:
            raise ModelBudgetError(
                "model_max_budget keys must be model names", param="model_max_budget"
            )
        if isinstance(raw, dict):
            limit_raw = raw.get("budget_limit", raw.get("max_budget"))
            period_raw = raw.get("time_period", raw.get("budget_duration"))
        else:
            limit_raw, period_raw = raw, None
        if limit_raw is None:
            raise ModelBudgetError(
                f'{where} needs a budget_limit, e.g. {{"budget_limit": 0.5, "time_period": "1d"}}',
                param="model_max_budget",
            )
        limit = _money(limit_raw, where)
        try:
            period = (
                parse_duration(period_raw, field=f"{where}.time_period") if period_raw else None
            )
        except DurationError as exc:
            raise ModelBudgetError(str(exc), param="model_max_budget") from None
        budgets.append(ModelBudget(model, limit, period))
    return budgets


def normalized_model_max_budget(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model_max_budget`` as stored: validated, in LiteLLM's shape, limits as numbers."""
    stored: dict[str, Any] = {}
    for budget in parse_model_max_budget(value):
        raw = (value or {})[budget.model]
        extra = (
            {k: v for k, v in raw.items() if k in ("tpm_limit", "rpm_limit")}
            if isinstance(raw, dict)
            else {}
        )
        stored[budget.model] = {
            "budget_limit": float(budget.limit),
            "time_period": str(budget.period) if budget.period else None,
            **extra,
        }
    return stored


def _money(raw: Any, where: str) -> Decimal:
    if isinstance(raw, bool):
        raw = None
    try:
        amount = Decimal(str(raw)) if isinstance(raw, (int, float, str)) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ModelBudgetError(
            f"{where}.budget_limit must be a number of US dollars, 0 or more (got {raw!r})",
            param="model_max_budget",
        )
    return amount


def model_candidates(model: str) -> tuple[str, ...]:
    """Names a budget may be set under for a request on ``model``: as sent, then without
    its ``provider/`` prefix (``gpt-4o`` governs ``openai/gpt-4o``), as LiteLLM does."""
    return tuple(dict.fromkeys((model, model.rsplit("/", 1)[-1])))


def budget_for_model(budgets: list[ModelBudget], *models: str) -> ModelBudget | None:
    """The entry governing a request on any of ``models`` (requested name, then alias)."""
    by_name = {b.model: b for b in budgets}
    for model in models:
        for candidate in model_candidates(model):
            if candidate in by_name:
                return by_name[candidate]
    return None


def governs(budget_model: str, recorded_model: str) -> bool:
    """Whether spend recorded under ``recorded_model`` counts toward ``budget_model``."""
    return budget_model in model_candidates(recorded_model)


@dataclass(frozen=True, slots=True)
class WindowTotal:
    """Spend recorded in the database for one window, as of the last reload."""

    window: Window
    spend: Decimal


@dataclass(frozen=True)
class WindowSpend:
    """What the last reload found: the proxy's total and each (key, budget model)'s."""

    proxy: WindowTotal | None = None
    key_models: Mapping[tuple[str, str], WindowTotal] | None = None

    def key_model(self, token: str, model: str) -> WindowTotal | None:
        return (self.key_models or {}).get((token, model))


class WindowBudgets:
    """The global ``litellm_settings.max_budget`` and the per-model budgets of keys, at
    run time: built from config, fed by each snapshot reload, read per request."""

    def __init__(
        self,
        *,
        max_budget: Decimal | None = None,
        period: Duration | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self.max_budget = max_budget
        self.period = period
        self.tz = tz
        self.current = WindowSpend()
        self._key_budgets: dict[str, list[ModelBudget]] = {}

    def key_budgets_of(self, keys: Mapping[str, Any]) -> dict[str, list[ModelBudget]]:
        """Each key's parsed ``model_max_budget`` (entries that cannot be read are
        skipped with a warning: the API refuses them, so only a hand edit gets here)."""
        parsed: dict[str, list[ModelBudget]] = {}
        for token, key in keys.items():
            raw = getattr(key, "model_max_budget", None)
            if not raw:
                continue
            try:
                parsed[token] = parse_model_max_budget(raw)
            except ModelBudgetError as exc:
                logger.warning("key %s: model_max_budget ignored: %s", _name(key), exc)
        return parsed

    def install(self, key_budgets: dict[str, list[ModelBudget]], spend: WindowSpend) -> None:
        self._key_budgets = key_budgets
        self.current = spend

    def charges(self, principal: Principal, model: str) -> list[Charge]:
        """The window charges of a call on ``model`` (the name the client asked for)."""
        out: list[Charge] = []
        spend = self.current
        key = principal.key if principal.kind is PrincipalKind.KEY else None
        if key is not None and key.token in self._key_budgets:
            budget = budget_for_model(self._key_budgets[key.token], model)
            if budget is not None:
                total = spend.key_model(key.token, budget.model)
                out.append(
                    Charge(
                        ("key_model", f"{key.token}:{budget.model}"),
                        f"key {_name(key)} on model {budget.model}",
                        budget.limit,
                        None,
                        total.spend if total else Decimal(0),
                        total.window.end if total else None,
                    )
                )
        if self.max_budget is not None:
            total = spend.proxy
            out.append(
                Charge(
                    PROXY_ENTITY,
                    "the proxy (litellm_settings.max_budget)",
                    self.max_budget,
                    None,
                    total.spend if total else Decimal(0),
                    total.window.end if total else None,
                )
            )
        return out


PROXY_ENTITY = ("proxy", "global")


def _name(key: Any) -> str:
    return str(getattr(key, "key_alias", None) or getattr(key, "key_name", None) or "this key")
