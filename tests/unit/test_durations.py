"""Budget durations: parsing, calendar-aligned resets, exact expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bastion.core.errors import InvalidRequestError
from bastion.policy.durations import (
    Duration,
    DurationError,
    add_duration,
    next_reset,
    parse_duration,
    timezone_named,
)

WED = datetime(2025, 3, 12, 15, 30, 45, 123, tzinfo=UTC)  # Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", Duration(30, "s")),
        ("15m", Duration(15, "m")),
        ("1h", Duration(1, "h")),
        ("1d", Duration(1, "d")),
        ("7d", Duration(7, "d")),
        ("30d", Duration(30, "d")),
        ("1mo", Duration(1, "mo")),
        ("2w", Duration(2, "w")),
        (" 3h ", Duration(3, "h")),
    ],
)
def test_parse(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize("text", ["30x", "", "d", "1.5h", "-1d", "0d", "1 month", "mo1"])
def test_rejected_with_a_clear_message(text: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert isinstance(info.value, InvalidRequestError) and isinstance(info.value, ValueError)
    assert info.value.status == 400
    assert info.value.param == "budget_duration"
    assert repr(text) in info.value.message
    assert "30s, 15m, 1h, 1d, 7d, 30d or 1mo" in info.value.message


def test_custom_field_name_in_message() -> None:
    with pytest.raises(DurationError, match=r"invalid duration '30x'") as info:
        parse_duration("30x", field="duration")
    assert info.value.param == "duration"


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("30s", datetime(2025, 3, 12, 15, 31, 0, tzinfo=UTC)),
        ("15m", datetime(2025, 3, 12, 15, 45, tzinfo=UTC)),
        ("1h", datetime(2025, 3, 12, 16, 0, tzinfo=UTC)),
        ("7h", datetime(2025, 3, 12, 21, 0, tzinfo=UTC)),
        ("1d", datetime(2025, 3, 13, tzinfo=UTC)),
        ("7d", datetime(2025, 3, 17, tzinfo=UTC)),  # next Monday
        ("1w", datetime(2025, 3, 17, tzinfo=UTC)),
        ("30d", datetime(2025, 4, 1, tzinfo=UTC)),  # the 1st of next month
        ("1mo", datetime(2025, 4, 1, tzinfo=UTC)),
        ("3mo", datetime(2025, 6, 1, tzinfo=UTC)),
        ("10d", datetime(2025, 3, 22, tzinfo=UTC)),
    ],
)
def test_next_reset_snaps_to_calendar_boundaries(duration: str, expected: datetime) -> None:
    assert next_reset(duration, WED) == expected


def test_boundaries_are_strictly_after_now() -> None:
    monday_midnight = datetime(2025, 3, 17, tzinfo=UTC)
    assert next_reset("7d", monday_midnight) == datetime(2025, 3, 24, tzinfo=UTC)
    assert next_reset("1d", monday_midnight) == datetime(2025, 3, 18, tzinfo=UTC)
    assert next_reset("1h", monday_midnight) == datetime(2025, 3, 17, 1, tzinfo=UTC)
    first = datetime(2025, 4, 1, tzinfo=UTC)
    assert next_reset("1mo", first) == datetime(2025, 5, 1, tzinfo=UTC)


def test_year_and_day_rollovers() -> None:
    late = datetime(2025, 12, 31, 23, 59, 50, tzinfo=UTC)
    assert next_reset("1mo", late) == datetime(2026, 1, 1, tzinfo=UTC)
    assert next_reset("30s", late) == datetime(2026, 1, 1, tzinfo=UTC)
    assert next_reset("5h", late) == datetime(2026, 1, 1, 1, tzinfo=UTC)  # 25h since midnight
    assert next_reset("2mo", datetime(2025, 11, 5, tzinfo=UTC)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_configured_timezone() -> None:
    paris = timezone_named("Europe/Paris")
    # 23:30 UTC on the 12th is 00:30 on the 13th in Paris: next Paris midnight is the 14th.
    now = datetime(2025, 3, 12, 23, 30, tzinfo=UTC)
    assert next_reset("1d", now, paris) == datetime(2025, 3, 13, 23, 0, tzinfo=UTC)
    # Across the spring DST change (30 March 2025), midnight is 22:00 UTC.
    assert next_reset("1d", datetime(2025, 3, 30, 12, tzinfo=UTC), paris) == datetime(
        2025, 3, 30, 22, 0, tzinfo=UTC
    )
    assert next_reset("1mo", now, ZoneInfo("America/New_York")) == datetime(
        2025, 4, 1, 4, 0, tzinfo=UTC
    )
    assert timezone_named(None) is UTC and timezone_named("UTC") is UTC
    with pytest.raises(DurationError, match="unknown timezone 'Mars/Base'"):
        timezone_named("Mars/Base")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_reset("1d", datetime(2025, 1, 1))


def test_add_duration_is_exact_and_months_are_calendar_months() -> None:
    assert add_duration(WED, "30d") == datetime(2025, 4, 11, 15, 30, 45, 123, tzinfo=UTC)
    assert add_duration(WED, "90s") == datetime(2025, 3, 12, 15, 32, 15, 123, tzinfo=UTC)
    jan31 = datetime(2025, 1, 31, 8, tzinfo=UTC)
    assert add_duration(jan31, "1mo") == datetime(2025, 2, 28, 8, tzinfo=UTC)
    assert add_duration(jan31, "13mo") == datetime(2026, 2, 28, 8, tzinfo=UTC)
    with pytest.raises(DurationError, match="invalid duration"):
        add_duration(WED, "soon")
