"""Organizations: /organization/new|update|delete|info|list in LiteLLM's shapes.

Proxy admins change them; readers of everything read them all; anyone else reads
the organizations of the teams they belong to.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bastion.policy.rbac import Actor, deny, require_admin
from bastion.services.admin import audit
from bastion.services.admin.shapes import row_dict
from bastion.storage.models import Organization
from bastion.storage.repositories import Store

TABLE = "organizations"


class OrganizationFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    organization_alias: str | None = None
    budget_id: str | None = None
    models: list[str] | None = None
    max_budget: Decimal | None = None
    soft_budget: Decimal | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None


class NewOrganization(OrganizationFields):
    organization_id: str | None = Field(default=None, min_length=1)
    organization_alias: str = Field(min_length=1)


class UpdateOrganization(OrganizationFields):
    organization_id: str = Field(min_length=1)


class DeleteOrganizations(BaseModel):
    model_config = ConfigDict(extra="ignore")

    organization_ids: list[str] = Field(min_length=1)


async def organization_dict(store: Store, org: Organization) -> dict[str, Any]:
    shaped = row_dict(org)
    teams = await store.teams.list(organization_id=org.organization_id, size=1000)
    shaped["teams"] = [row_dict(t) for t in teams.items]
    return shaped


async def create_organization(
    store: Store, actor: Actor, request: NewOrganization
) -> dict[str, Any]:
    require_admin(actor, "create organizations")
    values = request.model_dump(exclude_unset=True)
    values["metadata_"] = values.pop("metadata", None) or {}
    org = Organization(**{k: v for k, v in values.items() if v is not None})
    org.created_by = audit.changed_by(actor)
    await store.organizations.create(org)
    await audit.record(store, actor, "created", TABLE, org.organization_id, after=org)
    return row_dict(org)


async def update_organization(
    store: Store, actor: Actor, request: UpdateOrganization
) -> dict[str, Any]:
    require_admin(actor, "update organizations")
    changes = request.model_dump(exclude_unset=True, exclude={"organization_id"})
    for name, empty in (("models", []), ("metadata", {}), ("blocked", False)):
        if name in changes and changes[name] is None:
            changes[name] = empty
    ident = request.organization_id
    before = audit.snapshot(await store.organizations.get(ident))
    org = await store.organizations.update(ident, changes)
    await audit.record(store, actor, "updated", TABLE, ident, before=before, after=org)
    return row_dict(org)


async def delete_organizations(
    store: Store, actor: Actor, organization_ids: list[str]
) -> list[dict[str, Any]]:
    """Delete every organization (all must exist; one that teams or keys still belong
    to is a 409)."""
    require_admin(actor, "delete organizations")
    deleted = []
    for ident in organization_ids:
        org = await store.organizations.get(ident)
        before = audit.snapshot(org)
        deleted.append(row_dict(org))
        await store.organizations.delete(ident)
        await audit.record(store, actor, "deleted", TABLE, ident, before=before)
    return deleted


async def _visible_ids(store: Store, actor: Actor) -> set[str]:
    if actor.user_id is None:
        return set()
    teams = await store.teams.teams_of_user(actor.user_id)
    return {t.organization_id for t in teams if t.organization_id is not None}


async def organization_info(store: Store, actor: Actor, ident: str) -> dict[str, Any]:
    org = await store.organizations.get(ident)
    if not actor.reads_all and ident not in await _visible_ids(store, actor):
        raise deny(f"read organization {ident!r}: none of your teams belongs to it")
    return await organization_dict(store, org)


async def list_organizations(store: Store, actor: Actor) -> list[dict[str, Any]]:
    orgs = (await store.organizations.list(size=1000)).items
    if not actor.reads_all:
        visible = await _visible_ids(store, actor)
        orgs = [o for o in orgs if o.organization_id in visible]
    return [await organization_dict(store, o) for o in orgs]
