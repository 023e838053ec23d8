"""Persistent state: tenancy (organizations, teams, users, keys, end users, budgets),
stored models and credentials, the spend ledger and the audit log.

SQLAlchemy 2 (async) over PostgreSQL (asyncpg) or SQLite (aiosqlite), with Alembic
migrations shipped in the package. Nothing here runs on the request path: the
gateway loads :func:`load_auth_snapshot` into memory and writes spend with
:func:`apply_spend_batch` from a background task.
"""

from typing import Any

from bastion.storage.budget_reset import ResetResult, reset_budgets
from bastion.storage.crypto import Cipher, decrypt_value, encrypt_value
from bastion.storage.database import Database, create_engine
from bastion.storage.errors import (
    DecryptionError,
    DuplicateError,
    InUseError,
    MissingReferenceError,
    NotFoundError,
    StorageError,
)
from bastion.storage.repositories import Page, Store, hash_key, key_display_name
from bastion.storage.snapshot import AuthSnapshot, load_auth_snapshot
from bastion.storage.spend import (
    SpendBatchResult,
    SpendRecord,
    apply_spend_batch,
    delete_spend_logs_older_than,
)
from bastion.storage.urls import normalize_database_url, resolve_database_url


def __getattr__(name: str) -> Any:
    # Alembic is imported only when migrating (the CLI, once), not by every worker.
    if name == "migrate":
        from bastion.storage.migrator import migrate

        return migrate
    raise AttributeError(name)


__all__ = [
    "AuthSnapshot",
    "Cipher",
    "Database",
    "DecryptionError",
    "DuplicateError",
    "InUseError",
    "MissingReferenceError",
    "NotFoundError",
    "Page",
    "ResetResult",
    "SpendBatchResult",
    "SpendRecord",
    "StorageError",
    "Store",
    "apply_spend_batch",
    "create_engine",
    "decrypt_value",
    "delete_spend_logs_older_than",
    "encrypt_value",
    "hash_key",
    "key_display_name",
    "load_auth_snapshot",
    "migrate",
    "normalize_database_url",
    "reset_budgets",
    "resolve_database_url",
]
