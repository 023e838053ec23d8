"""Users of the gateway (people or service accounts) with a role and their own budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import InvalidRequestError
from bastion.storage.models import USER_ROLES, User
from bastion.storage.repositories.base import CrudRepository, Page, paginate


def check_role(role: object) -> None:
    if role is not None and role not in USER_ROLES:
        raise InvalidRequestError(
            f"invalid user_role {role!r}: use one of {', '.join(USER_ROLES)}", param="user_role"
        )


class UserRepository(CrudRepository[User]):
    model = User
    entity = "user"
    id_field = "user_id"

    async def create(self, row: User) -> User:
        check_role(row.user_role)
        return await super().create(row)

    async def update(self, ident: str, changes: Mapping[str, Any]) -> User:
        check_role(changes.get("user_role"))
        return await super().update(ident, changes)

    async def find_by_email(self, email: str) -> User | None:
        row: User | None = await self.session.scalar(
            sa.select(User).where(User.user_email == email)
        )
        return row

    async def search(
        self,
        *,
        page: int = 1,
        size: int = 50,
        user_role: str | None = None,
        email_contains: str | None = None,
        user_ids: list[str] | None = None,
    ) -> Page[User]:
        """Users filtered by role, part of the email (case-insensitive) or ids."""
        query = sa.select(User)
        if user_role is not None:
            query = query.where(User.user_role == user_role)
        if email_contains:
            query = query.where(sa.func.lower(User.user_email).contains(email_contains.lower()))
        if user_ids is not None:
            query = query.where(User.user_id.in_(user_ids))
        return await paginate(self.session, query.order_by(*self._order()), page, size)
