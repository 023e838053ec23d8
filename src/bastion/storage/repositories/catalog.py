"""Models stored in the database (``/model/new``) and named credentials, with their
secrets encrypted at rest.

Reads return plain dataclasses with secrets decrypted, never the ORM rows, so a
decrypted value can never be flushed back to the database by accident.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from bastion.storage.crypto import Cipher, MissingEncryptionKeyError
from bastion.storage.errors import DecryptionError, DuplicateError, NotFoundError
from bastion.storage.models import Credential, DbModel
from bastion.storage.repositories.base import Context, Page, check_page, new_id

ENCRYPTED_PREFIX = "bastion:enc:v1:"
ENCRYPTED_JSON_PREFIX = "bastion:encjson:v1:"
_SECRET_NAMES = frozenset(
    {
        "api_key",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "azure_ad_token",
        "client_secret",
        "extra_headers",  # may carry an Authorization header
        "headers",
        "password",
        "vertex_credentials",
    }
)
_SECRET_SUFFIXES = ("_api_key", "_secret", "_secret_key", "_token", "_password")


def is_secret_param(name: str) -> bool:
    """Whether a ``litellm_params`` field holds a secret (and is encrypted at rest)."""
    return name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)


def encrypt_params(params: Mapping[str, Any], cipher: Cipher | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or not is_secret_param(name):
            out[name] = value
            continue
        if cipher is None:
            raise MissingEncryptionKeyError()
        if isinstance(value, str):
            out[name] = ENCRYPTED_PREFIX + cipher.encrypt(value)
        else:
            out[name] = ENCRYPTED_JSON_PREFIX + cipher.encrypt(json.dumps(value))
    return out


def decrypt_params(params: Mapping[str, Any], cipher: Cipher | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, str) and value.startswith((ENCRYPTED_PREFIX, ENCRYPTED_JSON_PREFIX)):
            if cipher is None:
                raise MissingEncryptionKeyError()
            what = f"litellm_params.{name}"
            if value.startswith(ENCRYPTED_PREFIX):
                out[name] = cipher.decrypt(value.removeprefix(ENCRYPTED_PREFIX), what=what)
            else:
                text = cipher.decrypt(value.removeprefix(ENCRYPTED_JSON_PREFIX), what=what)
                out[name] = json.loads(text)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None = None


@dataclass(frozen=True)
class StoredCredential:
    credential_name: str
    credential_values: dict[str, Any]
    credential_info: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None = None


RowT = TypeVar("RowT", DbModel, Credential)
OutT = TypeVar("OutT")


class _CatalogRepository(Generic[RowT, OutT]):
    """What the model and credential repositories share: rows keyed by one string
    column, stamped with who created and last changed them, read back decrypted."""

    entity: ClassVar[str]
    key_field: ClassVar[str]
    row_type: type[RowT]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.session

    def _out(self, row: RowT) -> OutT:
        raise NotImplementedError

    async def _row(self, ident: str) -> RowT:
        row = await self.session.get(self.row_type, ident)
        if row is None:
            raise NotFoundError(self.entity, ident, field=self.key_field)
        return row

    async def _insert(self, ident: str, created_by: str | None, **fields: Any) -> OutT:
        if await self.session.get(self.row_type, ident) is not None:
            raise DuplicateError(self.entity, self.key_field, ident)
        now = self.ctx.clock()
        row = self.row_type(
            **{self.key_field: ident},
            **fields,
            created_at=now,
            updated_at=now,
            created_by=created_by,
            updated_by=created_by,
        )
        self.session.add(row)
        await self.session.flush()
        return self._out(row)

    async def _save(self, row: RowT, updated_by: str | None) -> OutT:
        row.updated_at = self.ctx.clock()
        row.updated_by = updated_by
        await self.session.flush()
        return self._out(row)

    async def get(self, ident: str) -> OutT:
        return self._out(await self._row(ident))

    async def delete(self, ident: str) -> OutT:
        row = await self._row(ident)
        out = self._out(row)
        await self.session.delete(row)
        await self.session.flush()
        return out

    async def readable(self) -> tuple[builtins.list[OutT], builtins.list[str]]:
        """Every row, plus the keys of rows whose secrets cannot be decrypted with this
        key (so one bad row does not hide the others)."""
        rows = await self.session.scalars(
            sa.select(self.row_type).order_by(getattr(self.row_type, self.key_field))
        )
        good: builtins.list[OutT] = []
        bad: builtins.list[str] = []
        for row in rows:
            try:
                good.append(self._out(row))
            except (DecryptionError, MissingEncryptionKeyError, ValueError):
                bad.append(str(getattr(row, self.key_field)))
        return good, bad


class ModelRepository(_CatalogRepository[DbModel, StoredModel]):
    entity = "model"
    key_field = "model_id"
    row_type = DbModel

    def _out(self, row: DbModel) -> StoredModel:
        return StoredModel(
            model_id=row.model_id,
            model_name=row.model_name,
            litellm_params=decrypt_params(row.litellm_params, self.ctx.cipher),
            model_info=dict(row.model_info),
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
        )

    async def create(
        self,
        model_name: str,
        litellm_params: Mapping[str, Any],
        model_info: Mapping[str, Any] | None = None,
        *,
        model_id: str | None = None,
        created_by: str | None = None,
    ) -> StoredModel:
        ident = model_id or new_id()
        return await self._insert(
            ident,
            created_by,
            model_name=model_name,
            litellm_params=encrypt_params(litellm_params, self.ctx.cipher),
            model_info={**(model_info or {}), "id": ident},
        )

    async def update(
        self,
        model_id: str,
        *,
        model_name: str | None = None,
        litellm_params: Mapping[str, Any] | None = None,
        model_info: Mapping[str, Any] | None = None,
        updated_by: str | None = None,
    ) -> StoredModel:
        """Replace the given parts; ``litellm_params`` and ``model_info`` are merged
        into the stored ones (a None value removes a field)."""
        row = await self._row(model_id)
        if model_name is not None:
            row.model_name = model_name
        if litellm_params is not None:
            merged = {**decrypt_params(row.litellm_params, self.ctx.cipher), **litellm_params}
            kept = {k: v for k, v in merged.items() if v is not None}
            row.litellm_params = encrypt_params(kept, self.ctx.cipher)
        if model_info is not None:
            info = {**row.model_info, **model_info, "id": model_id}
            row.model_info = {k: v for k, v in info.items() if v is not None}
        return await self._save(row, updated_by)

    async def list(
        self, *, model_name: str | None = None, page: int = 1, size: int = 100
    ) -> Page[StoredModel]:
        check_page(page, size)
        query = sa.select(DbModel)
        if model_name is not None:
            query = query.where(DbModel.model_name == model_name)
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = await self.session.scalars(
            query.order_by(DbModel.created_at, DbModel.model_id)
            .limit(size)
            .offset((page - 1) * size)
        )
        return Page([self._out(r) for r in rows], int(total or 0), page, size)

    async def all(self) -> builtins.list[StoredModel]:
        """Every stored model, for loading into the router at startup."""
        rows = await self.session.scalars(sa.select(DbModel).order_by(DbModel.created_at))
        return [self._out(r) for r in rows]


class CredentialRepository(_CatalogRepository[Credential, StoredCredential]):
    entity = "credential"
    key_field = "credential_name"
    row_type = Credential

    def _cipher(self) -> Cipher:
        if self.ctx.cipher is None:
            raise MissingEncryptionKeyError()
        return self.ctx.cipher

    def _encrypt(self, values: Mapping[str, Any]) -> str:
        return self._cipher().encrypt(json.dumps(dict(values)))

    def _out(self, row: Credential) -> StoredCredential:
        what = f"credential {row.credential_name!r}"
        values = json.loads(self._cipher().decrypt(row.credential_values, what=what))
        return StoredCredential(
            credential_name=row.credential_name,
            credential_values=values,
            credential_info=dict(row.credential_info),
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
        )

    async def create(
        self,
        credential_name: str,
        credential_values: Mapping[str, Any],
        credential_info: Mapping[str, Any] | None = None,
        *,
        created_by: str | None = None,
    ) -> StoredCredential:
        return await self._insert(
            credential_name,
            created_by,
            credential_values=self._encrypt(credential_values),
            credential_info=dict(credential_info or {}),
        )

    async def update(
        self,
        credential_name: str,
        *,
        credential_values: Mapping[str, Any] | None = None,
        credential_info: Mapping[str, Any] | None = None,
        updated_by: str | None = None,
    ) -> StoredCredential:
        row = await self._row(credential_name)
        if credential_values is not None:
            row.credential_values = self._encrypt(credential_values)
        if credential_info is not None:
            row.credential_info = dict(credential_info)
        return await self._save(row, updated_by)

    async def list(self, *, page: int = 1, size: int = 100) -> Page[StoredCredential]:
        check_page(page, size)
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(Credential))
        rows = await self.session.scalars(
            sa.select(Credential)
            .order_by(Credential.credential_name)
            .limit(size)
            .offset((page - 1) * size)
        )
        return Page([self._out(r) for r in rows], int(total or 0), page, size)


async def catalog_version(session: AsyncSession) -> str:
    """A fingerprint of both tables (every row's key and last change): it changes
    whenever a stored model or credential is added, changed or removed. Cheap: no
    secret is read or decrypted."""
    digest = hashlib.sha256()
    for table, key in ((DbModel, DbModel.model_id), (Credential, Credential.credential_name)):
        digest.update(table.__tablename__.encode())
        for ident, updated_at in await session.execute(
            sa.select(key, table.updated_at).order_by(key)
        ):
            digest.update(f"\x00{ident}\x01{updated_at.isoformat()}".encode())
    return digest.hexdigest()
