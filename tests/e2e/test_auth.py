"""The master key: from config or LITELLM_MASTER_KEY, in every header form, never leaked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.e2e.helpers import (
    USER_MSG,
    MockPool,
    assert_openai_error,
    running,
    sync_client,
)
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess

CONFIG_KEY = "sk-e2e-config-master-8d3e19a"
ENV_KEY = "sk-e2e-env-master-27fb6c0"
PROVIDER_KEY = "sk-e2e-provider-auth-51aa"


def _config(up: MockOpenAIUpstream, master_key: str | None = None) -> dict[str, object]:
    config: dict[str, object] = {
        "model_list": [
            {
                "model_name": "gpt",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_base": up.openai_base,
                    "api_key": PROVIDER_KEY,
                },
            }
        ]
    }
    if master_key:
        config["general_settings"] = {"master_key": master_key}
    return config


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    key: str


@pytest.fixture(scope="module")
def upstream(mocks: MockPool) -> MockOpenAIUpstream:
    return mocks.new(api_key=PROVIDER_KEY, name="auth")


@pytest.fixture(scope="module")
def config_keyed(upstream: MockOpenAIUpstream) -> Iterator[Env]:
    # Debug logging: the key must stay out of even the most verbose log.
    with running(_config(upstream, CONFIG_KEY), args=["--log-level", "debug"]) as gw:
        yield Env(gw, upstream, CONFIG_KEY)


@pytest.fixture(scope="module")
def env_keyed(upstream: MockOpenAIUpstream) -> Iterator[Env]:
    with running(_config(upstream), env={"LITELLM_MASTER_KEY": ENV_KEY}) as gw:
        yield Env(gw, upstream, ENV_KEY)


@pytest.fixture(scope="module")
def open_gateway(upstream: MockOpenAIUpstream) -> Iterator[Env]:
    with running(_config(upstream)) as gw:
        yield Env(gw, upstream, "")


@pytest.fixture(params=["config", "env"])
def keyed(request: pytest.FixtureRequest) -> Env:
    name = "config_keyed" if request.param == "config" else "env_keyed"
    env: Env = request.getfixturevalue(name)
    return env


HEADER_FORMS = {
    "authorization-bearer": lambda k: {"Authorization": f"Bearer {k}"},
    "authorization-lowercase-bearer": lambda k: {"authorization": f"bearer {k}"},
    "x-api-key": lambda k: {"x-api-key": k},
    "api-key": lambda k: {"api-key": k},
    "x-goog-api-key": lambda k: {"x-goog-api-key": k},
    "x-litellm-api-key": lambda k: {"x-litellm-api-key": k},
}


@pytest.mark.parametrize("form", list(HEADER_FORMS))
def test_every_header_form_is_accepted(keyed: Env, form: str) -> None:
    headers = HEADER_FORMS[form](keyed.key)
    resp = httpx.post(
        f"{keyed.gw.url}/v1/chat/completions",
        headers=headers,
        json={"model": "gpt", "messages": USER_MSG},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "[auth] Mock reply to: hello there"
    # The client's key is the gateway's; the upstream sees the provider key only.
    assert keyed.up.last_request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    models = httpx.get(f"{keyed.gw.url}/v1/models", headers=headers)
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["gpt"]


def test_sdk_with_the_right_key(keyed: Env) -> None:
    resp = sync_client(keyed.gw, keyed.key).chat.completions.create(model="gpt", messages=USER_MSG)
    assert resp.choices[0].message.content == "[auth] Mock reply to: hello there"


def test_wrong_key_is_401_for_the_sdk(keyed: Env) -> None:
    client = sync_client(keyed.gw, "sk-not-the-master-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt", messages=USER_MSG)
    assert caught.value.status_code == 401
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "authentication_error"
    assert keyed.key not in str(body)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert keyed.up.count() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sk-wrong"},
        {"x-api-key": "sk-wrong"},
        {"Authorization": "Basic c2stZTJl"},
    ],
    ids=["missing", "empty-bearer", "wrong-bearer", "wrong-x-api-key", "basic"],
)
def test_missing_or_wrong_key_is_openai_shaped_401(keyed: Env, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("POST", "/v1/chat/completions", {"model": "gpt", "messages": USER_MSG}),
        ("POST", "/v1/embeddings", {"model": "gpt", "input": "x"}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/model/info", None),
        ("GET", "/health", None),
    ]:
        resp = httpx.request(method, keyed.gw.url + path, headers=headers, json=body)
        error = assert_openai_error(resp, 401)
        assert error["type"] == "authentication_error"
        assert keyed.key not in resp.text
    assert keyed.up.count() == 0


def test_wrong_key_in_one_header_is_not_rescued_by_another(keyed: Env) -> None:
    # The first key found wins; a valid key in a later header does not override it.
    resp = httpx.post(
        f"{keyed.gw.url}/v1/chat/completions",
        headers={"Authorization": "Bearer sk-wrong", "x-api-key": keyed.key},
        json={"model": "gpt", "messages": USER_MSG},
    )
    assert_openai_error(resp, 401)


def test_public_health_probes_need_no_key(keyed: Env) -> None:
    assert httpx.get(f"{keyed.gw.url}/health/liveliness").status_code == 200
    assert httpx.get(f"{keyed.gw.url}/health/readiness").status_code == 200


def test_master_key_never_in_log(keyed: Env) -> None:
    # Exercise successes, failures and upstream errors first, then read the whole log.
    client = sync_client(keyed.gw, keyed.key)
    client.chat.completions.create(model="gpt", messages=USER_MSG)
    with pytest.raises(openai.AuthenticationError):
        sync_client(keyed.gw, keyed.key + "x").chat.completions.create(
            model="gpt", messages=USER_MSG
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=USER_MSG)
    log = keyed.gw.log()
    assert "Application startup complete" in log
    assert keyed.key not in log
    assert PROVIDER_KEY not in log
    assert "NO MASTER KEY" not in log


def test_no_master_key_serves_open_and_says_so(open_gateway: Env) -> None:
    for headers in ({}, {"Authorization": "Bearer anything-at-all"}):
        resp = httpx.post(
            f"{open_gateway.gw.url}/v1/chat/completions",
            headers=headers,
            json={"model": "gpt", "messages": USER_MSG},
        )
        assert resp.status_code == 200, resp.text
    assert httpx.get(f"{open_gateway.gw.url}/v1/models").status_code == 200
    log = open_gateway.gw.log()
    assert "NO MASTER KEY" in log
    warning = next(line for line in log.splitlines() if "NO MASTER KEY" in line)
    assert "ANYONE" in warning
