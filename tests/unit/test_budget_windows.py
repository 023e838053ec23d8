"""Window budgets (global max_budget, per-model key budgets) and budget alert events — pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bastion.core.errors import BudgetExceededError
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budget_windows import (
    ModelBudget,
    ModelBudgetError,
    Window,
    WindowBudgets,
    WindowSpend,
    WindowTotal,
    budget_for_model,
    normalized_model_max_budget,
    parse_model_max_budget,
    window_for,
)
from bastion.policy.budgets import BudgetEvent, BudgetGuard, Charge
from bastion.policy.durations import next_reset, parse_duration
from bastion.policy.ledger import SpendLedger
from bastion.services.admin.key_requests import GenerateKeyRequest
from tests.unit.test_tenant_policy import key

WED = datetime(2025, 3, 12, 15, 30, 20, tzinfo=UTC)  # a Wednesday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("duration", "start", "end"),
    [
        ("30s", utc(2025, 3, 12, 15, 30), utc(2025, 3, 12, 15, 30, 30)),
        ("15m", utc(2025, 3, 12, 15, 30), utc(2025, 3, 12, 15, 45)),
        ("1h", utc(2025, 3, 12, 15), utc(2025, 3, 12, 16)),
        ("7h", utc(2025, 3, 12, 14), utc(2025, 3, 12, 21)),
        ("1d", utc(2025, 3, 12), utc(2025, 3, 13)),
        ("7d", utc(2025, 3, 10), utc(2025, 3, 17)),
        ("1w", utc(2025, 3, 10), utc(2025, 3, 17)),
        ("30d", utc(2025, 3, 1), utc(2025, 4, 1)),
        ("1mo", utc(2025, 3, 1), utc(2025, 4, 1)),
        ("3mo", utc(2025, 1, 1), utc(2025, 4, 1)),
        ("2d", utc(2025, 3, 11), utc(2025, 3, 13)),  # days counted from 1970-01-01
    ],
)
def test_windows_are_calendar_windows(duration: str, start: datetime, end: datetime) -> None:
    window = window_for(duration, WED)
    assert window == Window(start, end)
    assert window.start is not None and window.start <= WED < end
    if duration in ("30s", "15m", "1h", "1d", "7d", "30d", "1mo"):
        # The same boundaries as every other budget's reset (policy/durations.py).
        assert end == next_reset(parse_duration(duration), WED)


def test_windows_in_a_timezone_and_for_all_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    window = window_for("1d", WED, paris)
    assert window == Window(utc(2025, 3, 11, 23), utc(2025, 3, 12, 23))
    assert not window.day_aligned and window_for("1d", WED).day_aligned
    assert not window_for("1h", WED).day_aligned
    assert window_for(None, WED) == Window(None, None) and Window(None, None).day_aligned


def test_model_max_budget_in_litellms_shapes() -> None:
    budgets = parse_model_max_budget(
        {
            "gpt-4o": {"budget_limit": 0.5, "time_period": "1d"},
            "claude": {"max_budget": "2.25", "budget_duration": "1mo", "rpm_limit": 5},
            "old-style": 3,
        }
    )
    assert budgets == [
        ModelBudget("gpt-4o", Decimal("0.5"), parse_duration("1d")),
        ModelBudget("claude", Decimal("2.25"), parse_duration("1mo")),
        ModelBudget("old-style", Decimal(3), None),
    ]
    assert normalized_model_max_budget({"claude": {"budget_limit": "2.25", "rpm_limit": 5}}) == {
        "claude": {"budget_limit": 2.25, "time_period": None, "rpm_limit": 5}
    }


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"gpt-4o": {"budget_limit": -1, "time_period": "1d"}}, "0 or more"),
        ({"gpt-4o": {"budget_limit": "lots"}}, "number of US dollars"),
        ({"gpt-4o": {"budget_limit": True}}, "number of US dollars"),
        ({"gpt-4o": {"time_period": "1d"}}, "needs a budget_limit"),
        ({"gpt-4o": {"budget_limit": 1, "time_period": "30x"}}, "time_period"),
    ],
)
def test_bad_model_max_budget_is_a_400_naming_the_field(
    value: dict[str, object], says: str
) -> None:
    with pytest.raises(ModelBudgetError) as error:
        parse_model_max_budget(value)
    assert says in str(error.value) and error.value.status == 400
    with pytest.raises(ValueError, match="model_max_budget"):
        GenerateKeyRequest.model_validate({"model_max_budget": value})


def test_a_budget_on_a_model_governs_its_provider_prefixed_name() -> None:
    budgets = parse_model_max_budget({"gpt-4o": {"budget_limit": 1}})
    assert budget_for_model(budgets, "openai/gpt-4o") == budgets[0]
    assert budget_for_model(budgets, "gpt-4o") == budgets[0]
    assert budget_for_model(budgets, "gpt-4o-mini") is None


def _windows(spend: str = "0", proxy: str | None = None) -> tuple[WindowBudgets, Principal]:
    k = key()
    windows = WindowBudgets(
        max_budget=Decimal(proxy) if proxy else None, period=parse_duration("1d")
    )
    today = window_for("1d", WED)
    windows.install(
        {k.token: parse_model_max_budget({"gpt-4o": {"budget_limit": 1, "time_period": "1d"}})},
        WindowSpend(
            proxy=WindowTotal(today, Decimal(spend)),
            key_models={(k.token, "gpt-4o"): WindowTotal(today, Decimal(spend))},
        ),
    )
    return windows, Principal(PrincipalKind.KEY, key=k)


def test_a_key_over_its_model_budget_is_refused_naming_key_and_model() -> None:
    windows, principal = _windows(spend="1.2")
    guard = BudgetGuard(SpendLedger(), clock=lambda: WED)
    guard.check(windows.charges(principal, "gpt-4o-mini"))  # another model: no budget
    with pytest.raises(BudgetExceededError) as error:
        guard.check(windows.charges(principal, "openai/gpt-4o"))
    message = str(error.value)
    assert "key ci-key on model gpt-4o" in message
    assert "$1.200000" in message and "$1.000000" in message
    assert "resets at 2025-03-13T00:00:00+00:00" in message
    # The next day the window is new: the same snapshot no longer counts its spend.
    BudgetGuard(SpendLedger(), clock=lambda: WED + timedelta(days=1)).check(
        windows.charges(principal, "gpt-4o")
    )


def test_the_ledger_counts_toward_a_model_budget_until_the_next_reload() -> None:
    windows, principal = _windows(spend="0.9")
    ledger = SpendLedger()
    guard = BudgetGuard(ledger, clock=lambda: WED)
    charges = windows.charges(principal, "gpt-4o")
    guard.check(charges)
    ledger.add((c.entity for c in charges), Decimal("0.1"))
    with pytest.raises(BudgetExceededError):
        guard.check(windows.charges(principal, "gpt-4o"))


def test_the_global_budget_names_the_proxy_and_applies_to_the_master_key() -> None:
    windows, _ = _windows(spend="5", proxy="5")
    guard = BudgetGuard(SpendLedger(), clock=lambda: WED)
    master = Principal(PrincipalKind.MASTER)
    with pytest.raises(BudgetExceededError) as error:
        guard.check(windows.charges(master, "anything"))
    assert "the proxy (litellm_settings.max_budget)" in str(error.value)
    assert error.value.status == 422


def _charge(spend: str, soft: str | None, hard: str | None, reset: datetime | None) -> Charge:
    return Charge(
        ("team", "t1"),
        "team search",
        Decimal(hard) if hard else None,
        Decimal(soft) if soft else None,
        Decimal(spend),
        reset,
    )


def test_budget_events_once_per_entity_and_window() -> None:
    events: list[BudgetEvent] = []
    now = [WED]
    guard = BudgetGuard(SpendLedger(), clock=lambda: now[0], alerts=events.append)
    tomorrow = utc(2025, 3, 13)
    for _ in range(5):  # over the soft budget: calls go on, one event
        guard.check([_charge("6", "5", None, tomorrow)])
    assert [e.event for e in events] == ["soft_budget_crossed"]
    assert events[0].spend == Decimal(6) and events[0].limit == Decimal(5)
    for _ in range(5):  # over the hard budget: refused every time, one event
        with pytest.raises(BudgetExceededError):
            guard.check([_charge("11", "5", "10", tomorrow)])
    assert [e.event for e in events] == ["soft_budget_crossed", "budget_crossed"]
    # A new window (the snapshot brought the next reset time): alerts again, once.
    now[0] = utc(2025, 3, 13, 9)
    day_after = utc(2025, 3, 14)
    for _ in range(3):
        with pytest.raises(BudgetExceededError):
            guard.check([_charge("11", "5", "10", day_after)])
    assert [e.event for e in events][2:] == ["soft_budget_crossed", "budget_crossed"]
    # A raised limit that is crossed again is a new alert.
    with pytest.raises(BudgetExceededError):
        guard.check([_charge("21", None, "20", day_after)])
    assert len(events) == 5 and events[-1].limit == Decimal(20)


def test_an_invalid_global_budget_duration_is_a_config_error() -> None:
    from bastion.config.loader import load_config_text
    from bastion.core.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        load_config_text("litellm_settings: {max_budget: 1, budget_duration: 30x}\n", source="t")
    assert "litellm_settings.budget_duration" in str(error.value)
    loaded = load_config_text("litellm_settings: {max_budget: 1, budget_duration: 1mo}\n")
    assert loaded.config.litellm_settings.budget_duration == "1mo"
