"""Pure pieces of the spend reports: date parsing, key hashing, the daily summary."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bastion.core.errors import InvalidRequestError
from bastion.services.admin.spend import daily_summary, key_hash, parse_day
from bastion.storage.models import SpendLog
from bastion.storage.repositories import hash_key


@pytest.mark.parametrize("value", ["2024-1-01", "2024-01-01T00:00", "20240101", "", "soon"])
def test_parse_day_refuses_anything_but_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_day(value, "start_date")
    assert info.value.param == "start_date"


def test_parse_day() -> None:
    assert parse_day("2024-02-29", "end_date") == date(2024, 2, 29)
    assert parse_day(None, "end_date") is None


def test_key_hash_takes_a_raw_key_or_its_hash() -> None:
    assert key_hash("sk-abc") == hash_key("sk-abc")
    assert key_hash(hash_key("sk-abc")) == hash_key("sk-abc")


def _log(request_id: str, when: datetime, spend: str, **fields: str) -> SpendLog:
    return SpendLog(request_id=request_id, start_time=when, spend=Decimal(spend), **fields)


def test_daily_summary_sums_per_day_key_user_and_model_and_pads() -> None:
    rows = [
        _log("a", datetime(2024, 1, 1, 1, tzinfo=UTC), "0.1", api_key="k1", user="u", model="m"),
        _log("b", datetime(2024, 1, 1, 2, tzinfo=UTC), "0.2", api_key="k1", user="u", model="n"),
        _log("c", datetime(2024, 1, 2, 3, tzinfo=UTC), "1", model="m"),
    ]
    out = daily_summary(rows, date(2024, 1, 1), date(2024, 1, 3))
    assert out[0] == {
        "k1": 0.3,
        "startTime": "2024-01-01",
        "spend": 0.3,
        "users": {"u": 0.3},
        "models": {"m": 0.1, "n": 0.2},
    }
    assert out[1]["spend"] == 1 and out[1]["users"] == {"": 1}
    assert out[2] == {"startTime": "2024-01-03", "spend": 0, "users": {}, "models": {}}
    assert daily_summary([], date(2024, 1, 1), date(2024, 1, 3)) == []


def test_lists_read_every_page() -> None:
    import asyncio

    from bastion.interfaces.http.admin.routes_customers import _all
    from bastion.storage.repositories import Page

    class Rows:
        async def list(self, *, page: int = 1, size: int = 50) -> Page[int]:
            items = list(range(2500))[(page - 1) * size : page * size]
            return Page(items=items, total=2500, page=page, size=size)

    assert asyncio.run(_all(Rows())) == list(range(2500))  # type: ignore[arg-type]
