"""Models and credentials stored in the database, end to end on SQLite and PostgreSQL.

A model added with /model/new (pointing at a mock OpenAI upstream) becomes callable
through the openai SDK without a restart; /model/update changes where it goes;
/model/delete makes it a 404 model_not_found again. Credentials are stored
encrypted (the raw column holds no secret), shown masked, and usable by models.
Bodies are validated (400/404/409 naming the field) and only admins may change
anything; viewers read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from bastion.storage.database import create_engine
from tests.conftest import PostgresServer
from tests.e2e.helpers import MASTER_KEY, MockPool, assert_openai_error, auth, running, sync_client
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess

UPSTREAM_KEY = "sk-upstream-very-secret-7f3a9c2e"
SALT = "test-salt-key-for-stored-secrets-1b2c3d"
CONFIG_MODEL = "fake-chat"
WAIT_S = 15.0  # bound on "becomes routable": workers poll every 2 s


class Gateway:
    def __init__(self, process: GatewayProcess, database_url: str) -> None:
        self.process = process
        self.database_url = database_url

    def post(self, path: str, body: Any, key: str = MASTER_KEY) -> httpx.Response:
        return httpx.post(self.process.url + path, json=body, headers=auth(key), timeout=10)

    def get(self, path: str, key: str = MASTER_KEY, **params: Any) -> httpx.Response:
        return httpx.get(self.process.url + path, params=params, headers=auth(key), timeout=10)

    def patch(self, path: str, body: Any, key: str = MASTER_KEY) -> httpx.Response:
        return httpx.patch(self.process.url + path, json=body, headers=auth(key), timeout=10)

    def delete(self, path: str, key: str = MASTER_KEY) -> httpx.Response:
        return httpx.delete(self.process.url + path, headers=auth(key), timeout=10)

    def chat(self, model: str, key: str = MASTER_KEY) -> str:
        reply = sync_client(self.process, key).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        return str(reply.choices[0].message.content)

    def raw(self, sql: str) -> str:
        async def read() -> str:
            engine = create_engine(self.database_url)
            try:
                async with engine.connect() as conn:
                    rows = (await conn.execute(sa.text(sql))).all()
            finally:
                await engine.dispose()
            return repr(rows)

        return asyncio.run(read())


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds, for at most WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _config(database_url: str, *, stored: bool = True) -> dict[str, Any]:
    general: dict[str, Any] = {"master_key": MASTER_KEY, "database_url": database_url}
    if stored:
        general["store_model_in_db"] = True
    return {
        "model_list": [
            {
                "model_name": CONFIG_MODEL,
                "litellm_params": {"model": "fake/fake-chat"},
                "model_info": {"id": "config-fake"},
            }
        ],
        "credential_list": [
            {"credential_name": "cfg-cred", "credential_values": {"api_key": "sk-config-0000"}}
        ],
        "general_settings": general,
    }


@pytest.fixture(scope="module")
def upstream(mocks: MockPool) -> MockOpenAIUpstream:
    return mocks.new(api_key=UPSTREAM_KEY, name="stored")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    env = {"LITELLM_SALT_KEY": SALT}
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('models') / 'bastion.db'}"
        with running(_config(url), env=env) as process:
            yield Gateway(process, url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        with running(_config(url), env=env) as process:
            yield Gateway(process, url)
    finally:
        server.drop_database(url)


def test_model_new_update_delete_through_the_openai_sdk(
    gw: Gateway, upstream: MockOpenAIUpstream
) -> None:
    name = "db-gpt"
    assert status_of(lambda: gw.chat(name)) == 404
    created = ok(
        gw.post(
            "/model/new",
            {
                "model_name": name,
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_base": upstream.openai_base,
                    "api_key": UPSTREAM_KEY,
                },
                "model_info": {"id": "db-gpt-1", "mode": "chat"},
            },
        )
    )
    assert created["model_id"] == "db-gpt-1" and created["model_info"]["id"] == "db-gpt-1"
    assert UPSTREAM_KEY not in str(created)
    assert created["litellm_params"]["api_key"] == "sk****2e"

    eventually(lambda: status_of(lambda: gw.chat(name)) == 200, "the new model answers")
    assert any(r.model == "gpt-4o" for r in upstream.requests)

    stored = gw.raw("SELECT litellm_params FROM db_models")
    assert UPSTREAM_KEY not in stored and upstream.openai_base in stored

    info = ok(gw.get("/model/info"))
    by_id = {m["model_info"]["id"]: m for m in info["data"]}
    assert by_id["config-fake"]["model_info"]["db_model"] is False
    assert by_id["db-gpt-1"]["model_info"]["db_model"] is True
    assert by_id["db-gpt-1"]["model_name"] == name
    assert UPSTREAM_KEY not in str(info)
    assert name in {m["id"] for m in ok(gw.get("/v1/models"))["data"]}

    updated = ok(
        gw.post(
            "/model/update",
            {"model_info": {"id": "db-gpt-1"}, "litellm_params": {"model": "openai/gpt-4o-mini"}},
        )
    )
    assert updated["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert updated["litellm_params"]["api_key"] == "sk****2e"  # kept, still masked
    upstream.clear()

    def went_to_mini() -> bool:
        gw.chat(name)
        return any(r.model == "gpt-4o-mini" for r in upstream.requests)

    eventually(went_to_mini, "the updated model calls gpt-4o-mini")

    assert ok(gw.post("/model/delete", {"id": "db-gpt-1"})) == {
        "message": "Model: db-gpt-1 deleted successfully"
    }
    eventually(lambda: status_of(lambda: gw.chat(name)) == 404, "the deleted model is gone")
    with pytest.raises(openai.NotFoundError) as caught:
        gw.chat(name)
    assert "model_not_found" in str(caught.value.body)
    assert "db-gpt-1" not in str(ok(gw.get("/model/info")))
    assert gw.chat(CONFIG_MODEL)  # config models are still served


def test_credentials_are_encrypted_masked_and_usable(
    gw: Gateway, upstream: MockOpenAIUpstream
) -> None:
    ok(
        gw.post(
            "/credentials",
            {
                "credential_name": "upstream-cred",
                "credential_values": {"api_key": UPSTREAM_KEY, "api_base": upstream.openai_base},
                "credential_info": {"owner": "platform"},
            },
        )
    )
    raw = gw.raw("SELECT credential_values FROM credentials")
    assert UPSTREAM_KEY not in raw and upstream.openai_base not in raw

    listed = ok(gw.get("/credentials"))
    assert listed["success"] is True and UPSTREAM_KEY not in str(listed)
    names = {c["credential_name"]: c for c in listed["credentials"]}
    assert set(names) >= {"cfg-cred", "upstream-cred"}
    assert "sk-config-0000" not in str(listed)
    one = ok(gw.get("/credentials/by_name/upstream-cred"))
    assert one == ok(gw.get("/credentials/upstream-cred"))
    assert one["credential_values"] == {"api_key": "sk****2e", "api_base": upstream.openai_base}
    assert one["credential_info"] == {"owner": "platform"}

    ok(
        gw.post(
            "/model/new",
            {
                "model_name": "cred-gpt",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "litellm_credential_name": "upstream-cred",
                },
                "model_info": {"id": "cred-gpt-1"},
            },
        )
    )
    eventually(lambda: status_of(lambda: gw.chat("cred-gpt")) == 200, "model with credential")
    assert upstream.last_request.model == "gpt-4o"

    in_use = assert_openai_error(gw.delete("/credentials/upstream-cred"), 409)
    assert "cred-gpt-1" in in_use["message"]

    ok(gw.patch("/credentials/upstream-cred", {"credential_info": {"team": "search"}}))
    patched = ok(gw.get("/credentials/by_name/upstream-cred"))
    assert patched["credential_info"] == {"owner": "platform", "team": "search"}
    # Sending the masked value back keeps the real key: the model still authenticates.
    ok(gw.patch("/credentials/upstream-cred", {"credential_values": {"api_key": "sk****2e"}}))
    upstream.clear()
    assert gw.chat("cred-gpt")

    ok(gw.post("/model/delete", {"id": "cred-gpt-1"}))
    assert ok(gw.delete("/credentials/upstream-cred"))["success"] is True
    assert_openai_error(gw.get("/credentials/by_name/upstream-cred"), 404)


def test_bad_bodies_are_refused_naming_the_field(gw: Gateway) -> None:
    def refused(response: httpx.Response, status: int, param: str) -> None:
        error = assert_openai_error(response, status)
        assert error["param"] == param, error

    base = {"model_name": "m", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}}
    refused(gw.post("/model/new", {"litellm_params": {"model": "x"}}), 400, "model_name")
    refused(gw.post("/model/new", {"model_name": "m"}), 400, "litellm_params")
    refused(
        gw.post("/model/new", {"model_name": "m", "litellm_params": {}}),
        400,
        "litellm_params.model",
    )
    refused(
        gw.post("/model/new", {"model_name": "m", "litellm_params": {"model": "nosuch/x"}}),
        400,
        "litellm_params.model",
    )
    refused(
        gw.post("/model/new", {**base, "litellm_params": {"model": "openai/x", "rpm": -1}}),
        400,
        "litellm_params.rpm",
    )
    refused(
        gw.post("/model/new", {**base, "model_info": {"mode": "telepathy"}}),
        400,
        "model_info.mode",
    )
    refused(
        gw.post(
            "/model/new",
            {
                "model_name": "m",
                "litellm_params": {"model": "openai/x", "litellm_credential_name": "nope"},
            },
        ),
        400,
        "litellm_params.litellm_credential_name",
    )
    refused(
        gw.post("/model/new", {**base, "model_info": {"id": "config-fake"}}), 409, "model_info.id"
    )
    ok(gw.post("/model/new", {**base, "model_info": {"id": "dup-1"}}))
    refused(gw.post("/model/new", {**base, "model_info": {"id": "dup-1"}}), 409, "model_info.id")
    refused(gw.post("/model/update", {"litellm_params": {"rpm": 1}}), 400, "model_info.id")
    refused(gw.post("/model/update", {"model_info": {"id": "ghost"}}), 404, "model_info.id")
    refused(
        gw.post(
            "/model/update", {"model_info": {"id": "dup-1"}, "litellm_params": {"model": "zzz/q"}}
        ),
        400,
        "litellm_params.model",
    )
    refused(gw.post("/model/delete", {"id": "ghost"}), 404, "id")
    refused(gw.post("/model/delete", {"id": "config-fake"}), 400, "id")
    refused(gw.post("/model/delete", {}), 400, "id")
    ok(gw.post("/model/delete", {"id": "dup-1"}))

    refused(gw.post("/credentials", {"credential_name": "c"}), 400, "credential_values")
    refused(
        gw.post("/credentials", {"credential_values": {"api_key": "k"}}), 400, "credential_name"
    )
    refused(
        gw.post("/credentials", {"credential_name": "cfg-cred", "credential_values": {"a": "b"}}),
        409,
        "credential_name",
    )
    refused(gw.patch("/credentials/ghost", {"credential_info": {}}), 404, "credential_name")
    refused(gw.delete("/credentials/cfg-cred"), 400, "credential_name")
    refused(gw.post("/model/new", "not an object"), 400, None)  # type: ignore[arg-type]


def test_only_admins_change_models_and_viewers_read(gw: Gateway) -> None:
    keys: dict[str, str] = {}
    for user_id, role in (("m-viewer", "proxy_admin_viewer"), ("m-user", "internal_user")):
        ok(gw.post("/user/new", {"user_id": user_id, "user_role": role}))
        keys[user_id] = ok(gw.post("/key/generate", {"user_id": user_id}))["key"]
    keys["plain"] = ok(gw.post("/key/generate", {}))["key"]
    body = {"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}
    cred = {"credential_name": "rbac-cred", "credential_values": {"api_key": "secret-value-123456"}}
    for who, key in keys.items():
        assert_openai_error(gw.post("/model/new", body, key), 403)
        assert_openai_error(gw.post("/model/delete", {"id": "config-fake"}, key), 403)
        assert_openai_error(gw.post("/credentials", cred, key), 403)
        assert_openai_error(gw.delete("/credentials/cfg-cred", key), 403)
        if who != "m-viewer":
            assert_openai_error(gw.get("/credentials", key), 403)
    listed = ok(gw.get("/credentials", keys["m-viewer"]))
    assert "sk-config-0000" not in str(listed)
    ok(gw.post("/credentials", cred))
    shown = ok(gw.get("/credentials/by_name/rbac-cred", keys["m-viewer"]))
    assert shown["credential_values"] == {"api_key": "se****56"}
    ok(gw.delete("/credentials/rbac-cred"))


def test_without_store_model_in_db_model_new_says_how_to_enable_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('models-off') / 'bastion.db'}"
    with running(_config(url, stored=False), env={"LITELLM_SALT_KEY": SALT}) as process:
        gw = Gateway(process, url)
        body = {"model_name": "x", "litellm_params": {"model": "openai/x"}}
        error = assert_openai_error(gw.post("/model/new", body), 400)
        assert "STORE_MODEL_IN_DB" in error["message"]
        assert "store_model_in_db" in error["message"]
        # Credentials are stored regardless, as in LiteLLM.
        ok(gw.post("/credentials", {"credential_name": "c", "credential_values": {"k": "v"}}))


def test_with_two_workers_a_new_model_reaches_both(
    upstream: MockOpenAIUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each call opens a new connection, so calls land on both workers; only after the
    other worker's poll has loaded the model do twenty calls in a row succeed."""
    url = f"sqlite:///{tmp_path_factory.mktemp('models-workers') / 'bastion.db'}"
    process = GatewayProcess(
        _config(url), env={"LITELLM_SALT_KEY": SALT}, args=["--workers", "2"], startup_timeout=30
    )
    with process:
        gw = Gateway(process, url)
        body = {
            "model_name": "two-workers",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": upstream.openai_base,
                "api_key": UPSTREAM_KEY,
            },
            "model_info": {"id": "tw-1"},
        }
        ok(gw.post("/model/new", body))

        def all_answer(expected: int) -> bool:
            return all(status_of(lambda: gw.chat("two-workers")) == expected for _ in range(20))

        eventually(lambda: all_answer(200), "twenty calls in a row succeed on both workers")
        ok(gw.post("/model/delete", {"id": "tw-1"}))
        eventually(lambda: all_answer(404), "twenty calls in a row get model_not_found")
