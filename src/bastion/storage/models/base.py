"""Declarative base with a constraint naming convention.

Named constraints keep migrations portable (SQLite batch mode needs names to drop
or alter a constraint) and let unique violations be mapped back to their column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, MappedColumn, mapped_column

from bastion.storage.types import JSONType, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        Decimal: Money(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        list[str]: JSONType,
    }


def money(*, nullable: bool = True) -> MappedColumn[Any]:
    """A Money column; ``spend`` style columns pass ``nullable=False`` (default 0)."""
    if nullable:
        return mapped_column(Money(), nullable=True)
    return mapped_column(Money(), nullable=False, default=Decimal(0), server_default="0")


def json_list() -> MappedColumn[Any]:
    return mapped_column(JSONType, nullable=False, default=list)


def json_dict(name: str | None = None) -> MappedColumn[Any]:
    if name is None:
        return mapped_column(JSONType, nullable=False, default=dict)
    return mapped_column(name, JSONType, nullable=False, default=dict)


def created_at() -> MappedColumn[Any]:
    return mapped_column(UTCDateTime(), nullable=False, default=utc_now)


def updated_at() -> MappedColumn[Any]:
    return mapped_column(UTCDateTime(), nullable=False, default=utc_now, onupdate=utc_now)


def flag() -> MappedColumn[Any]:
    return mapped_column(sa.Boolean(), nullable=False, default=False, server_default=sa.false())


def int_limit() -> MappedColumn[Any]:
    return mapped_column(sa.BigInteger(), nullable=True)


def counter() -> MappedColumn[Any]:
    return mapped_column(sa.BigInteger(), nullable=False, default=0, server_default="0")


def table_of(model: type[Base]) -> sa.Table:
    """The Core table of a mapped class, typed as a Table."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table
