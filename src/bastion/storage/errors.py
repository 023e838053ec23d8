"""Typed storage errors the management API turns into HTTP statuses.

    StorageError                 base of everything raised here
    ├── DuplicateError           409 a unique field already holds this value
    ├── NotFoundError            404 no row with this id (also a core NotFoundError)
    ├── MissingReferenceError    400 a field points at a row that does not exist
    ├── InUseError               409 a row cannot be deleted while others point at it
    └── DecryptionError          500 a stored secret cannot be decrypted with this key

They carry the entity and field so the API can name them; messages never include
secrets (a duplicate key value is reported as "key", not by its value).
"""

from __future__ import annotations

from bastion.core import errors as core


class StorageError(core.BastionError):
    """Base class; ``status``/``type`` let the API render it like any client error."""


class DuplicateError(StorageError):
    status = 409
    type = "invalid_request_error"
    code = "duplicate"

    def __init__(self, entity: str, field: str, value: object | None = None) -> None:
        shown = f" {value!r}" if value is not None else ""
        super().__init__(
            f"a {entity} with {field}{shown} already exists; choose another {field}", param=field
        )
        self.entity = entity
        self.field = field
        self.value = value


class NotFoundError(StorageError, core.NotFoundError):
    status = 404
    type = "not_found_error"

    def __init__(self, entity: str, ident: object, *, field: str | None = None) -> None:
        super().__init__(f"{entity} {ident!r} not found", param=field)
        self.entity = entity
        self.ident = ident


class MissingReferenceError(StorageError, core.InvalidRequestError):
    status = 400
    type = "invalid_request_error"

    def __init__(self, field: str, value: object, entity: str | None = None) -> None:
        what = entity or field.removesuffix("_id")
        super().__init__(
            f"{field} {value!r} does not exist: create the {what} first or fix the {field}",
            param=field,
        )
        self.field = field
        self.value = value


class InUseError(StorageError):
    status = 409
    type = "invalid_request_error"
    code = "in_use"

    def __init__(
        self, entity: str, ident: object, detail: str = "other records refer to it"
    ) -> None:
        super().__init__(f"cannot delete {entity} {ident!r}: {detail}")
        self.entity = entity
        self.ident = ident


class DecryptionError(StorageError):
    status = 500
    type = "internal_server_error"

    def __init__(self, what: str = "a stored secret") -> None:
        super().__init__(
            f"cannot decrypt {what}: LITELLM_SALT_KEY (or, when unset, the master key) is not "
            "the one it was encrypted with"
        )
