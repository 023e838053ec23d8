"""Models stored in the database: /model/new, /model/update, /model/delete (LiteLLM's
shapes). Only proxy admins change them; ``store_model_in_db`` must be on.

A model is checked by building its deployment before it is stored (provider
prefix, credential, fields), so what is stored can be served. Answers carry the
stored row with its secrets masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.config.model import LiteLLMParams, ModelInfo
from bastion.core.errors import InvalidRequestError
from bastion.policy.rbac import Actor, require_admin
from bastion.routing.stored_models import ModelSpec, ModelSpecError
from bastion.services.admin import audit
from bastion.services.admin.masking import masked, without_echoed_masks
from bastion.services.admin.shapes import plain
from bastion.services.model_catalog import ModelCatalog
from bastion.storage.crypto import MissingEncryptionKeyError
from bastion.storage.errors import DuplicateError, NotFoundError
from bastion.storage.repositories import Store, StoredModel

TABLE = "db_models"
NOT_ENABLED = (
    "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature: models are "
    "stored in the database only with general_settings.store_model_in_db: true (or the "
    "environment variable STORE_MODEL_IN_DB=True)"
)
_SectionT = TypeVar("_SectionT", bound=BaseModel)


class NewModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_name: str = Field(min_length=1, max_length=255)
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class UpdateModel(BaseModel):
    """LiteLLM's ``updateDeployment``: ``model_info.id`` names the model; the parts
    sent are merged into the stored ones (a null value removes a field)."""

    model_config = ConfigDict(extra="ignore")

    model_name: str | None = Field(default=None, min_length=1, max_length=255)
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class DeleteModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)


def model_dict(model: StoredModel) -> dict[str, Any]:
    """The stored row as LiteLLM's /model/new answers it, secrets masked."""
    return {
        "model_id": model.model_id,
        "model_name": model.model_name,
        "litellm_params": masked(model.litellm_params),
        "model_info": {**model.model_info, "id": model.model_id, "db_model": True},
        "created_at": plain(model.created_at),
        "created_by": model.created_by,
        "updated_at": plain(model.updated_at),
        "updated_by": model.updated_by,
    }


def _validated(section: type[_SectionT], data: Mapping[str, Any], prefix: str) -> None:
    try:
        section.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join([prefix, *(str(p) for p in first["loc"])])
        raise InvalidRequestError(f"{where}: {first['msg']}", param=where) from None


def _require_enabled(catalog: ModelCatalog) -> None:
    if not catalog.enabled:
        raise InvalidRequestError(NOT_ENABLED, param="store_model_in_db")


async def _stored_credentials(
    store: Store, catalog: ModelCatalog, params: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The stored credential ``params`` names, if it is not a config one."""
    name = params.get("litellm_credential_name")
    if not isinstance(name, str) or not name or name in catalog.config_credentials:
        return {}
    try:
        credential = await store.credentials.get(name)
    except NotFoundError:
        return {}
    return {name: credential.credential_values}


async def _check(store: Store, catalog: ModelCatalog, spec: ModelSpec) -> None:
    _validated(LiteLLMParams, spec.params, "litellm_params")
    _validated(ModelInfo, spec.model_info, "model_info")
    try:
        catalog.check(spec, await _stored_credentials(store, catalog, spec.params))
    except ModelSpecError as exc:
        raise InvalidRequestError(str(exc), param=exc.field) from None


async def _stored_or_error(store: Store, catalog: ModelCatalog, ident: str, field: str) -> None:
    if ident in catalog.config_ids:
        raise InvalidRequestError(
            f"{field}: model {ident!r} comes from the config file; change it there",
            param=field,
        )
    try:
        await store.models.get(ident)
    except NotFoundError:
        raise NotFoundError("model", ident, field=field) from None


def _encryption_error(exc: MissingEncryptionKeyError) -> InvalidRequestError:
    return InvalidRequestError(str(exc), param="litellm_params")


async def create_model(
    store: Store, actor: Actor, catalog: ModelCatalog, body: NewModel
) -> dict[str, Any]:
    require_admin(actor, "add models")
    _require_enabled(catalog)
    info = dict(body.model_info or {})
    raw_id = info.pop("id", None)
    ident = str(raw_id) if raw_id not in (None, "") else None
    if ident is not None:
        taken = ident in catalog.config_ids
        if not taken:
            try:
                await store.models.get(ident)
                taken = True
            except NotFoundError:
                pass
        if taken:
            raise DuplicateError("model", "model_info.id", ident)
    spec = ModelSpec(ident or "new", body.model_name, dict(body.litellm_params), info)
    await _check(store, catalog, spec)
    try:
        model = await store.models.create(
            body.model_name,
            body.litellm_params,
            info,
            model_id=ident,
            created_by=audit.changed_by(actor),
        )
    except MissingEncryptionKeyError as exc:
        raise _encryption_error(exc) from None
    await _audit(store, actor, "created", model)
    return model_dict(model)


async def update_model(
    store: Store, actor: Actor, catalog: ModelCatalog, ident: str, body: UpdateModel
) -> dict[str, Any]:
    require_admin(actor, "update models")
    _require_enabled(catalog)
    await _stored_or_error(store, catalog, ident, "model_info.id")
    current = await store.models.get(ident)
    params_patch = without_echoed_masks(dict(body.litellm_params or {}), current.litellm_params)
    info_patch = {k: v for k, v in (body.model_info or {}).items() if k != "id"}
    params = {k: v for k, v in {**current.litellm_params, **params_patch}.items() if v is not None}
    info = {k: v for k, v in {**current.model_info, **info_patch}.items() if v is not None}
    info.pop("id", None)
    spec = ModelSpec(ident, body.model_name or current.model_name, params, info)
    await _check(store, catalog, spec)
    try:
        model = await store.models.update(
            ident,
            model_name=body.model_name,
            litellm_params=params_patch if body.litellm_params is not None else None,
            model_info=info_patch if body.model_info is not None else None,
            updated_by=audit.changed_by(actor),
        )
    except MissingEncryptionKeyError as exc:
        raise _encryption_error(exc) from None
    await _audit(store, actor, "updated", model, before=current)
    return model_dict(model)


async def delete_model(
    store: Store, actor: Actor, catalog: ModelCatalog, ident: str
) -> dict[str, Any]:
    require_admin(actor, "delete models")
    _require_enabled(catalog)
    await _stored_or_error(store, catalog, ident, "id")
    model = await store.models.delete(ident)
    await _audit(store, actor, "deleted", None, before=model)
    return {"message": f"Model: {ident} deleted successfully"}


async def _audit(
    store: Store,
    actor: Actor,
    action: str,
    after: StoredModel | None,
    *,
    before: StoredModel | None = None,
) -> None:
    subject = after or before
    assert subject is not None
    await store.audit.record(
        action=action,
        table_name=TABLE,
        object_id=subject.model_id,
        changed_by=audit.changed_by(actor),
        before=model_dict(before) if before is not None else None,
        after=model_dict(after) if after is not None else None,
    )
