"""Alembic environment: runs on a connection handed over by bastion.storage.migrator.

There is no alembic.ini: ``bastion db upgrade`` and the server build the Alembic
config in code and pass an open (sync-facing) connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from bastion.storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `bastion db upgrade` (or bastion.storage.migrator), "
        "not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
