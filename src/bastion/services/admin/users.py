"""Users: /user/new|update|delete|info|list in LiteLLM's shapes.

``/user/new`` creates a key for the user unless ``auto_create_key`` is false (LiteLLM's
default); the key is in the answer once and stored only as its hash.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bastion.core.errors import InvalidRequestError
from bastion.policy.rbac import Actor, can_read_user, deny, require_admin, require_read_all
from bastion.services.admin import audit
from bastion.services.admin.key_material import new_key_material
from bastion.services.admin.shapes import row_dict
from bastion.storage.errors import NotFoundError
from bastion.storage.models import User, VirtualKey
from bastion.storage.repositories import Store
from bastion.storage.repositories.users import check_role

TABLE = "users"


class UserFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_alias: str | None = None
    user_email: str | None = None
    user_role: str | None = None
    max_budget: Decimal | None = None
    soft_budget: Decimal | None = None
    budget_duration: str | None = None
    models: list[str] | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None


class NewUser(UserFields):
    user_id: str | None = Field(default=None, min_length=1)
    teams: list[str] = Field(default_factory=list)
    auto_create_key: bool = True
    key_alias: str | None = None


class UpdateUser(UserFields):
    user_id: str | None = Field(default=None, min_length=1)


class DeleteUsers(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_ids: list[str] = Field(min_length=1)


async def create_user(store: Store, actor: Actor, request: NewUser) -> dict[str, Any]:
    require_admin(actor, "create users")
    check_role(request.user_role)
    values = request.model_dump(
        exclude_unset=True, exclude={"teams", "auto_create_key", "key_alias"}
    )
    values["metadata_"] = values.pop("metadata", None) or {}
    user = User(**{k: v for k, v in values.items() if v is not None})
    user.user_role = request.user_role or "internal_user"
    user.created_by = audit.changed_by(actor)
    await store.users.create(user)
    await audit.record(store, actor, "created", TABLE, user.user_id, after=user)
    for team_id in request.teams:
        row = await store.members.add(team_id, user.user_id, "user")
        await audit.record(
            store, actor, "created", "team_memberships", f"{team_id}:{user.user_id}", after=row
        )
    shaped = row_dict(user)
    shaped["teams"] = list(request.teams)
    shaped["key"] = None
    if request.auto_create_key:
        material = new_key_material()
        key = VirtualKey(
            token=material.token,
            key_name=material.key_name,
            key_alias=request.key_alias,
            user_id=user.user_id,
            models=list(user.models or []),
            created_by=audit.changed_by(actor),
        )
        await store.keys.create(key)
        await audit.record(store, actor, "created", "virtual_keys", material.key_name, after=key)
        shaped.update(
            key=material.key,
            token=material.token,
            key_name=material.key_name,
            key_alias=key.key_alias,
            expires=None,
        )
    return shaped


async def update_user(store: Store, actor: Actor, request: UpdateUser) -> dict[str, Any]:
    require_admin(actor, "update users")
    user_id = request.user_id
    if user_id is None:
        if request.user_email is None:
            raise InvalidRequestError("user_id: give user_id (or user_email)", param="user_id")
        found = await store.users.find_by_email(request.user_email)
        if found is None:
            raise NotFoundError("user", request.user_email, field="user_email")
        user_id = found.user_id
    changes = request.model_dump(exclude_unset=True, exclude={"user_id"})
    for name, empty in (("models", []), ("metadata", {}), ("blocked", False)):
        if name in changes and changes[name] is None:
            changes[name] = empty
    if "user_role" in changes:
        if changes["user_role"] is None:
            del changes["user_role"]
        else:
            check_role(changes["user_role"])
    before = audit.snapshot(await store.users.get(user_id))
    user = await store.users.update(user_id, changes)
    await audit.record(store, actor, "updated", TABLE, user_id, before=before, after=user)
    return {"user_id": user_id, "data": row_dict(user)}


async def delete_users(store: Store, actor: Actor, user_ids: list[str]) -> dict[str, Any]:
    """Delete every user (all must exist); their keys and memberships go with them."""
    require_admin(actor, "delete users")
    for user_id in user_ids:
        before = audit.snapshot(await store.users.get(user_id))
        await store.users.delete(user_id)
        await audit.record(store, actor, "deleted", TABLE, user_id, before=before)
    return {"deleted_users": user_ids}


async def user_info(store: Store, actor: Actor, user_id: str | None) -> dict[str, Any]:
    """One user with their keys and teams; without ``user_id``, the caller."""
    user_id = user_id or actor.user_id
    if user_id is None:
        raise InvalidRequestError("user_id: give the user_id to read", param="user_id")
    if not can_read_user(actor, user_id):
        raise deny(f"read user {user_id!r}")
    user = await store.users.get(user_id)
    keys = await store.keys.search(user_id=user_id, size=1000)
    teams = await store.teams.teams_of_user(user_id)
    return {
        "user_id": user_id,
        "user_info": row_dict(user),
        "keys": [row_dict(k) for k in keys.items],
        "teams": [row_dict(t) for t in teams],
    }


async def list_users(
    store: Store,
    actor: Actor,
    *,
    role: str | None,
    user_ids: list[str] | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    require_read_all(actor, "the list of users")
    if role is not None:
        check_role(role)
    result = await store.users.search(page=page, size=page_size, user_role=role, user_ids=user_ids)
    return {
        "users": [row_dict(u) for u in result.items],
        "total": result.total,
        "page": result.page,
        "page_size": result.size,
        "total_pages": result.pages,
    }
