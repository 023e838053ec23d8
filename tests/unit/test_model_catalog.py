"""Stored models reach the router of every worker through the catalog's poll; a
request already routed keeps its deployment; config models may use a stored
credential. Two runtimes on one real database (SQLite and PostgreSQL) stand for two
workers: a change made through one is picked up by the other's refresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.app import Runtime, build_runtime
from bastion.config.loader import load_config_text
from bastion.core.deployment import Deployment
from bastion.core.errors import NotFoundError
from bastion.services.model_catalog import ModelCatalog
from bastion.storage.crypto import Cipher
from bastion.storage.database import Database
from bastion.storage.migrator import migrate

SALT = "unit-test-salt-key-0123456789"


def _yaml(url: str, *, extra_model: str = "") -> str:
    return f"""
model_list:
  - model_name: cfg
    litellm_params: {{model: fake/cfg}}
{extra_model}
general_settings:
  master_key: sk-master-unit
  database_url: "{url}"
  store_model_in_db: true
"""


@pytest.fixture
async def url(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LITELLM_SALT_KEY", SALT)
    await migrate(fresh_database_url)
    return fresh_database_url


@pytest.fixture
async def workers(url: str) -> AsyncIterator[tuple[Runtime, Runtime]]:
    runtimes = (
        build_runtime(load_config_text(_yaml(url))),
        build_runtime(load_config_text(_yaml(url))),
    )
    yield runtimes
    for runtime in runtimes:
        await runtime.tenancy.database.dispose()


def catalog(runtime: Runtime) -> ModelCatalog:
    assert runtime.models is not None
    return runtime.models


async def test_a_model_stored_through_one_worker_reaches_the_other(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    for runtime in workers:
        assert await catalog(runtime).refresh(force=True)
    assert two.table.lookup("db-model") is None
    async with one.tenancy.database.transaction() as store:
        await store.models.create(
            "db-model", {"model": "openai/gpt-4o", "api_key": "sk-one"}, model_id="m1"
        )
    assert await catalog(two).refresh()
    (deployment,) = two.table.lookup("db-model") or []
    assert (deployment.id, deployment.api_key, deployment.upstream_model) == (
        "m1",
        "sk-one",
        "gpt-4o",
    )
    assert deployment.model_info["db_model"] is True
    assert {d.id for d in two.health.deployments} >= {"m1"}
    assert not await catalog(two).refresh()  # nothing changed: nothing rebuilt

    async with one.tenancy.database.transaction() as store:
        await store.models.update("m1", litellm_params={"model": "openai/gpt-4o-mini"})
    assert await catalog(two).refresh()
    (deployment,) = two.table.lookup("db-model") or []
    assert deployment.upstream_model == "gpt-4o-mini" and deployment.api_key == "sk-one"

    # A stored model with a config model's name joins that group.
    async with one.tenancy.database.transaction() as store:
        await store.models.create("cfg", {"model": "fake/other"}, model_id="m2")
    assert await catalog(two).refresh()
    assert sorted(d.id for d in two.table.lookup("cfg") or []) == sorted(
        [two.deployments[0].id, "m2"]
    )

    async with one.tenancy.database.transaction() as store:
        await store.models.delete("m1")
        await store.models.delete("m2")
    assert await catalog(two).refresh()
    assert two.table.lookup("db-model") is None
    assert [d.id for d in two.table.lookup("cfg") or []] == [two.deployments[0].id]


async def test_a_routed_request_keeps_its_deployment_while_the_table_changes(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, _ = workers
    async with one.tenancy.database.transaction() as store:
        await store.models.create("db-model", {"model": "fake/x"}, model_id="m1")
    assert await catalog(one).refresh(force=True)
    started, release = asyncio.Event(), asyncio.Event()

    async def attempt(deployment: Deployment) -> str:
        started.set()
        await release.wait()
        return deployment.id

    call = asyncio.create_task(one.router.route("db-model", attempt))
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({call, waiting}, return_when=asyncio.FIRST_COMPLETED)
    assert started.is_set(), call.exception()
    async with one.tenancy.database.transaction() as store:
        await store.models.delete("m1")
    assert await catalog(one).refresh()
    release.set()
    routed = await call
    assert routed.value == "m1" and routed.deployment.id == "m1"
    with pytest.raises(NotFoundError):
        await one.router.route("db-model", attempt)


async def test_config_models_may_use_a_stored_credential(url: str) -> None:
    model = """  - model_name: via-stored
    litellm_params: {model: openai/gpt-4o, litellm_credential_name: vault}
"""
    loaded = load_config_text(_yaml(url, extra_model=model))
    runtime = build_runtime(loaded)
    assert any("'vault' is not in credential_list" in w for w in loaded.warnings)
    try:
        await catalog(runtime).refresh(force=True)
        assert runtime.table.lookup("via-stored") is None
        assert any("vault" in line for line in catalog(runtime).problems)
        async with runtime.tenancy.database.transaction() as store:
            await store.credentials.create("vault", {"api_key": "sk-vault", "api_base": "http://v"})
        assert await catalog(runtime).refresh()
        (deployment,) = runtime.table.lookup("via-stored") or []
        assert (deployment.api_key, deployment.api_base) == ("sk-vault", "http://v")
        assert "db_model" not in deployment.model_info
    finally:
        await runtime.tenancy.database.dispose()


async def test_rows_encrypted_with_another_key_are_left_out_not_fatal(url: str) -> None:
    other = Database.connect(url, cipher=Cipher("a-different-salt-key-999"))
    try:
        async with other.transaction() as store:
            await store.models.create(
                "alien", {"model": "fake/a", "api_key": "sk-x"}, model_id="a1"
            )
    finally:
        await other.dispose()
    runtime = build_runtime(load_config_text(_yaml(url)))
    try:
        async with runtime.tenancy.database.transaction() as store:
            await store.models.create("fine", {"model": "fake/f", "api_key": "sk-f"}, model_id="f1")
        await catalog(runtime).refresh(force=True)
        assert runtime.table.lookup("alien") is None
        assert [d.id for d in runtime.table.lookup("fine") or []] == ["f1"]
        assert any("a1" in line and "decrypt" in line for line in catalog(runtime).problems)
        assert not any("sk-x" in line for line in catalog(runtime).problems)
    finally:
        await runtime.tenancy.database.dispose()


def test_off_by_default_and_config_credentials_still_checked(tmp_path: Any) -> None:
    from bastion.core.errors import ConfigError

    text = _yaml(f"sqlite:///{tmp_path / 'x.db'}").replace("  store_model_in_db: true\n", "")
    runtime = build_runtime(load_config_text(text))
    assert not catalog(runtime).enabled
    broken = text.replace(
        "model_list:\n",
        "model_list:\n  - model_name: b\n    litellm_params: {model: fake/b, "
        "litellm_credential_name: nope}\n",
    )
    with pytest.raises(ConfigError, match="no credential named 'nope'"):
        build_runtime(load_config_text(broken))
