"""count_tokens: the offline estimate, and the service that asks a provider able to count."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.app import build_runtime
from bastion.config.loader import load_config_mapping
from bastion.core.deployment import Deployment
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError, NotFoundError
from bastion.dialects.anthropic_tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    TOOLS_OVERHEAD,
    estimate_input_tokens,
    validate_count_tokens_request,
)
from bastion.providers.base import ProviderCall
from bastion.services.token_count import TokenCountService


def test_estimate_counts_text_at_four_characters_a_token_plus_overheads() -> None:
    body = {
        "model": "m",
        "system": [{"type": "text", "text": "x" * 40}],  # 10
        "messages": [
            {"role": "user", "content": "y" * 9},  # 3
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "abcd", "input": {}}],
            },  # 1 + 1 ("{}")
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "z" * 8},  # 2
                    {"type": "image", "source": {"type": "url", "url": "u"}},
                ],
            },
        ],
    }
    assert estimate_input_tokens(body) == 10 + 3 + 2 + 2 + IMAGE_TOKENS + 3 * MESSAGE_OVERHEAD


def test_estimate_adds_tool_definitions() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    tool = {"name": "f", "description": "d" * 100, "input_schema": {"type": "object"}}
    with_tools = estimate_input_tokens({**base, "tools": [tool]})
    assert with_tools - estimate_input_tokens(base) > TOOLS_OVERHEAD + 25


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages.0"),
        ({"model": "m", "messages": [], "tools": {}}, "tools"),
    ],
)
def test_count_tokens_body_checks(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        validate_count_tokens_request(body)
    assert error.value.param == param


class CountingProvider:
    name = "anthropic"
    dialects = frozenset({Dialect.ANTHROPIC, Dialect.OPENAI})

    def __init__(self) -> None:
        self.calls: list[ProviderCall] = []

    async def count_tokens(self, deployment: Deployment, call: ProviderCall) -> int:
        self.calls.append(call)
        return 1234


def service_for(model_name: str = "claude") -> tuple[TokenCountService, Any]:
    config = {
        "model_list": [
            {"model_name": model_name, "litellm_params": {"model": "openai/x", "api_key": "k"}}
        ]
    }
    runtime = build_runtime(load_config_mapping(config))
    return TokenCountService(runtime.router), runtime


async def test_a_provider_that_counts_is_asked_with_the_raw_body_and_headers() -> None:
    service, runtime = service_for()
    provider = CountingProvider()
    runtime.deployments[0].provider = provider
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    tokens, deployment = await service.count(
        body, raw=b"{raw}", client_headers={"anthropic-beta": "b"}
    )
    assert (tokens, deployment) == (1234, runtime.deployments[0])
    (call,) = provider.calls
    assert call.dialect is Dialect.ANTHROPIC and call.raw == b"{raw}"
    assert call.client_headers == {"anthropic-beta": "b"}


async def test_other_providers_get_the_estimate_and_wildcards_resolve() -> None:
    service, _ = service_for("*")
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x" * 400}]}
    tokens, _ = await service.count(body)
    assert tokens == estimate_input_tokens(body) == 100 + MESSAGE_OVERHEAD


async def test_an_unknown_model_is_not_found() -> None:
    service, _ = service_for()
    with pytest.raises(NotFoundError):
        await service.count({"model": "nope", "messages": []})
