"""Named provider credentials stored in the database (LiteLLM's /credentials API).

Values are encrypted at rest (the repository) and masked in every answer. Proxy
admins create, change and delete them; readers of everything (proxy_admin_viewer)
list them. A credential of the config file's ``credential_list`` is listed too,
but changed only in the file. A credential that stored models use cannot be
deleted. Stored credentials are used for routing when ``store_model_in_db`` is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.core.errors import InvalidRequestError
from bastion.policy.rbac import Actor, require_admin, require_read_all
from bastion.services.admin import audit
from bastion.services.admin.masking import masked, without_echoed_masks
from bastion.services.model_catalog import ModelCatalog
from bastion.storage.crypto import MissingEncryptionKeyError
from bastion.storage.errors import DuplicateError, InUseError, NotFoundError
from bastion.storage.repositories import Store, StoredCredential

TABLE = "credentials"
SOURCE_CONFIG = "config"
# The litellm_params a model's credential is made of (POST /credentials with model_id).
_CREDENTIAL_FIELDS = frozenset(
    {"api_key", "api_base", "api_version", "organization", "azure_ad_token", "tenant_id"}
    | {"client_id", "client_secret"}
)
_CREDENTIAL_PREFIXES = ("aws_", "vertex_", "azure_", "watsonx_")


def _check_values(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    for key, item in value.items():
        if not key:
            raise ValueError("field names must not be empty")
        if item is not None and not isinstance(item, str | int | float | bool | dict):
            raise ValueError(f"{key} must be a string, number, boolean or object")
    return value


class NewCredential(BaseModel):
    model_config = ConfigDict(extra="ignore")

    credential_name: str = Field(min_length=1, max_length=255)
    credential_values: dict[str, Any] | None = None
    credential_info: dict[str, Any] = Field(default_factory=dict)
    model_id: str | None = None

    _values = field_validator("credential_values")(_check_values)


class CredentialPatch(BaseModel):
    """PATCH /credentials/{name}: values and info are merged (null removes a value)."""

    model_config = ConfigDict(extra="ignore")

    credential_name: str | None = None
    credential_values: dict[str, Any] | None = None
    credential_info: dict[str, Any] | None = None

    _values = field_validator("credential_values")(_check_values)


def credential_dict(
    name: str, values: Mapping[str, Any], info: Mapping[str, Any]
) -> dict[str, Any]:
    return {"credential_name": name, "credential_values": masked(values), "credential_info": info}


def _stored_dict(credential: StoredCredential) -> dict[str, Any]:
    return credential_dict(
        credential.credential_name, credential.credential_values, credential.credential_info
    )


def _encryption_error(exc: MissingEncryptionKeyError) -> InvalidRequestError:
    return InvalidRequestError(str(exc), param="credential_values")


def _from_model(catalog: ModelCatalog, model_id: str) -> dict[str, Any]:
    deployment = catalog.deployment(model_id)
    if deployment is None:
        raise NotFoundError("model", model_id, field="model_id")
    return {
        k: v
        for k, v in deployment.params.items()
        if v is not None and (k in _CREDENTIAL_FIELDS or k.startswith(_CREDENTIAL_PREFIXES))
    }


async def create_credential(
    store: Store, actor: Actor, catalog: ModelCatalog, body: NewCredential
) -> dict[str, Any]:
    require_admin(actor, "create credentials")
    name = body.credential_name
    if name in catalog.config_credentials:
        raise DuplicateError("credential", "credential_name", name)
    values = body.credential_values
    if values is None and body.model_id:
        values = _from_model(catalog, body.model_id)
    values = {k: v for k, v in (values or {}).items() if v is not None}
    if not values:
        raise InvalidRequestError(
            'credential_values: required (e.g. {"api_key": "..."}), or a model_id to copy '
            "them from",
            param="credential_values",
        )
    try:
        credential = await store.credentials.create(
            name, values, body.credential_info, created_by=audit.changed_by(actor)
        )
    except MissingEncryptionKeyError as exc:
        raise _encryption_error(exc) from None
    await _audit(store, actor, "created", name, after=_stored_dict(credential))
    return {"success": True, "message": "Credential created successfully"}


async def list_credentials(store: Store, actor: Actor, catalog: ModelCatalog) -> dict[str, Any]:
    require_read_all(actor, "credentials")
    stored, _unreadable = await store.credentials.readable()
    items = [
        credential_dict(name, values, {"source": SOURCE_CONFIG})
        for name, values in catalog.config_credentials.items()
    ]
    items += [_stored_dict(c) for c in stored]
    return {"success": True, "credentials": items}


async def get_credential(
    store: Store, actor: Actor, catalog: ModelCatalog, name: str
) -> dict[str, Any]:
    require_read_all(actor, "credentials")
    if name in catalog.config_credentials:
        return credential_dict(name, catalog.config_credentials[name], {"source": SOURCE_CONFIG})
    return _stored_dict(await store.credentials.get(name))


async def credential_of_model(
    store: Store, actor: Actor, catalog: ModelCatalog, model_id: str
) -> dict[str, Any]:
    require_read_all(actor, "credentials")
    deployment = catalog.deployment(model_id)
    if deployment is None:
        raise NotFoundError("model", model_id, field="model_id")
    name = f"{deployment.model_name}-credential-{model_id}"
    return credential_dict(name, _from_model(catalog, model_id), {})


def _config_only(catalog: ModelCatalog, name: str) -> None:
    if name in catalog.config_credentials:
        raise InvalidRequestError(
            f"credential_name: {name!r} comes from the config file's credential_list; "
            "change it there",
            param="credential_name",
        )


async def update_credential(
    store: Store, actor: Actor, catalog: ModelCatalog, name: str, body: CredentialPatch
) -> dict[str, Any]:
    require_admin(actor, "change credentials")
    _config_only(catalog, name)
    if body.credential_name not in (None, name):
        raise InvalidRequestError(
            "credential_name: a credential cannot be renamed (models refer to it by name); "
            "create a new one and point the models at it",
            param="credential_name",
        )
    current = await store.credentials.get(name)
    values = None
    if body.credential_values is not None:
        merged = {
            **current.credential_values,
            **without_echoed_masks(body.credential_values, current.credential_values),
        }
        values = {k: v for k, v in merged.items() if v is not None}
        if not values:
            raise InvalidRequestError(
                "credential_values: a credential needs at least one value",
                param="credential_values",
            )
    info = None
    if body.credential_info is not None:
        info = {**current.credential_info, **body.credential_info}
    try:
        updated = await store.credentials.update(
            name, credential_values=values, credential_info=info, updated_by=audit.changed_by(actor)
        )
    except MissingEncryptionKeyError as exc:
        raise _encryption_error(exc) from None
    await _audit(
        store, actor, "updated", name, before=_stored_dict(current), after=_stored_dict(updated)
    )
    return {"success": True, "message": "Credential updated successfully"}


async def delete_credential(
    store: Store, actor: Actor, catalog: ModelCatalog, name: str
) -> dict[str, Any]:
    require_admin(actor, "delete credentials")
    _config_only(catalog, name)
    current = await store.credentials.get(name)
    models, _unreadable = await store.models.readable()
    users = [m.model_id for m in models if m.litellm_params.get("litellm_credential_name") == name]
    users += [s.ident for s in catalog.deferred if s.params.get("litellm_credential_name") == name]
    if users:
        shown = ", ".join(users[:5]) + (", ..." if len(users) > 5 else "")
        raise InUseError(
            "credential",
            name,
            f"models use it ({shown}); point them at another credential or delete them first",
        )
    await store.credentials.delete(name)
    await _audit(store, actor, "deleted", name, before=_stored_dict(current))
    return {"success": True, "message": "Credential deleted successfully"}


async def _audit(
    store: Store,
    actor: Actor,
    action: str,
    name: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await store.audit.record(
        action=action,
        table_name=TABLE,
        object_id=name,
        changed_by=audit.changed_by(actor),
        before=before,
        after=after,
    )
