"""Azure OpenAI deployments end to end: deployment URLs, api-version, api-key, credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.e2e.helpers import MASTER_KEY, USER_MSG, MockPool, auth, running, sync_client
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess

AZURE_KEY = "azure-e2e-key-0d2a7c51"
CRED_KEY = "azure-e2e-credential-key-6b13"
ENV_KEY = "azure-e2e-env-key-f00d42"
API_VERSION = "2024-08-01-preview"
CRED_VERSION = "2024-06-01"
ENV_VERSION = "2024-10-21"


@dataclass
class Env:
    gw: GatewayProcess
    direct: MockOpenAIUpstream
    cred: MockOpenAIUpstream
    from_env: MockOpenAIUpstream
    client: openai.OpenAI


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    direct = mocks.new(api_key=AZURE_KEY, name="az")
    cred = mocks.new(api_key=CRED_KEY, name="az-cred")
    from_env = mocks.new(api_key=ENV_KEY, name="az-env")
    azure = {"api_base": direct.base_url, "api_version": API_VERSION, "api_key": AZURE_KEY}
    config = {
        "model_list": [
            {"model_name": "az-chat", "litellm_params": {"model": "azure/my-gpt4o", **azure}},
            {
                "model_name": "az-embed",
                "litellm_params": {"model": "azure/my-embedder", **azure},
                "model_info": {"mode": "embedding"},
            },
            {
                "model_name": "az-cred",
                "litellm_params": {
                    "model": "azure/cred-deployment",
                    "litellm_credential_name": "east-azure",
                },
            },
            {
                "model_name": "az-env",
                "litellm_params": {
                    "model": "azure/env-deployment",
                    "api_base": "os.environ/E2E_AZURE_BASE",
                    "api_key": "os.environ/E2E_AZURE_KEY",
                    "api_version": "os.environ/E2E_AZURE_VERSION",
                },
            },
        ],
        "credential_list": [
            {
                "credential_name": "east-azure",
                "credential_values": {
                    "api_key": CRED_KEY,
                    "api_base": cred.base_url,
                    "api_version": CRED_VERSION,
                },
                "credential_info": {"description": "the east region"},
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    process_env = {
        "E2E_AZURE_BASE": from_env.base_url,
        "E2E_AZURE_KEY": ENV_KEY,
        "E2E_AZURE_VERSION": ENV_VERSION,
    }
    with running(config, env=process_env) as gw:
        yield Env(gw, direct, cred, from_env, sync_client(gw))


def test_chat_uses_deployment_url_api_version_and_api_key(env: Env) -> None:
    resp = env.client.chat.completions.create(model="az-chat", messages=USER_MSG)
    assert resp.choices[0].message.content == "[az] Mock reply to: hello there"
    seen = env.direct.last_request
    assert seen.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert seen.query == {"api-version": API_VERSION}
    assert seen.headers["api-key"] == AZURE_KEY
    assert "authorization" not in seen.headers
    assert MASTER_KEY.encode() not in seen.body


def test_streaming(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="az-chat", messages=USER_MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[az] Mock reply to: hello there"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    seen = env.direct.last_request
    assert seen.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert seen.query["api-version"] == API_VERSION
    assert len(env.direct.streams) == 1


def test_embeddings(env: Env) -> None:
    resp = env.client.embeddings.create(
        model="az-embed", input="embed me", encoding_format="float", dimensions=4
    )
    assert len(resp.data) == 1 and len(resp.data[0].embedding) == 4
    seen = env.direct.last_request
    assert seen.path == "/openai/deployments/my-embedder/embeddings"
    assert seen.query == {"api-version": API_VERSION}
    assert seen.headers["api-key"] == AZURE_KEY


def test_credential_list_supplies_key_base_and_version(env: Env) -> None:
    resp = env.client.chat.completions.create(model="az-cred", messages=USER_MSG)
    assert resp.choices[0].message.content == "[az-cred] Mock reply to: hello there"
    seen = env.cred.last_request
    assert seen.path == "/openai/deployments/cred-deployment/chat/completions"
    assert seen.query == {"api-version": CRED_VERSION}
    assert seen.headers["api-key"] == CRED_KEY
    assert env.direct.count() == 0


def test_os_environ_values(env: Env) -> None:
    resp = env.client.chat.completions.create(model="az-env", messages=USER_MSG)
    assert resp.choices[0].message.content == "[az-env] Mock reply to: hello there"
    seen = env.from_env.last_request
    assert seen.path == "/openai/deployments/env-deployment/chat/completions"
    assert seen.query == {"api-version": ENV_VERSION}
    assert seen.headers["api-key"] == ENV_KEY


def test_no_azure_key_anywhere_in_gateway_answers(env: Env) -> None:
    text = httpx.get(f"{env.gw.url}/v1/model/info", headers=auth()).text
    assert "env-deployment" in text
    for secret in (AZURE_KEY, CRED_KEY, ENV_KEY, MASTER_KEY):
        assert secret not in text
    assert AZURE_KEY not in env.gw.log() and CRED_KEY not in env.gw.log()
