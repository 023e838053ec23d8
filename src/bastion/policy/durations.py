"""Budget and key durations (``30s``, ``15m``, ``1h``, ``1d``, ``7d``, ``30d``, ``1mo``).

Two different questions use a duration:

* **When does a budget reset next?** (:func:`next_reset`) Resets snap to calendar
  boundaries in a configured timezone (UTC by default), as LiteLLM does, so every
  budget with the same duration resets at the same instant:

  ========  ===========================================================
  ``Ns``     the next multiple of N seconds since local midnight
  ``Nm``     the next multiple of N minutes since local midnight
  ``Nh``     the next multiple of N hours since local midnight
  ``1d``     the next midnight
  ``7d``     the next Monday at midnight (``1w`` too)
  ``30d``    the 1st of the next month at midnight
  ``Nd``     midnight today plus N days (other N; ``Nw`` is ``7N`` days)
  ``Nmo``    the 1st of the month N months ahead, at midnight
  ========  ===========================================================

* **When does a key expire?** (:func:`add_duration`) Exactly that long from now;
  months are calendar months (the day is clamped to the month's last day).

All functions are pure: the caller passes ``now`` (an aware datetime) and the
results are aware datetimes in UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bastion.core.errors import InvalidRequestError

Unit = Literal["s", "m", "h", "d", "w", "mo"]

_PATTERN = re.compile(r"^\s*(\d+)\s*(mo|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXAMPLES = "30s, 15m, 1h, 1d, 7d, 30d or 1mo"


class DurationError(InvalidRequestError, ValueError):
    """A duration string that cannot be parsed; a 400 when it reaches a client."""


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def fixed_length(self) -> timedelta | None:
        """The exact length, or None for calendar months (their length varies)."""
        if self.unit == "mo":
            return None
        return timedelta(seconds=self.amount * _UNIT_SECONDS[self.unit])


def parse_duration(text: str, *, field: str = "budget_duration") -> Duration:
    """Parse ``"30d"`` into ``Duration(30, "d")``; anything else is a DurationError."""
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise DurationError(
            f"invalid {field} {text!r}: use a whole number followed by s, m, h, d, w or mo "
            f"(e.g. {EXAMPLES})",
            param=field,
        )
    amount = int(match.group(1))
    if amount <= 0:
        raise DurationError(
            f"invalid {field} {text!r}: the number must be at least 1 (e.g. {EXAMPLES})",
            param=field,
        )
    unit: Unit = match.group(2)  # type: ignore[assignment]
    return Duration(amount, unit)


def timezone_named(name: str | None) -> tzinfo:
    """The tz for ``name`` (an IANA name such as ``Europe/Paris``); UTC when empty."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DurationError(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'",
            param="timezone",
        ) from None


def next_reset(duration: Duration | str, now: datetime, tz: tzinfo = UTC) -> datetime:
    """The first calendar boundary for ``duration`` strictly after ``now`` (see module doc)."""
    d = parse_duration(duration) if isinstance(duration, str) else duration
    _require_aware(now)
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    wall = local.replace(tzinfo=None)
    if d.unit in ("s", "m", "h"):
        step = d.amount * _UNIT_SECONDS[d.unit]
        elapsed = (wall - midnight).total_seconds()
        boundary = midnight + timedelta(seconds=(int(elapsed // step) + 1) * step)
    elif d.unit == "mo":
        boundary = _first_of_month(midnight, d.amount)
    else:
        days = d.amount * (7 if d.unit == "w" else 1)
        if days == 1:
            boundary = midnight + timedelta(days=1)
        elif days == 7:
            boundary = midnight + timedelta(days=7 - midnight.weekday())
        elif days == 30:
            boundary = _first_of_month(midnight, 1)
        else:
            boundary = midnight + timedelta(days=days)
    result = _localize(boundary, tz)
    if result <= now:  # a DST fold can map the wall-clock boundary back onto ``now``
        result = now + timedelta(seconds=1)
    return result


def add_duration(now: datetime, duration: Duration | str, *, field: str = "duration") -> datetime:
    """``now`` plus the duration exactly (key expiry); months are calendar months."""
    d = parse_duration(duration, field=field) if isinstance(duration, str) else duration
    _require_aware(now)
    length = d.fixed_length
    if length is not None:
        return (now + length).astimezone(UTC)
    month_index = now.month - 1 + d.amount
    year, month = now.year + month_index // 12, month_index % 12 + 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day).astimezone(UTC)


def _first_of_month(midnight: datetime, months_ahead: int) -> datetime:
    month_index = midnight.month - 1 + months_ahead
    return midnight.replace(
        year=midnight.year + month_index // 12, month=month_index % 12 + 1, day=1
    )


def _localize(wall: datetime, tz: tzinfo) -> datetime:
    """Wall-clock time in ``tz`` to an aware UTC datetime."""
    return wall.replace(tzinfo=tz).astimezone(UTC)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
