"""What every repository shares: the transaction context, pagination, a generic CRUD
base and the translation of database integrity errors into typed errors."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.core.errors import InvalidRequestError
from bastion.policy.durations import next_reset, parse_duration
from bastion.storage.crypto import Cipher
from bastion.storage.errors import DuplicateError, InUseError, MissingReferenceError, NotFoundError
from bastion.storage.models import Base

M = TypeVar("M", bound=Base)
T = TypeVar("T")

MAX_PAGE_SIZE = 1000
_MONEY_LIMIT_FIELDS = ("max_budget", "soft_budget", "max_budget_in_team", "team_member_budget")
_LIMIT_FIELDS = ("tpm_limit", "rpm_limit", "max_parallel_requests")
_PG_CONSTRAINT = re.compile(r'constraint "([^"]+)"')
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")


@dataclass(frozen=True)
class Context:
    """The transaction and services a repository works with."""

    session: AsyncSession
    clock: Callable[[], datetime]
    budget_tz: tzinfo
    cipher: Cipher | None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``page`` counts from 1."""

    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return (self.total + self.size - 1) // self.size if self.size else 0


def new_id() -> str:
    return str(uuid.uuid4())


def check_page(page: int, size: int) -> None:
    if page < 1:
        raise InvalidRequestError("page must be 1 or more", param="page")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"size must be between 1 and {MAX_PAGE_SIZE}", param="size")


async def paginate(session: AsyncSession, query: sa.Select[Any], page: int, size: int) -> Page[Any]:
    check_page(page, size)
    total = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.limit(size).offset((page - 1) * size))
    return Page(items=list(rows), total=int(total or 0), page=page, size=size)


def violated_field(exc: IntegrityError, table: sa.Table) -> str | None:
    """The column a unique, primary-key or (PostgreSQL only) foreign-key violation is
    about, from the driver's message."""
    message = str(exc.orig)
    match = _PG_CONSTRAINT.search(message)
    if match:
        name = match.group(1)
        for constraint in table.constraints:
            if constraint.name == name and isinstance(
                constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint | sa.ForeignKeyConstraint
            ):
                return ",".join(c.name for c in constraint.columns)
        return None
    match = _SQLITE_UNIQUE.search(message)
    if match:
        return ",".join(part.split(".")[-1] for part in match.group(1).split(", "))
    return None


def is_foreign_key_violation(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return "FOREIGN KEY constraint failed" in message or "foreign key constraint" in message


def _constraint_hint(exc: IntegrityError) -> str:
    """The violated constraint's name (never the row's values) for a 400 message."""
    match = _PG_CONSTRAINT.search(str(exc.orig))
    if match:
        return f"constraint {match.group(1)} violated"
    first = str(exc.orig).splitlines()[0]
    return first.split(": ", 1)[0] if ": " in first else "a constraint was violated"


def is_unique_violation(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return "UNIQUE constraint failed" in message or "duplicate key value" in message


class CrudRepository(Generic[M]):
    """Create/read/update/delete/list for one table keyed by one string column.

    Subclasses set the class attributes; ``references`` maps a foreign-key field to
    the model it points at so a dangling reference is reported by field name.
    """

    model: ClassVar[type[Any]]
    entity: ClassVar[str]
    id_field: ClassVar[str]
    references: ClassVar[Mapping[str, type[Base]]] = {}
    immutable: ClassVar[frozenset[str]] = frozenset({"created_at", "created_by"})
    #: columns whose values must not appear in errors, with the name to report instead
    secret_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.session

    # -- reads -------------------------------------------------------------------------

    async def find(self, ident: str) -> M | None:
        row: M | None = await self.session.get(self.model, ident)
        return row

    async def get(self, ident: str) -> M:
        row = await self.find(ident)
        if row is None:
            raise NotFoundError(self.entity, ident, field=self.id_field)
        return row

    async def get_many(self, idents: Sequence[str]) -> builtins.list[M]:
        if not idents:
            return []
        column = getattr(self.model, self.id_field)
        rows = await self.session.scalars(sa.select(self.model).where(column.in_(list(idents))))
        return list(rows)

    async def list(self, *, page: int = 1, size: int = 50, **filters: Any) -> Page[M]:
        """Rows whose columns equal every non-None filter, oldest first."""
        query = sa.select(self.model)
        for name, value in filters.items():
            if value is None:
                continue
            column = self._column(name, param=name)
            query = query.where(column == value)
        query = query.order_by(*self._order())
        return await paginate(self.session, query, page, size)

    def _order(self) -> builtins.list[Any]:
        cols = [getattr(self.model, self.id_field)]
        if hasattr(self.model, "created_at"):
            cols.insert(0, self.model.created_at)
        return cols

    # -- writes ------------------------------------------------------------------------

    async def create(self, row: M) -> M:
        now = self.ctx.clock()
        if getattr(row, self.id_field, None) is None:
            setattr(row, self.id_field, new_id())
        for stamp in ("created_at", "updated_at"):
            if hasattr(row, stamp) and getattr(row, stamp, None) is None:
                setattr(row, stamp, now)
        self._validate(vars_of(row))
        self._schedule_reset(row, now)
        await self._check_references(vars_of(row))
        self.session.add(row)
        await self._flush(getattr(row, self.id_field), vars_of(row))
        return row

    async def update(self, ident: str, changes: Mapping[str, Any]) -> M:
        """Set the given fields (``metadata`` means the metadata column); unknown or
        read-only fields are a 400."""
        values = {attr_name(name): value for name, value in changes.items()}
        for name in changes:
            if name == self.id_field or name in self.immutable:
                raise InvalidRequestError(f"{name} cannot be changed", param=name)
            self._column(name, param=name)
        row = await self.get(ident)
        self._validate(values)
        await self._check_references(values)
        for name, value in values.items():
            setattr(row, name, value)
        if hasattr(row, "updated_at"):
            row.updated_at = self.ctx.clock()
        if "budget_duration" in values and "budget_reset_at" not in values:
            setattr(row, "budget_reset_at", None)  # noqa: B010 - not every model has it
            self._schedule_reset(row, self.ctx.clock())
        await self._flush(ident, values)
        return row

    async def delete(self, ident: str) -> M:
        row = await self.get(ident)
        await self.session.delete(row)
        try:
            await self.session.flush()
        except IntegrityError:
            raise InUseError(self.entity, ident) from None
        return row

    # -- helpers -----------------------------------------------------------------------

    def _column(self, name: str, *, param: str) -> Any:
        attr = attr_name(name)
        if attr not in self.model.__table__.columns and attr not in self.model.__mapper__.attrs:
            raise InvalidRequestError(f"unknown field {name!r} for {self.entity}", param=param)
        return getattr(self.model, attr)

    def _validate(self, values: Mapping[str, Any]) -> None:
        for name in _MONEY_LIMIT_FIELDS:
            value = values.get(name)
            if value is not None and Decimal(str(value)) < 0:
                raise InvalidRequestError(f"{name} must not be negative", param=name)
        for name in _LIMIT_FIELDS:
            value = values.get(name)
            if value is not None and int(value) < 0:
                raise InvalidRequestError(f"{name} must not be negative", param=name)
        duration = values.get("budget_duration")
        if duration is not None:
            parse_duration(duration)

    def _schedule_reset(self, row: Any, now: datetime) -> None:
        duration = getattr(row, "budget_duration", None)
        if duration and getattr(row, "budget_reset_at", None) is None:
            row.budget_reset_at = next_reset(duration, now, self.ctx.budget_tz)

    async def _check_references(self, values: Mapping[str, Any]) -> None:
        for name, target in self.references.items():
            value = values.get(name)
            if value is not None and await self.session.get(target, value) is None:
                raise MissingReferenceError(name, value)

    async def _flush(self, ident: object, values: Mapping[str, Any]) -> None:
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise self._translate(exc, ident, values) from None

    def _translate(
        self, exc: IntegrityError, ident: object, values: Mapping[str, Any]
    ) -> Exception:
        table: sa.Table = self.model.__table__
        if is_unique_violation(exc):
            field = violated_field(exc, table) or self.id_field
            if field in self.secret_fields:
                return DuplicateError(self.entity, self.secret_fields[field])
            value = ident if field == self.id_field else values.get(attr_name(field))
            return DuplicateError(self.entity, field, value)
        if is_foreign_key_violation(exc):
            fk_field = violated_field(exc, table)
            if fk_field is not None:
                return MissingReferenceError(fk_field, values.get(attr_name(fk_field)))
            return InvalidRequestError(f"{self.entity} refers to a record that does not exist")
        return InvalidRequestError(f"invalid value for {self.entity}: {_constraint_hint(exc)}")


def attr_name(field: str) -> str:
    """The ORM attribute for an API field name (``metadata`` is ``metadata_``)."""
    return "metadata_" if field == "metadata" else field


def vars_of(row: Any) -> dict[str, Any]:
    """The mapped column values set on ``row`` (ORM instance) by attribute name."""
    return {
        attr.key: getattr(row, attr.key)
        for attr in row.__mapper__.column_attrs
        if attr.key in row.__dict__
    }
