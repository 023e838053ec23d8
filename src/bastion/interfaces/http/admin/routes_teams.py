"""/team/* endpoints (LiteLLM's paths and shapes); the logic is in services/admin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.interfaces.http.admin.common import actor_of, parse_body
from bastion.interfaces.http.admin.handlers import query_param, run
from bastion.services.admin import members, teams


async def team_new(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, teams.NewTeam)
    return await run(request, lambda s: teams.create_team(s, actor, body), changes=True)


async def team_update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, teams.UpdateTeam)
    return await run(request, lambda s: teams.update_team(s, actor, body), changes=True)


async def team_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, teams.DeleteTeams)
    return await run(request, lambda s: teams.delete_teams(s, actor, body.team_ids), changes=True)


async def team_block(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, teams.TeamRef)
    return await run(
        request, lambda s: teams.set_blocked(s, actor, body.team_id, True), changes=True
    )


async def team_unblock(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, teams.TeamRef)
    return await run(
        request, lambda s: teams.set_blocked(s, actor, body.team_id, False), changes=True
    )


async def team_info(request: Request) -> Response:
    actor = await actor_of(request)
    team_id = query_param(request, "team_id", required=True)
    assert team_id is not None
    return await run(request, lambda s: teams.team_info(s, actor, team_id), changes=False)


async def team_list(request: Request) -> Response:
    actor = await actor_of(request)
    user_id = query_param(request, "user_id")
    organization_id = query_param(request, "organization_id")
    return await run(
        request,
        lambda s: teams.list_teams(s, actor, user_id=user_id, organization_id=organization_id),
        changes=False,
    )


async def member_add(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, members.MemberAdd)
    return await run(request, lambda s: members.add_members(s, actor, body), changes=True)


async def member_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, members.MemberRef)
    return await run(request, lambda s: members.delete_member(s, actor, body), changes=True)


async def member_update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, members.MemberUpdate)
    return await run(request, lambda s: members.update_member(s, actor, body), changes=True)


async def model_add(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, members.TeamModels)
    return await run(
        request, lambda s: members.change_models(s, actor, body, add=True), changes=True
    )


async def model_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, members.TeamModels)
    return await run(
        request, lambda s: members.change_models(s, actor, body, add=False), changes=True
    )


ROUTES: list[BaseRoute] = [
    Route("/team/new", team_new, methods=["POST"]),
    Route("/team/update", team_update, methods=["POST"]),
    Route("/team/delete", team_delete, methods=["POST", "DELETE"]),
    Route("/team/block", team_block, methods=["POST"]),
    Route("/team/unblock", team_unblock, methods=["POST"]),
    Route("/team/info", team_info, methods=["GET"]),
    Route("/team/list", team_list, methods=["GET"]),
    Route("/team/member_add", member_add, methods=["POST"]),
    Route("/team/member_delete", member_delete, methods=["POST"]),
    Route("/team/member_update", member_update, methods=["POST"]),
    Route("/team/model/add", model_add, methods=["POST"]),
    Route("/team/model/delete", model_delete, methods=["POST"]),
]
