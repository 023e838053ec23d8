"""/user/* endpoints (LiteLLM's paths and shapes); the logic is in services/admin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.interfaces.http.admin.common import actor_of, parse_body
from bastion.interfaces.http.admin.handlers import int_param, query_param, run
from bastion.services.admin import users


async def user_new(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, users.NewUser)
    return await run(request, lambda s: users.create_user(s, actor, body), changes=True)


async def user_update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, users.UpdateUser)
    return await run(request, lambda s: users.update_user(s, actor, body), changes=True)


async def user_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, users.DeleteUsers)
    return await run(request, lambda s: users.delete_users(s, actor, body.user_ids), changes=True)


async def user_info(request: Request) -> Response:
    actor = await actor_of(request)
    user_id = query_param(request, "user_id")
    return await run(request, lambda s: users.user_info(s, actor, user_id), changes=False)


async def user_list(request: Request) -> Response:
    actor = await actor_of(request)
    role = query_param(request, "role")
    ids = query_param(request, "user_ids")
    user_ids = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    page = int_param(request, "page", 1)
    page_size = int_param(request, "page_size", 25)
    return await run(
        request,
        lambda s: users.list_users(
            s, actor, role=role, user_ids=user_ids, page=page, page_size=page_size
        ),
        changes=False,
    )


ROUTES: list[BaseRoute] = [
    Route("/user/new", user_new, methods=["POST"]),
    Route("/user/update", user_update, methods=["POST"]),
    Route("/user/delete", user_delete, methods=["POST", "DELETE"]),
    Route("/user/info", user_info, methods=["GET"]),
    Route("/user/list", user_list, methods=["GET"]),
]
