"""``/spend/logs`` and ``/global/spend/report|teams|keys|models``.

proxy_admin and proxy_admin_viewer read everything. As in LiteLLM, an internal user
(or internal_user_viewer) reads the logs of their own requests and the top keys and
models of their own spend; the global report and the per-team view are theirs to
read only with an admin role (403 otherwise).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.errors import InvalidRequestError
from bastion.interfaces.http.admin.common import actor_of, context_of, json_response
from bastion.policy.rbac import Actor, deny, require_read_all
from bastion.services.admin import spend as service

GROUPS = ("team", "customer", "api_key")


def _own_user(actor: Actor) -> str | None:
    """None for a reader of everything, else the caller's user id (their own spend)."""
    if actor.reads_all:
        return None
    if actor.user_id is None:
        raise deny("read spend")
    return actor.user_id


def _limit(request: Request, default: int | None) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidRequestError(
            f"limit must be a whole number of 1 or more, got {raw!r}", param="limit"
        )
    return value


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequestError(f"{name} must be true or false, got {raw!r}", param=name)


async def spend_logs(request: Request) -> Response:
    actor = await actor_of(request)
    query = request.query_params
    user_id = query.get("user_id")
    own = _own_user(actor)
    if own is not None:
        if user_id is not None and user_id != own:
            raise deny("read the spend of another user")
        user_id = own
    start = service.parse_day(query.get("start_date"), "start_date")
    end = service.parse_day(query.get("end_date"), "end_date")
    if start is not None and end is not None and end < start:
        raise InvalidRequestError("end_date is before start_date", param="end_date")
    async with context_of(request).database.transaction() as store:
        rows = await service.spend_logs(
            store,
            api_key=query.get("api_key"),
            user_id=user_id,
            request_id=query.get("request_id"),
            start=start,
            end=end,
            summarize=_flag(request, "summarize", True),
        )
    return json_response(rows)


async def spend_report(request: Request) -> Response:
    actor = await actor_of(request)
    require_read_all(actor, "the global spend report")
    query = request.query_params
    start = service.parse_day(query.get("start_date"), "start_date")
    end = service.parse_day(query.get("end_date"), "end_date")
    if start is None:
        raise InvalidRequestError("start_date is required (YYYY-MM-DD)", param="start_date")
    if end is None:
        raise InvalidRequestError("end_date is required (YYYY-MM-DD)", param="end_date")
    group_by = query.get("group_by", "team")
    if group_by not in GROUPS:
        raise InvalidRequestError(
            f"group_by must be one of {', '.join(GROUPS)}, got {group_by!r}", param="group_by"
        )
    async with context_of(request).database.transaction() as store:
        rows = await service.spend_report(
            store,
            group_by,
            start,
            end,
            team_id=query.get("team_id"),
            api_key=query.get("api_key"),
            internal_user_id=query.get("internal_user_id"),
        )
    return json_response(rows)


async def spend_teams(request: Request) -> Response:
    actor = await actor_of(request)
    require_read_all(actor, "the spend of every team")
    context = context_of(request)
    async with context.database.transaction() as store:
        shaped = await service.spend_per_team(store, context.clock().date())
    return json_response(shaped)


async def spend_keys(request: Request) -> Response:
    actor = await actor_of(request)
    own = _own_user(actor)
    limit = _limit(request, None if own is None else 10)
    context = context_of(request)
    async with context.database.transaction() as store:
        rows = await service.spend_per_key(store, context.clock().date(), limit, own)
    return json_response(rows)


async def spend_models(request: Request) -> Response:
    actor = await actor_of(request)
    own = _own_user(actor)
    limit = _limit(request, 10)
    assert limit is not None
    context = context_of(request)
    async with context.database.transaction() as store:
        rows = await service.spend_per_model(store, context.clock().date(), limit, own)
    return json_response(rows)


def routes() -> list[BaseRoute]:
    return [
        Route("/spend/logs", spend_logs, methods=["GET"]),
        Route("/global/spend/report", spend_report, methods=["GET"]),
        Route("/global/spend/teams", spend_teams, methods=["GET"]),
        Route("/global/spend/keys", spend_keys, methods=["GET"]),
        Route("/global/spend/models", spend_models, methods=["GET"]),
    ]
