"""LiteLLM's /key endpoints: parse, authorise (in the service), answer, refresh the cache."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.errors import AuthenticationError, InvalidRequestError
from bastion.interfaces.http.admin.common import actor_of, context_of, json_response, parse_body
from bastion.policy.auth import PrincipalKind
from bastion.services.admin.key_requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    KeyRef,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)
from bastion.services.admin.keys import KeyService

DEFAULT_PAGE_SIZE = 10


def _service(request: Request) -> KeyService:
    auth = context_of(request).auth

    def is_master(key: str) -> bool:
        if auth.open_access:
            return False
        try:
            return auth.authenticate(key).kind is PrincipalKind.MASTER
        except AuthenticationError:
            return False

    return KeyService(context_of(request).database, is_master)


async def _changed(request: Request, payload: object) -> Response:
    """Make the change visible to the data plane before answering."""
    await context_of(request).refresh_keys()
    return json_response(payload)


async def generate(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, GenerateKeyRequest)
    return await _changed(request, await _service(request).generate(actor, body))


async def update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, UpdateKeyRequest)
    return await _changed(request, await _service(request).update(actor, body))


async def delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, DeleteKeysRequest)
    return await _changed(request, await _service(request).delete(actor, body))


async def regenerate(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, RegenerateKeyRequest)
    path_key = request.path_params.get("key")
    if path_key:
        body.key = path_key
    return await _changed(request, await _service(request).regenerate(actor, body))


async def block(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, KeyRef)
    return await _changed(request, await _service(request).set_blocked(actor, body.key, True))


async def unblock(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, KeyRef)
    return await _changed(request, await _service(request).set_blocked(actor, body.key, False))


async def info(request: Request) -> Response:
    actor = await actor_of(request)
    key = request.query_params.get("key")
    if not key:
        raise InvalidRequestError("key: the key (or its hash) is required", param="key")
    return json_response(await _service(request).info(actor, key))


async def list_keys(request: Request) -> Response:
    actor = await actor_of(request)
    query = request.query_params
    payload = await _service(request).list(
        actor,
        team_id=query.get("team_id") or None,
        user_id=query.get("user_id") or None,
        key_alias=query.get("key_alias") or None,
        page=_int_param(query.get("page"), "page", 1),
        size=_int_param(query.get("size") or query.get("page_size"), "size", DEFAULT_PAGE_SIZE),
        full=(query.get("return_full_object") or "").lower() in ("true", "1", "yes"),
    )
    return json_response(payload)


def _int_param(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidRequestError(f"{name} must be a whole number", param=name) from None


ROUTES: list[BaseRoute] = [
    Route("/key/generate", generate, methods=["POST"]),
    Route("/key/update", update, methods=["POST"]),
    Route("/key/delete", delete, methods=["POST"]),
    Route("/key/regenerate", regenerate, methods=["POST"]),
    Route("/key/{key:str}/regenerate", regenerate, methods=["POST"]),
    Route("/key/block", block, methods=["POST"]),
    Route("/key/unblock", unblock, methods=["POST"]),
    Route("/key/info", info, methods=["GET"]),
    Route("/key/list", list_keys, methods=["GET"]),
]
