"""Shared pieces of the management API: who is calling, errors, body validation."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from bastion.core.errors import BastionError, InvalidRequestError
from bastion.interfaces.http.admin.context import AdminContext
from bastion.interfaces.http.errors import openai_error_body
from bastion.policy.auth import Principal, extract_key
from bastion.policy.rbac import Actor, require_management

ModelT = TypeVar("ModelT", bound=BaseModel)


def context_of(request: Request) -> AdminContext:
    context: AdminContext = request.app.state.admin
    return context


def principal_of(request: Request) -> Principal:
    """The caller, authenticated like any request (master key, or a virtual key)."""
    return context_of(request).auth.authenticate(extract_key(request.scope["headers"]))


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload, default=str), status_code=status, media_type="application/json"
    )


def error_response(error: BastionError) -> Response:
    return Response(
        openai_error_body(error),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """The JSON body validated by ``model``; a 400 names the first bad field."""
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequestError(f"{field}: {first['msg']}", param=field) from None


async def actor_of(request: Request) -> Actor:
    """The caller as an RBAC Actor; a user's team roles are read from the database."""
    principal = principal_of(request)
    actor = Actor.of(principal)
    require_management(actor)
    if principal.user is None:
        return actor
    async with context_of(request).database.transaction() as store:
        page = await store.members.list(user_id=principal.user.user_id, size=1000)
    admin_teams = frozenset(m.team_id for m in page.items if m.role == "admin")
    member_teams = frozenset(m.team_id for m in page.items)
    actor = Actor.of(principal, admin_teams, member_teams)
    require_management(actor)
    return actor
