"""Shared scaffolding for the Bedrock end-to-end tests (Converse and InvokeModel)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import openai

from tests.mocks.bedrock_upstream import MockBedrockUpstream
from tests.support.gateway import GatewayProcess

REGION = "us-east-1"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SONNET_45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "us.amazon.nova-pro-v1:0"


@dataclass
class BedrockEnv:
    gw: GatewayProcess
    mock: MockBedrockUpstream
    client: openai.OpenAI


def deployment(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    """A ``bedrock/<model>`` deployment pointed at the mock in REGION."""
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"bedrock/{model}",
            "api_base": base,
            "aws_region_name": REGION,
            **params,
        },
    }


def reset_mock(mock: MockBedrockUpstream) -> None:
    """No recorded requests, no queued faults, no cache token counts."""
    mock.clear()
    mock.clear_faults()
    mock.cache_read_tokens = mock.cache_write_tokens = 0


def assert_streamed_weather_call(chunks: list[Any]) -> str:
    """The chunks carry one get_weather call in several argument fragments; its id."""
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function and calls[0].function.name == "get_weather"
    fragments = [tc.function.arguments for tc in calls[1:] if tc.function]
    assert len(fragments) > 1 and all(tc.index == 0 for tc in calls)
    assert json.loads("".join(f or "" for f in fragments)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    return str(calls[0].id)


def weather_tool_turn(call_id: str) -> list[Any]:
    """The assistant's get_weather call and the tool's answer, as OpenAI messages."""
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"},
    ]
