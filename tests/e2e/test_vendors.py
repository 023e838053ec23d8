"""OpenAI-compatible vendors: each prefix reaches its api_base with its own key variable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.e2e.helpers import (
    MASTER_KEY,
    USER_MSG,
    MockPool,
    auth,
    requests_for,
    running,
    sync_client,
)
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess


@dataclass(frozen=True)
class Case:
    prefix: str
    key_env: str
    upstream_model: str
    bare_base: bool = False  # give the host without /v1; the vendor row appends it

    @property
    def group(self) -> str:
        return f"{self.prefix}-group"

    @property
    def key(self) -> str:
        return f"key-for-{self.prefix}-5e1c"


CASES = [
    Case("groq", "GROQ_API_KEY", "llama-3.1-8b-instant"),
    Case("mistral", "MISTRAL_API_KEY", "mistral-small-latest"),
    Case("deepseek", "DEEPSEEK_API_KEY", "deepseek-chat"),
    Case("together_ai", "TOGETHERAI_API_KEY", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    Case("fireworks_ai", "FIREWORKS_AI_API_KEY", "accounts/fireworks/models/llama-v3p1-8b"),
    Case("openrouter", "OPENROUTER_API_KEY", "anthropic/claude-3.5-sonnet"),
    Case("xai", "XAI_API_KEY", "grok-2-latest"),
    Case("perplexity", "PERPLEXITYAI_API_KEY", "sonar-pro"),
    Case("hosted_vllm", "HOSTED_VLLM_API_KEY", "Qwen/Qwen2.5-7B-Instruct"),
    Case("ollama", "OLLAMA_API_KEY", "llama3.2:3b", bare_base=True),
    Case("lm_studio", "LM_STUDIO_API_KEY", "qwen2.5-7b-instruct"),
]


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    client: openai.OpenAI


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(name="vendors")
    model_list = [
        {
            "model_name": case.group,
            "litellm_params": {
                "model": f"{case.prefix}/{case.upstream_model}",
                "api_base": up.base_url if case.bare_base else up.openai_base,
            },
        }
        for case in CASES
    ]
    config = {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}}
    with running(config, env={case.key_env: case.key for case in CASES}) as gw:
        yield Env(gw, up, sync_client(gw))


@pytest.mark.parametrize("case", CASES, ids=[c.prefix for c in CASES])
def test_vendor_gets_its_key_and_unprefixed_model(env: Env, case: Case) -> None:
    resp = env.client.chat.completions.create(model=case.group, messages=USER_MSG)
    assert resp.choices[0].message.content == "[vendors] Mock reply to: hello there"
    seen = requests_for(env.up, case.upstream_model)
    assert len(seen) == 1
    request = seen[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {case.key}"
    assert request.json["messages"] == USER_MSG


def test_vendor_streaming(env: Env) -> None:
    stream = env.client.chat.completions.create(model="groq-group", messages=USER_MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "[vendors] Mock reply to: hello there"
    )
    assert len(env.up.streams) == 1


def test_ollama_bare_base_gets_v1_appended(env: Env) -> None:
    info = httpx.get(f"{env.gw.url}/v1/model/info", headers=auth()).json()["data"]
    bases = {d["model_name"]: d["litellm_params"]["api_base"] for d in info}
    assert bases["ollama-group"] == env.up.base_url  # as configured
    raw = env.client.chat.completions.with_raw_response.create(
        model="ollama-group", messages=USER_MSG
    )
    assert raw.headers["x-litellm-model-api-base"] == env.up.base_url + "/v1"
    assert env.up.last_request.path == "/v1/chat/completions"
    text = httpx.get(f"{env.gw.url}/v1/model/info", headers=auth()).text
    assert all(case.key not in text for case in CASES)
