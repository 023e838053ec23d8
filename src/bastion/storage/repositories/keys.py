"""Virtual keys: stored by sha256 hex, listed, blocked, moved and regenerated.

The key itself never reaches the database; callers hash it with :func:`hash_key`.
Regeneration changes the row's primary key to the new hash; with a grace period
the old hash goes to ``previous_tokens`` and keeps authenticating until then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from bastion.storage.errors import DuplicateError, NotFoundError
from bastion.storage.models import Organization, PreviousToken, Team, User, VirtualKey
from bastion.storage.repositories.base import CrudRepository, Page, paginate


def hash_key(key: str) -> str:
    """The stored form of a key: sha256 hex (LiteLLM stores the same)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_display_name(key: str) -> str:
    """``sk-...abcd``: enough to recognise a key, never enough to use it."""
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


class KeyRepository(CrudRepository[VirtualKey]):
    model = VirtualKey
    entity = "key"
    id_field = "token"
    references = {"team_id": Team, "user_id": User, "organization_id": Organization}
    secret_fields = {"token": "key"}

    async def get(self, ident: str) -> VirtualKey:
        row = await self.find(ident)
        if row is None:
            # The token is a hash, but still: a 404 names the key by its short form.
            raise NotFoundError(self.entity, f"...{ident[-8:]}", field="key")
        return row

    async def find_by_alias(self, alias: str) -> VirtualKey | None:
        row: VirtualKey | None = await self.session.scalar(
            sa.select(VirtualKey).where(VirtualKey.key_alias == alias)
        )
        return row

    async def search(
        self,
        *,
        page: int = 1,
        size: int = 50,
        team_id: str | None = None,
        user_id: str | None = None,
        organization_id: str | None = None,
        key_alias: str | None = None,
        include_expired_before: datetime | None = None,
    ) -> Page[VirtualKey]:
        """Keys filtered by owner; with ``include_expired_before`` only keys still valid
        at that time (or with no expiry)."""
        query = sa.select(VirtualKey)
        for column, value in (
            (VirtualKey.team_id, team_id),
            (VirtualKey.user_id, user_id),
            (VirtualKey.organization_id, organization_id),
            (VirtualKey.key_alias, key_alias),
        ):
            if value is not None:
                query = query.where(column == value)
        if include_expired_before is not None:
            query = query.where(
                sa.or_(VirtualKey.expires.is_(None), VirtualKey.expires > include_expired_before)
            )
        return await paginate(self.session, query.order_by(*self._order()), page, size)

    async def delete_many(
        self, tokens: Sequence[str] = (), aliases: Sequence[str] = ()
    ) -> list[VirtualKey]:
        """Delete keys by hash and/or alias; every one must exist (404 names the first
        missing one, and nothing is deleted)."""
        rows: list[VirtualKey] = []
        for token in tokens:
            rows.append(await self.get(token))
        for alias in aliases:
            row = await self.find_by_alias(alias)
            if row is None:
                raise NotFoundError(self.entity, alias, field="key_alias")
            rows.append(row)
        for row in rows:
            await self.session.delete(row)
        await self.session.flush()
        return rows

    async def set_blocked(self, token: str, blocked: bool) -> VirtualKey:
        return await self.update(token, {"blocked": blocked})

    async def move_to_team(self, token: str, team_id: str | None) -> VirtualKey:
        return await self.update(token, {"team_id": team_id})

    async def regenerate(
        self,
        old_token: str,
        new_token: str,
        *,
        new_key_name: str | None = None,
        grace_until: datetime | None = None,
    ) -> VirtualKey:
        """Give key ``old_token`` the new hash. With ``grace_until`` the old hash stays
        valid until then; without, it stops working at commit."""
        row = await self.get(old_token)
        taken = await self.find(new_token) is not None
        if taken or await self.session.get(PreviousToken, new_token) is not None:
            raise DuplicateError(self.entity, "key")
        now = self.ctx.clock()
        values: dict[str, object] = {"token": new_token, "updated_at": now}
        if new_key_name is not None:
            values["key_name"] = new_key_name
        await self.session.execute(
            sa.update(VirtualKey).where(VirtualKey.token == old_token).values(**values)
        )
        if grace_until is not None and grace_until > now:
            self.session.add(
                PreviousToken(
                    token=old_token, key_token=new_token, valid_until=grace_until, created_at=now
                )
            )
        await self.session.flush()
        self.session.expunge(row)
        return await self.get(new_token)

    async def previous_tokens(self, token: str) -> list[PreviousToken]:
        rows = await self.session.scalars(
            sa.select(PreviousToken).where(PreviousToken.key_token == token)
        )
        return list(rows)

    async def purge_previous_tokens(self, now: datetime) -> int:
        """Forget old hashes whose grace period is over."""
        result = await self.session.execute(
            sa.delete(PreviousToken).where(PreviousToken.valid_until <= now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
