"""Organizations: the top of the tenancy tree (teams and keys may belong to one)."""

from __future__ import annotations

from bastion.storage.models import Budget, Organization
from bastion.storage.repositories.base import CrudRepository


class OrganizationRepository(CrudRepository[Organization]):
    model = Organization
    entity = "organization"
    id_field = "organization_id"
    references = {"budget_id": Budget}
