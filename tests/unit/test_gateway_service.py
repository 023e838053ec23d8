"""GatewayService with recording providers: per-request overrides reach the provider."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.app import build_runtime
from bastion.config.loader import load_config_mapping
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError
from bastion.dialects.openai_params import upstream_body
from bastion.providers.base import ProviderCall, ProviderResponse


class Recorder:
    name = "openai"
    dialects = frozenset({Dialect.OPENAI})

    def __init__(self) -> None:
        self.calls: list[tuple[str, ProviderCall]] = []

    def supports(self, operation: Operation) -> bool:
        return True

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        self.calls.append((deployment.model_name, call))
        return ProviderResponse(200, b"{}")


def runtime_with_recorder(config: dict[str, Any]) -> tuple[Any, Recorder]:
    runtime = build_runtime(load_config_mapping(config))
    recorder = Recorder()
    for deployment in runtime.deployments:
        deployment.provider = recorder  # type: ignore[assignment]
    return runtime, recorder


CONFIG = {
    "model_list": [
        {"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "k"}},
        {"model_name": "b", "litellm_params": {"model": "openai/b", "api_key": "k"}},
    ],
    "router_settings": {"fallbacks": [{"a": ["b"]}], "num_retries": 0},
}


async def test_request_timeout_drop_params_and_additional_drop_params_reach_the_call() -> None:
    runtime, recorder = runtime_with_recorder(CONFIG)
    body = {
        "model": "a",
        "messages": [{"role": "user", "content": "hi"}],
        "timeout": 1.5,
        "drop_params": True,
        "additional_drop_params": ["seed"],
        "seed": 1,
    }
    await runtime.gateway.call(Operation.CHAT, body, False)
    ((_, call),) = recorder.calls
    assert (call.timeout, call.drop_params, call.also_drop) == (1.5, True, frozenset({"seed"}))


@pytest.mark.parametrize(
    "field, value",
    [("timeout", -1), ("timeout", "soon"), ("drop_params", "yes"), ("additional_drop_params", 3)],
)
async def test_bad_request_overrides_are_400s(field: str, value: Any) -> None:
    runtime, _ = runtime_with_recorder(CONFIG)
    body = {"model": "a", "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(InvalidRequestError) as error:
        await runtime.gateway.call(Operation.CHAT, body, False)
    assert error.value.param == field


async def test_mock_testing_fallbacks_fails_the_requested_group_only() -> None:
    runtime, recorder = runtime_with_recorder(CONFIG)
    body = {
        "model": "a",
        "messages": [{"role": "user", "content": "hi"}],
        "mock_testing_fallbacks": True,
    }
    outcome = await runtime.gateway.call(Operation.CHAT, body, False)
    assert outcome.fallbacks == 1
    assert [name for name, _ in recorder.calls] == ["b"]


def test_additional_drop_params_drop_client_fields_and_defaults() -> None:
    out = upstream_body(
        {"model": "x", "messages": [], "seed": 1, "user": "u"},
        Operation.CHAT,
        "up",
        defaults={"temperature": 0.1, "top_k": 3},
        drop_params=False,
        unsupported=frozenset(),
        also_drop=frozenset({"seed", "top_k"}),
    )
    assert out == {"model": "up", "messages": [], "user": "u", "temperature": 0.1}


async def test_health_check_model_probes_that_model_for_a_wildcard_deployment() -> None:
    runtime, recorder = runtime_with_recorder(
        {
            "model_list": [
                {
                    "model_name": "openai/*",
                    "litellm_params": {"model": "openai/*", "api_key": "k"},
                    "model_info": {"health_check_model": "openai/gpt-4o-mini"},
                }
            ]
        }
    )
    sent: list[str] = []

    async def send(deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        sent.append(deployment.upstream_model)
        return ProviderResponse(200, b"{}")

    recorder.send = send  # type: ignore[method-assign]
    report = await runtime.health.check()
    assert sent == ["gpt-4o-mini"]
    assert len(report.healthy) == 1
