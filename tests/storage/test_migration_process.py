"""`bastion serve` migrates in a forked child so the serving process never loads Alembic."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from bastion.services.migration_process import MigrationFailedError, migrate_outside
from bastion.services.tenancy import LATEST_REVISION, current_revision
from bastion.storage.urls import normalize_database_url


def test_a_new_database_is_migrated_to_the_newest_revision(fresh_database_url: str) -> None:
    target = normalize_database_url(fresh_database_url)
    assert migrate_outside(target) == LATEST_REVISION
    assert asyncio.run(current_revision(target)) == LATEST_REVISION
    assert migrate_outside(target) == LATEST_REVISION  # already there: nothing to do


def test_the_migrating_process_keeps_alembic_out_of_memory(tmp_path: object) -> None:
    script = (
        "import sys\n"
        "from bastion.services.migration_process import migrate_outside\n"
        "from bastion.storage.urls import normalize_database_url\n"
        f"print(migrate_outside(normalize_database_url('sqlite:///{tmp_path}/m.db')))\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == [LATEST_REVISION, "False"]


@pytest.mark.skipif(sys.platform != "linux", reason="the forked migration is Linux-only")
def test_a_failed_migration_is_reported_with_its_cause() -> None:
    target = normalize_database_url("postgresql://nobody:pw-secret@127.0.0.1:1/nowhere")
    with pytest.raises(MigrationFailedError) as caught:
        migrate_outside(target)
    message = str(caught.value)
    assert message.startswith("ConnectionRefusedError:")
    assert "pw-secret" not in message
