"""Audit-log entries for management changes, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from bastion.policy.rbac import Actor
from bastion.storage.models import Base
from bastion.storage.repositories import Store, audit_snapshot

#: who made a change when the caller is not a user (the master key, open mode)
MASTER = "litellm_proxy_admin"


def changed_by(actor: Actor) -> str:
    return actor.user_id or MASTER


def snapshot(row: Base | None) -> dict[str, Any] | None:
    """Take ``before`` prior to changing the row (the ORM object is updated in place)."""
    return audit_snapshot(row)


async def record(
    store: Store,
    actor: Actor,
    action: str,
    table_name: str,
    object_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: Base | None = None,
) -> None:
    await store.audit.record(
        action=action,
        table_name=table_name,
        object_id=object_id,
        changed_by=changed_by(actor),
        before=before,
        after=audit_snapshot(after),
    )
