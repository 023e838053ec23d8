"""Reusable budgets (``/budget/*``) and end users ("customers", ``/customer/*``).

A customer either points at an existing budget (``budget_id``) or gets one of its
own when budget fields (``max_budget``, ``tpm_limit``…) are sent, as LiteLLM does.
Every change writes an audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bastion.core.errors import InvalidRequestError
from bastion.policy.rbac import Actor
from bastion.storage.errors import NotFoundError
from bastion.storage.models import Base, Budget, EndUser
from bastion.storage.repositories import Store, audit_snapshot

#: who made a change when the caller is not a user (the master key, open mode)
MASTER = "litellm_proxy_admin"
BUDGET_FIELDS = (
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)


def plain(value: Any) -> Any:
    """JSON-ready: money as a number, times in ISO 8601."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def budget_dict(budget: Budget) -> dict[str, Any]:
    return {
        attr.columns[0].name: plain(getattr(budget, attr.key))
        for attr in budget.__mapper__.column_attrs
    }


def customer_dict(end_user: EndUser, budget: Budget | None) -> dict[str, Any]:
    """LiteLLM's CustomerResponse."""
    return {
        "user_id": end_user.user_id,
        "alias": end_user.alias,
        "spend": plain(end_user.spend),
        "allowed_model_region": end_user.allowed_model_region,
        "default_model": end_user.default_model,
        "budget_id": end_user.budget_id,
        "litellm_budget_table": budget_dict(budget) if budget is not None else None,
        "blocked": end_user.blocked,
        "metadata": end_user.metadata_,
    }


async def _audit(
    store: Store,
    actor: Actor,
    action: str,
    table: str,
    ident: str,
    before: dict[str, Any] | None,
    after: Base | None,
) -> None:
    await store.audit.record(
        action=action,
        table_name=table,
        object_id=ident,
        changed_by=actor.user_id or MASTER,
        before=before,
        after=audit_snapshot(after),
    )


# -- budgets ---------------------------------------------------------------------------


async def create_budget(store: Store, actor: Actor, fields: Mapping[str, Any]) -> Budget:
    budget = await store.budgets.create(
        Budget(**{k: v for k, v in fields.items() if v is not None}, created_by=actor.user_id)
    )
    await _audit(store, actor, "created", "budgets", budget.budget_id, None, budget)
    return budget


async def update_budget(
    store: Store, actor: Actor, budget_id: str, changes: Mapping[str, Any]
) -> Budget:
    before = audit_snapshot(await store.budgets.get(budget_id))
    budget = await store.budgets.update(budget_id, changes)
    await _audit(store, actor, "updated", "budgets", budget_id, before, budget)
    return budget


async def delete_budget(store: Store, actor: Actor, budget_id: str) -> Budget:
    """Refused with 409 while an end user or organization still uses it."""
    budget = await store.budgets.delete(budget_id)
    await _audit(store, actor, "deleted", "budgets", budget_id, audit_snapshot(budget), None)
    return budget


# -- customers -------------------------------------------------------------------------


async def budget_of(store: Store, end_user: EndUser) -> Budget | None:
    return await store.budgets.find(end_user.budget_id) if end_user.budget_id else None


async def create_customer(
    store: Store, actor: Actor, fields: Mapping[str, Any], budget_fields: Mapping[str, Any]
) -> EndUser:
    values = dict(fields)
    if budget_fields:
        if values.get("budget_id") is not None:
            raise InvalidRequestError(
                "set either budget_id or budget fields (max_budget…), not both", param="budget_id"
            )
        values["budget_id"] = (await create_budget(store, actor, budget_fields)).budget_id
    end_user = await store.end_users.create(EndUser(**values))
    await _audit(store, actor, "created", "end_users", end_user.user_id, None, end_user)
    return end_user


async def update_customer(
    store: Store,
    actor: Actor,
    user_id: str,
    changes: Mapping[str, Any],
    budget_fields: Mapping[str, Any],
) -> EndUser:
    current = await store.end_users.get(user_id)
    before = audit_snapshot(current)
    values = dict(changes)
    if budget_fields:
        if values.get("budget_id") is not None:
            raise InvalidRequestError(
                "set either budget_id or budget fields (max_budget…), not both", param="budget_id"
            )
        if current.budget_id is not None:
            await update_budget(store, actor, current.budget_id, budget_fields)
        else:
            values["budget_id"] = (await create_budget(store, actor, budget_fields)).budget_id
    end_user = await store.end_users.update(user_id, values) if values else current
    await _audit(store, actor, "updated", "end_users", user_id, before, end_user)
    return end_user


async def delete_customers(store: Store, actor: Actor, user_ids: list[str]) -> int:
    """All or nothing: one unknown id is a 404 and nothing is deleted."""
    found = {e.user_id for e in await store.end_users.get_many(user_ids)}
    missing = [u for u in user_ids if u not in found]
    if missing:
        raise NotFoundError("end user", missing[0], field="user_ids")
    for user_id in dict.fromkeys(user_ids):
        row = await store.end_users.delete(user_id)
        await _audit(store, actor, "deleted", "end_users", user_id, audit_snapshot(row), None)
    return len(found)


async def set_blocked(
    store: Store, actor: Actor, user_ids: list[str], blocked: bool
) -> list[EndUser]:
    """Block creates unknown end users (as LiteLLM does, so a caller can be refused
    before their first request); unblocking an unknown one is a 404."""
    out = []
    for user_id in dict.fromkeys(user_ids):
        current = await store.end_users.find(user_id)
        if current is None and not blocked:
            raise NotFoundError("end user", user_id, field="user_ids")
        if current is None:
            row = await store.end_users.create(EndUser(user_id=user_id, blocked=True))
            await _audit(store, actor, "created", "end_users", user_id, None, row)
        else:
            before = audit_snapshot(current)
            row = await store.end_users.update(user_id, {"blocked": blocked})
            await _audit(store, actor, "updated", "end_users", user_id, before, row)
        out.append(row)
    return out
