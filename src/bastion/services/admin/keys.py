"""Virtual keys on the management API: generate, update, delete, read, list, regenerate,
block. Every change is authorised with :mod:`bastion.policy.rbac` and audited in the same
transaction; the caller refreshes the in-memory key cache afterwards.

A key itself exists only in the generate/regenerate answer: the database keeps its
sha256 hex (``token``) and its display form (``key_name``, ``sk-...abcd``), and the
audit log names keys by that display form, never by the hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.core.errors import InvalidRequestError
from bastion.policy.durations import add_duration
from bastion.policy.rbac import (
    INTERNAL_USER,
    Actor,
    can_manage_key,
    can_own_key,
    can_read_key,
    deny,
    require_management,
)
from bastion.services.admin.key_material import new_key_material
from bastion.services.admin.key_requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    KeyFields,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)
from bastion.services.admin.key_views import key_view
from bastion.storage.database import Database
from bastion.storage.errors import NotFoundError
from bastion.storage.models import VirtualKey
from bastion.storage.repositories import Store
from bastion.storage.repositories.audit import audit_snapshot
from bastion.storage.repositories.base import attr_name
from bastion.storage.repositories.keys import hash_key, key_display_name

KEY_PREFIX = "sk-"
_HASH = re.compile(r"^[0-9a-f]{64}$")
TABLE = "virtual_keys"
#: ``changed_by`` for the master key (and open mode), which belong to no user
MASTER_ACTOR = "proxy_admin"
NEVER = "-1"


def new_key() -> str:
    return new_key_material().key


def token_of(key: str) -> str:
    """The stored hash for ``key``, which may be the key itself or already its hash."""
    return key if _HASH.match(key) else hash_key(key)


def actor_name(actor: Actor) -> str:
    return actor.user_id or MASTER_ACTOR


@dataclass(frozen=True)
class KeyService:
    """The /key operations over one database; ``is_master`` tells the master key apart
    so it cannot be registered as a virtual key."""

    database: Database
    is_master: Callable[[str], bool]

    # -- writes --------------------------------------------------------------------------

    async def generate(self, actor: Actor, req: GenerateKeyRequest) -> dict[str, Any]:
        require_management(actor)
        raw = self._custom_key(req.key, "key") if req.key is not None else new_key()
        values = req.column_changes()
        if actor.role == INTERNAL_USER and values.get("user_id") is None:
            values["user_id"] = actor.user_id  # an internal user's keys are their own
        now = self.database.clock()
        async with self.database.transaction() as store:
            await self._check_owner(store, actor, values.get("user_id"), values.get("team_id"))
            self._check_organization(actor, values)
            by = actor_name(actor)
            row = VirtualKey(
                token=hash_key(raw),
                key_name=key_display_name(raw),
                expires=_expiry(req, now),
                spend=Decimal(0),
                created_by=by,
                updated_by=by,
                **{attr_name(name): value for name, value in values.items()},
            )
            row = await store.keys.create(row)
            await self._audit(store, actor, "created", row, None, audit_snapshot(row))
            return {**key_view(row), "key": raw, "token_id": row.token}

    async def update(self, actor: Actor, req: UpdateKeyRequest) -> dict[str, Any]:
        require_management(actor)
        async with self.database.transaction() as store:
            row = await self._managed(store, actor, req.key, "update")
            changes = await self._changes(store, actor, row, req)
            before = audit_snapshot(row)
            row = await store.keys.update(row.token, changes)
            await self._audit(store, actor, "updated", row, before, audit_snapshot(row))
            return key_view(row)

    async def delete(self, actor: Actor, req: DeleteKeysRequest) -> dict[str, Any]:
        require_management(actor)
        if not req.keys and not req.key_aliases:
            raise InvalidRequestError("send keys or key_aliases to delete", param="keys")
        async with self.database.transaction() as store:
            rows: list[VirtualKey] = []
            for key in req.keys or []:
                rows.append(await self._managed(store, actor, key, "delete"))
            for alias in req.key_aliases or []:
                found = await store.keys.find_by_alias(alias)
                if found is None:
                    raise NotFoundError("key", alias, field="key_aliases")
                self._require(can_manage_key(actor, found.user_id, found.team_id), "delete")
                rows.append(found)
            unique = {row.token: row for row in rows}
            for row in unique.values():
                await self._audit(store, actor, "deleted", row, audit_snapshot(row), None)
            await store.keys.delete_many(tokens=list(unique))
        return {"deleted_keys": list(req.keys or []) + list(req.key_aliases or [])}

    async def regenerate(self, actor: Actor, req: RegenerateKeyRequest) -> dict[str, Any]:
        require_management(actor)
        if not req.key:
            raise InvalidRequestError("key: the key to regenerate is required", param="key")
        raw = self._custom_key(req.new_key, "new_key") if req.new_key is not None else new_key()
        now = self.database.clock()
        grace_until = (
            add_duration(now, req.grace_period, field="grace_period") if req.grace_period else None
        )
        async with self.database.transaction() as store:
            row = await self._managed(store, actor, req.key, "regenerate")
            changes = await self._changes(store, actor, row, req)
            before = audit_snapshot(row)
            row = await store.keys.regenerate(
                row.token,
                hash_key(raw),
                new_key_name=key_display_name(raw),
                grace_until=grace_until,
            )
            row = await store.keys.update(row.token, changes)
            await self._audit(store, actor, "regenerated", row, before, audit_snapshot(row))
            return {**key_view(row), "key": raw, "token_id": row.token}

    async def set_blocked(self, actor: Actor, key: str, blocked: bool) -> dict[str, Any]:
        require_management(actor)
        action = "blocked" if blocked else "unblocked"
        async with self.database.transaction() as store:
            row = await self._managed(store, actor, key, "block" if blocked else "unblock")
            before = audit_snapshot(row)
            row = await store.keys.update(
                row.token, {"blocked": blocked, "updated_by": actor_name(actor)}
            )
            await self._audit(store, actor, action, row, before, audit_snapshot(row))
            return key_view(row)

    # -- reads ---------------------------------------------------------------------------

    async def info(self, actor: Actor, key: str) -> dict[str, Any]:
        require_management(actor)
        async with self.database.transaction() as store:
            row = await store.keys.get(token_of(key))
            self._require(can_read_key(actor, row.user_id, row.team_id), "read this key")
            view = key_view(row)
        view.pop("token")
        return {"key": key, "info": view}

    async def list(
        self,
        actor: Actor,
        *,
        team_id: str | None,
        user_id: str | None,
        key_alias: str | None,
        page: int,
        size: int,
        full: bool,
    ) -> dict[str, Any]:
        """Admins and viewers list every key; a team admin lists a team of theirs; anyone
        else lists their own keys."""
        require_management(actor)
        if not actor.reads_all:
            team_visible = team_id is not None and team_id in actor.admin_teams
            if not team_visible:
                if team_id is not None and team_id not in actor.member_teams:
                    raise deny(f"list the keys of team {team_id!r}")
                if user_id is not None and user_id != actor.user_id:
                    raise deny("list another user's keys")
                user_id = actor.user_id
        async with self.database.transaction() as store:
            result = await store.keys.search(
                page=page, size=size, team_id=team_id, user_id=user_id, key_alias=key_alias
            )
        keys: list[Any] = [key_view(row) if full else row.token for row in result.items]
        return {
            "keys": keys,
            "total_count": result.total,
            "current_page": result.page,
            "total_pages": result.pages,
        }

    # -- helpers -------------------------------------------------------------------------

    def _custom_key(self, key: str, field: str) -> str:
        if not key.startswith(KEY_PREFIX) or len(key) <= len(KEY_PREFIX):
            raise InvalidRequestError(f"{field} must start with {KEY_PREFIX!r}", param=field)
        if self.is_master(key):
            raise InvalidRequestError(f"{field} cannot be the master key", param=field)
        return key

    async def _managed(self, store: Store, actor: Actor, key: str, action: str) -> VirtualKey:
        row = await store.keys.get(token_of(key))
        self._require(can_manage_key(actor, row.user_id, row.team_id), f"{action} this key")
        return row

    async def _changes(
        self, store: Store, actor: Actor, row: VirtualKey, req: KeyFields
    ) -> dict[str, Any]:
        """The column changes of an update, authorised (moving a key to another team or
        user needs the right to own a key there)."""
        changes = req.column_changes()
        if "user_id" in changes or "team_id" in changes:
            await self._check_owner(
                store,
                actor,
                changes.get("user_id", row.user_id),
                changes.get("team_id", row.team_id),
            )
        self._check_organization(actor, changes)
        if "duration" in req.model_fields_set:
            changes["expires"] = _expiry(req, self.database.clock())
        changes["updated_by"] = actor_name(actor)
        return changes

    async def _check_owner(
        self, store: Store, actor: Actor, user_id: str | None, team_id: str | None
    ) -> None:
        if not can_own_key(actor, user_id, team_id):
            if team_id is not None:
                raise deny(f"give a key to team {team_id!r}")
            raise deny("give a key to another user" if user_id else "create a key for no user")
        if actor.is_admin or user_id is None or user_id == actor.user_id or team_id is None:
            return
        # A team admin may give a team key to a member of that team only.
        if await store.members.find(team_id, user_id) is None:
            raise deny(f"give a key of team {team_id!r} to a user who is not its member")

    def _check_organization(self, actor: Actor, values: dict[str, Any]) -> None:
        if values.get("organization_id") is not None and not actor.is_admin:
            raise deny("set organization_id on a key")

    @staticmethod
    def _require(allowed: bool, action: str) -> None:
        if not allowed:
            raise deny(action)

    @staticmethod
    async def _audit(
        store: Store,
        actor: Actor,
        action: str,
        row: VirtualKey,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        await store.audit.record(
            action=action,
            table_name=TABLE,
            object_id=row.key_alias or row.key_name or "key",
            changed_by=actor_name(actor),
            before=before,
            after=after,
        )


def _expiry(req: KeyFields, now: datetime) -> datetime | None:
    if req.duration is None or req.duration == NEVER:
        return None
    return add_duration(now, req.duration, field="duration")
