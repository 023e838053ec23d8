"""Running a management call: one transaction, then (after a change) a refresh of the
data plane's key cache so the next request sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.core.errors import InvalidRequestError
from bastion.interfaces.http.admin.common import context_of, json_response
from bastion.storage.repositories import Store


async def run(
    request: Request, call: Callable[[Store], Awaitable[Any]], *, changes: bool
) -> Response:
    context = context_of(request)
    async with context.database.transaction() as store:
        result = await call(store)
    if changes:
        await context.refresh_keys()
    return json_response(result)


def query_param(request: Request, name: str, *, required: bool = False) -> str | None:
    value = request.query_params.get(name)
    if value is not None:
        value = value.strip() or None
    if required and value is None:
        raise InvalidRequestError(f"{name}: the query parameter {name} is required", param=name)
    return value


def int_param(request: Request, name: str, default: int) -> int:
    value = query_param(request, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidRequestError(f"{name}: must be a whole number", param=name) from None
