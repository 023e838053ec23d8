"""End users ("customers"): the ``user`` field callers put in their requests."""

from __future__ import annotations

from bastion.storage.models import Budget, EndUser
from bastion.storage.repositories.base import CrudRepository


class EndUserRepository(CrudRepository[EndUser]):
    model = EndUser
    entity = "end user"
    id_field = "user_id"
    references = {"budget_id": Budget}

    async def set_blocked(self, user_ids: list[str], blocked: bool) -> list[EndUser]:
        """Block or unblock several end users; every id must exist (404 otherwise)."""
        return [await self.update(user_id, {"blocked": blocked}) for user_id in user_ids]
