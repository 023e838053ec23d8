"""Alembic migrations shipped inside the package (run by :mod:`bastion.storage.migrator`)."""
