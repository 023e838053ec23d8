"""Portable column types: exact money, UTC datetimes and JSON.

Money is USD as :class:`decimal.Decimal` in Python, exact to 1e-9 (a nano-dollar):

* PostgreSQL stores ``NUMERIC(18, 9)``: exact, and ``spend = spend + x`` is exact.
* SQLite has no exact decimal type (NUMERIC columns hold REAL), so there the same
  value is stored as a ``BIGINT`` count of nano-dollars. Integer arithmetic in SQL
  stays exact, and the largest storable amount is about 9.2 billion USD.

Every amount is rounded half-to-even to 9 decimal places on the way in, so many
small increments add up exactly to the cent on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_PLACES = 9
_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
_SCALE = 10**MONEY_PLACES


def to_money(value: Decimal | float | int | str) -> Decimal:
    """A money amount as a Decimal rounded to 9 places; floats go through their repr."""
    if isinstance(value, float):
        value = repr(value)
    amount = value if isinstance(value, Decimal) else Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"money amount must be finite, got {value!r}")
    return amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


class Money(TypeDecorator[Decimal]):
    """USD amount: NUMERIC(18, 9) on PostgreSQL, BIGINT nano-dollars on SQLite."""

    impl = sa.Numeric(18, MONEY_PLACES, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(18, MONEY_PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_money(value)
        if dialect.name == "sqlite":
            return int(amount.scaleb(MONEY_PLACES))
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_PLACES).quantize(_QUANTUM)
        return to_money(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored in UTC (TIMESTAMPTZ on PostgreSQL, naive UTC text on SQLite).

    Naive datetimes are refused: a timestamp without a zone is a bug waiting to happen.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text from SQLite aggregate functions
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON documents: JSONB on PostgreSQL, JSON (text) elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
