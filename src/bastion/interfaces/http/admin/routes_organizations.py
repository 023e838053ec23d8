"""/organization/* endpoints (LiteLLM's paths and shapes); logic in services/admin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.interfaces.http.admin.common import actor_of, parse_body
from bastion.interfaces.http.admin.handlers import query_param, run
from bastion.services.admin import organizations as orgs


async def organization_new(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, orgs.NewOrganization)
    return await run(request, lambda s: orgs.create_organization(s, actor, body), changes=True)


async def organization_update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, orgs.UpdateOrganization)
    return await run(request, lambda s: orgs.update_organization(s, actor, body), changes=True)


async def organization_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, orgs.DeleteOrganizations)
    return await run(
        request,
        lambda s: orgs.delete_organizations(s, actor, body.organization_ids),
        changes=True,
    )


async def organization_info(request: Request) -> Response:
    actor = await actor_of(request)
    ident = query_param(request, "organization_id", required=True)
    assert ident is not None
    return await run(request, lambda s: orgs.organization_info(s, actor, ident), changes=False)


async def organization_list(request: Request) -> Response:
    actor = await actor_of(request)
    return await run(request, lambda s: orgs.list_organizations(s, actor), changes=False)


ROUTES: list[BaseRoute] = [
    Route("/organization/new", organization_new, methods=["POST"]),
    Route("/organization/update", organization_update, methods=["POST", "PATCH"]),
    Route("/organization/delete", organization_delete, methods=["POST", "DELETE"]),
    Route("/organization/info", organization_info, methods=["GET"]),
    Route("/organization/list", organization_list, methods=["GET"]),
]
