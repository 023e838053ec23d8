"""/key endpoints end to end: a key generated with the master key works at once through
the openai SDK; block, unblock, regenerate (with and without a grace period), delete and
expiry take effect on the very next request, without restarting the gateway. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PostgresServer
from tests.e2e.helpers import MASTER_KEY, assert_openai_error, auth, running, sync_client
from tests.support.gateway import GatewayProcess

MODEL = "fake-chat"


def _config(database_url: str) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": MODEL, "litellm_params": {"model": "fake/fake-chat"}}],
        "general_settings": {"master_key": MASTER_KEY, "database_url": database_url},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('keys') / 'bastion.db'}"
        with running(_config(url)) as process:
            yield process
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        with running(_config(url)) as process:
            yield process
    finally:
        server.drop_database(url)


def post(
    gw: GatewayProcess, path: str, body: dict[str, Any], as_key: str = MASTER_KEY
) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers=auth(as_key), timeout=10)


def get(gw: GatewayProcess, path: str, as_key: str = MASTER_KEY, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers=auth(as_key), timeout=10)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def generate(gw: GatewayProcess, **fields: Any) -> dict[str, Any]:
    return ok(post(gw, "/key/generate", fields))


def chat(gw: GatewayProcess, key: str) -> int:
    """200 on success, else the status of the refusal."""
    try:
        sync_client(gw, key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def refusal(gw: GatewayProcess, key: str) -> str:
    with pytest.raises(openai.AuthenticationError) as info:
        sync_client(gw, key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    return str(info.value.message)


def alias() -> str:
    return f"k-{uuid.uuid4().hex[:10]}"


def test_key_lifecycle_without_restart(gw: GatewayProcess) -> None:
    created = generate(gw, key_alias=alias(), models=[], metadata={"owner": "ci"})
    key = created["key"]
    assert key.startswith("sk-") and len(key) == 25
    assert created["token"] == hashlib.sha256(key.encode()).hexdigest()
    assert created["key_name"] == f"sk-...{key[-4:]}"
    assert created["expires"] is None
    assert chat(gw, key) == 200

    blocked = ok(post(gw, "/key/block", {"key": key}))
    assert blocked["blocked"] is True
    assert "blocked" in refusal(gw, key)
    ok(post(gw, "/key/unblock", {"key": created["token"]}))  # the hash works too
    assert chat(gw, key) == 200

    graced = ok(post(gw, "/key/regenerate", {"key": key, "grace_period": "1h"}))
    second = graced["key"]
    assert second != key and graced["token"] == hashlib.sha256(second.encode()).hexdigest()
    assert chat(gw, key) == 200
    assert chat(gw, second) == 200

    third = ok(post(gw, f"/key/{second}/regenerate", {"max_budget": 5}))
    assert third["max_budget"] == 5
    assert chat(gw, second) == 401
    assert chat(gw, third["key"]) == 200
    assert chat(gw, key) == 200  # the first grace period still runs

    deleted = ok(post(gw, "/key/delete", {"keys": [third["key"]]}))
    assert deleted == {"deleted_keys": [third["key"]]}
    assert chat(gw, third["key"]) == 401
    assert chat(gw, key) == 401  # gone with the key it pointed at

    log = gw.log()
    for secret in (key, second, third["key"], created["token"], graced["token"]):
        assert secret not in log


def test_key_expires_after_its_duration(gw: GatewayProcess) -> None:
    created = generate(gw, duration="1s")
    assert created["expires"] is not None
    assert chat(gw, created["key"]) == 200
    time.sleep(1.05)
    message = refusal(gw, created["key"])
    assert "expired" in message


def test_custom_key_update_info_and_list(gw: GatewayProcess) -> None:
    custom = f"sk-custom-{uuid.uuid4().hex}"
    name = alias()
    created = generate(gw, key=custom, key_alias=name, tpm_limit=10, tags=["a"])
    assert created["key"] == custom
    assert chat(gw, custom) == 200

    updated = ok(post(gw, "/key/update", {"key": custom, "rpm_limit": 7, "metadata": {"x": 1}}))
    assert (updated["rpm_limit"], updated["tpm_limit"], updated["metadata"]) == (7, 10, {"x": 1})

    info = ok(get(gw, "/key/info", key=custom))
    assert info["key"] == custom
    assert info["info"]["key_alias"] == name and info["info"]["rpm_limit"] == 7
    assert "token" not in info["info"]

    listed = ok(get(gw, "/key/list", key_alias=name))
    assert listed["keys"] == [created["token"]]
    assert (listed["total_count"], listed["current_page"], listed["total_pages"]) == (1, 1, 1)
    full = ok(get(gw, "/key/list", key_alias=name, return_full_object="true"))
    assert full["keys"][0]["key_alias"] == name

    page = ok(get(gw, "/key/list", size=1, page=1))
    assert len(page["keys"]) == 1 and page["total_pages"] == page["total_count"] >= 2

    assert ok(post(gw, "/key/delete", {"key_aliases": [name]})) == {"deleted_keys": [name]}
    assert_openai_error(get(gw, "/key/info", key=custom), 404)
    assert custom not in gw.log()


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"key": "custom-without-prefix"}, 400, "key"),
        ({"duration": "30x"}, 400, "duration"),
        ({"budget_duration": "soon"}, 400, "budget_duration"),
        ({"max_budget": -1}, 400, "max_budget"),
        ({"rpm_limit": -5}, 400, "rpm_limit"),
        ({"team_id": "no-such-team"}, 400, "team_id"),
        ({"user_id": "no-such-user"}, 400, "user_id"),
        ({"models": "gpt"}, 400, "models"),
        ({"key": MASTER_KEY}, 400, "key"),
    ],
)
def test_generate_rejects_bad_fields(
    gw: GatewayProcess, body: dict[str, Any], status: int, param: str
) -> None:
    error = assert_openai_error(post(gw, "/key/generate", body), status)
    assert error["param"] == param, error
    assert MASTER_KEY not in str(error)


def test_duplicate_alias_is_409_and_missing_keys_404(gw: GatewayProcess) -> None:
    name = alias()
    generate(gw, key_alias=name)
    error = assert_openai_error(post(gw, "/key/generate", {"key_alias": name}), 409)
    assert "key_alias" in error["message"]
    assert_openai_error(post(gw, "/key/block", {"key": "sk-never-issued"}), 404)
    assert_openai_error(post(gw, "/key/delete", {"keys": ["sk-never-issued"]}), 404)
    assert_openai_error(post(gw, "/key/delete", {}), 400)
    assert_openai_error(post(gw, "/key/regenerate", {"grace_period": "1h"}), 400)
    assert_openai_error(get(gw, "/key/info"), 400)
    assert_openai_error(get(gw, "/key/list", page="x"), 400)


def test_bad_grace_period_keeps_the_key(gw: GatewayProcess) -> None:
    key = generate(gw)["key"]
    error = assert_openai_error(
        post(gw, "/key/regenerate", {"key": key, "grace_period": "1x"}), 400
    )
    assert error["param"] == "grace_period"
    assert chat(gw, key) == 200


def test_sqlite_file_holds_hashes_only(gw: GatewayProcess, tmp_path: Path) -> None:
    """The raw key is not stored: the database file never contains it."""
    created = generate(gw)
    config = gw.config_path.read_text() if gw.config_path else ""
    if "sqlite" not in config:
        pytest.skip("file check applies to SQLite")
    db_path = Path(config.split("sqlite:///", 1)[1].split()[0].strip("'\""))
    data = (
        db_path.read_bytes() + Path(f"{db_path}-wal").read_bytes()
        if Path(f"{db_path}-wal").exists()
        else db_path.read_bytes()
    )
    assert created["key"].encode() not in data
