"""Persistent state: tenancy (organizations, teams, users, keys, end users, budgets),
stored models and credentials, the spend ledger and the audit log.

SQLAlchemy 2 (async) over PostgreSQL (asyncpg) or SQLite (aiosqlite), with Alembic
migrations shipped in the package. Nothing here runs on the request path: the
gateway loads :func:`load_auth_snapshot` into memory and writes spend with
:func:`apply_spend_batch` from a background task.
"""

import importlib
from typing import Any

# Every public name and the module it lives in. Imported on first use (PEP 562), so
# the request path, which needs only the snapshot and spend modules, does not pay
# for the repositories, the budget-reset job or Alembic at startup.
_EXPORTS = {
    "ResetResult": "budget_reset",
    "reset_budgets": "budget_reset",
    "Cipher": "crypto",
    "decrypt_value": "crypto",
    "encrypt_value": "crypto",
    "Database": "database",
    "create_engine": "database",
    "DecryptionError": "errors",
    "DuplicateError": "errors",
    "InUseError": "errors",
    "MissingReferenceError": "errors",
    "NotFoundError": "errors",
    "StorageError": "errors",
    "Page": "repositories",
    "Store": "repositories",
    "hash_key": "repositories",
    "key_display_name": "repositories",
    "AuthSnapshot": "snapshot",
    "load_auth_snapshot": "snapshot",
    "SpendBatchResult": "spend",
    "SpendRecord": "spend",
    "apply_spend_batch": "spend",
    "delete_spend_logs_older_than": "spend",
    "normalize_database_url": "urls",
    "resolve_database_url": "urls",
    "migrate": "migrator",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"bastion.storage.{module}"), name)


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
