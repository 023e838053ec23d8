"""The audit log: who changed what, with the row before and after."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bastion.storage.models import AuditLog, Base
from bastion.storage.repositories.base import Context, Page, new_id, paginate

#: columns never copied into the audit log (hashes of keys, encrypted secrets)
REDACTED_COLUMNS = frozenset({"token", "credential_values", "litellm_params"})


def audit_snapshot(row: Base | None) -> dict[str, Any] | None:
    """A JSON-safe copy of a row for ``before``/``after`` (money as strings, times in ISO
    8601); secrets and key hashes are left out."""
    if row is None:
        return None
    out: dict[str, Any] = {}
    for attr in row.__mapper__.column_attrs:
        column_name = attr.columns[0].name
        if column_name in REDACTED_COLUMNS:
            continue
        out[column_name] = _json_safe(getattr(row, attr.key))
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # "1.5", not "1.500000000" or "0E-9"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class AuditRepository:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.session

    async def record(
        self,
        *,
        action: str,
        table_name: str,
        object_id: str,
        changed_by: str | None,
        changed_by_api_key: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditLog:
        row = AuditLog(
            id=new_id(),
            changed_by=changed_by,
            changed_by_api_key=changed_by_api_key,
            action=action,
            table_name=table_name,
            object_id=object_id,
            before_value=before,
            after_value=after,
            updated_at=self.ctx.clock(),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def list(
        self,
        *,
        table_name: str | None = None,
        object_id: str | None = None,
        changed_by: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        size: int = 50,
    ) -> Page[AuditLog]:
        """Newest first."""
        query = sa.select(AuditLog)
        for column, value in (
            (AuditLog.table_name, table_name),
            (AuditLog.object_id, object_id),
            (AuditLog.changed_by, changed_by),
            (AuditLog.action, action),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditLog.updated_at >= since)
        if until is not None:
            query = query.where(AuditLog.updated_at < until)
        query = query.order_by(AuditLog.updated_at.desc(), AuditLog.id)
        return await paginate(self.session, query, page, size)

    async def delete_older_than(self, cutoff: datetime) -> int:
        result = await self.session.execute(sa.delete(AuditLog).where(AuditLog.updated_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
