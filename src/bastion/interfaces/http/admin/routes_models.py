"""/model/new, /model/update, /model/delete (LiteLLM's paths and shapes) and the
/credentials API; the logic is in services/admin/models.py and credentials.py.

After a change, this worker reloads its models before answering (its next request
sees the change); the other workers pick it up by polling. ``GET /model/info`` is
served by the data plane from the same table (config and stored models).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.errors import BastionError, InvalidRequestError
from bastion.interfaces.http.admin.common import actor_of, context_of, json_response, parse_body
from bastion.services.admin import credentials, models
from bastion.services.model_catalog import ModelCatalog
from bastion.storage.repositories import Store

logger = logging.getLogger("bastion.admin")

Call = Callable[[Store, ModelCatalog], Awaitable[Any]]


def _catalog(request: Request) -> ModelCatalog:
    catalog = context_of(request).models
    if catalog is None:
        raise BastionError("model management is not wired into this gateway")
    return catalog


async def _run(request: Request, call: Call, *, changes: bool) -> Response:
    context = context_of(request)
    catalog = _catalog(request)
    async with context.database.transaction() as store:
        result = await call(store, catalog)
    if changes:
        try:
            await catalog.refresh(force=True)
        except Exception as exc:  # committed: the poll brings it in when the database answers
            logger.warning("stored models changed but could not be reloaded now: %s", exc)
    return json_response(result)


async def model_new(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, models.NewModel)
    return await _run(request, lambda s, c: models.create_model(s, actor, c, body), changes=True)


async def model_update(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, models.UpdateModel)
    ident = str((body.model_info or {}).get("id") or "")
    if not ident:
        raise InvalidRequestError(
            "model_info.id: required: the id of the stored model to update", param="model_info.id"
        )
    return await _run(
        request, lambda s, c: models.update_model(s, actor, c, ident, body), changes=True
    )


async def model_patch(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, models.UpdateModel)
    ident = request.path_params["model_id"]
    return await _run(
        request, lambda s, c: models.update_model(s, actor, c, ident, body), changes=True
    )


async def model_delete(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, models.DeleteModel)
    return await _run(request, lambda s, c: models.delete_model(s, actor, c, body.id), changes=True)


async def credential_new(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, credentials.NewCredential)
    return await _run(
        request, lambda s, c: credentials.create_credential(s, actor, c, body), changes=True
    )


async def credential_list(request: Request) -> Response:
    actor = await actor_of(request)
    return await _run(
        request, lambda s, c: credentials.list_credentials(s, actor, c), changes=False
    )


async def credential_get(request: Request) -> Response:
    actor = await actor_of(request)
    name = request.path_params["credential_name"]
    return await _run(
        request, lambda s, c: credentials.get_credential(s, actor, c, name), changes=False
    )


async def credential_by_model(request: Request) -> Response:
    actor = await actor_of(request)
    model_id = request.path_params["model_id"]
    return await _run(
        request, lambda s, c: credentials.credential_of_model(s, actor, c, model_id), changes=False
    )


async def credential_patch(request: Request) -> Response:
    actor = await actor_of(request)
    body = await parse_body(request, credentials.CredentialPatch)
    name = request.path_params["credential_name"]
    return await _run(
        request, lambda s, c: credentials.update_credential(s, actor, c, name, body), changes=True
    )


async def credential_delete(request: Request) -> Response:
    actor = await actor_of(request)
    name = request.path_params["credential_name"]
    return await _run(
        request, lambda s, c: credentials.delete_credential(s, actor, c, name), changes=True
    )


ROUTES: list[BaseRoute] = [
    Route("/model/new", model_new, methods=["POST"]),
    Route("/model/update", model_update, methods=["POST"]),
    Route("/model/delete", model_delete, methods=["POST"]),
    Route("/model/{model_id:path}/update", model_patch, methods=["PATCH"]),
    Route("/credentials", credential_new, methods=["POST"]),
    Route("/credentials", credential_list, methods=["GET"]),
    Route("/credentials/by_name/{credential_name:path}", credential_get, methods=["GET"]),
    Route("/credentials/by_model/{model_id:path}", credential_by_model, methods=["GET"]),
    Route("/credentials/{credential_name:path}", credential_get, methods=["GET"]),
    Route("/credentials/{credential_name:path}", credential_patch, methods=["PATCH"]),
    Route("/credentials/{credential_name:path}", credential_delete, methods=["DELETE"]),
]
