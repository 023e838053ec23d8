"""Claude Code end to end against an Anthropic deployment: ``claude -p`` → bastion → Anthropic mock.

Claude Code speaks Anthropic's Messages API (streaming, tools, cache_control, betas,
``?beta=true``); the only model group is a native Anthropic deployment, so every request
goes through untouched but for the model. With tools in the request the mock answers
with a call of the first tool, so Claude Code is limited to its read-only ``Read`` tool:
it runs the call, sends the tool result back, and the mock then answers with its fixed
reply, which Claude Code prints.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.helpers import MASTER_KEY, running
from tests.mocks.anthropic_upstream import MockAnthropicUpstream
from tests.support.claude_code import ClaudeCode

PROVIDER_KEY = "sk-ant-e2e-claude-code-7c21"
REPLY = "BASTION-CLAUDE-CODE-ANTHROPIC-OK-2718"


@pytest.fixture
def upstream() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream(api_key=PROVIDER_KEY, reply=REPLY) as up:
        yield up


def test_claude_code_runs_a_tool_loop_through_an_anthropic_deployment(
    claude_code: ClaudeCode, upstream: MockAnthropicUpstream
) -> None:
    params = {
        "model": "anthropic/claude-sonnet-4-5-20250929",
        "api_base": upstream.base_url,
        "api_key": PROVIDER_KEY,
    }
    config = {
        "model_list": [{"model_name": "*", "litellm_params": params}],
        "general_settings": {"master_key": MASTER_KEY},
    }
    with running(config) as gw:
        result = claude_code.run(
            "Read the file notes.txt and tell me what it says.",
            gateway_url=gw.url,
            api_key=MASTER_KEY,
            args=["--tools", "Read"],
        )
        log = gw.log()
    assert result.returncode == 0, result.describe() + "\n--- gateway log ---\n" + log[-3000:]
    assert REPLY in result.stdout, result.describe()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]

    calls = [r for r in upstream.requests if r.path == "/v1/messages" and r.json]
    assert len(calls) >= 2, [r.path for r in upstream.requests]
    assert {c.json["model"] for c in calls} == {"claude-sonnet-4-5-20250929"}
    for call in calls:
        # Claude Code's own headers reach Anthropic; the gateway key does not.
        assert call.headers["x-api-key"] == PROVIDER_KEY
        assert call.headers.get("anthropic-version")
        assert "claude-code-20250219" in call.headers["anthropic-beta"]
        assert MASTER_KEY not in str(call.headers)
        assert call.query == {}, "the gateway calls /v1/messages without ?beta=true"
    first, last = calls[0].json, calls[-1].json
    assert first["stream"] is True
    assert "Read" in {t["name"] for t in first["tools"]}
    assert any(m["role"] == "user" and "notes.txt" in str(m["content"]) for m in first["messages"])
    # The tool loop went through untouched: tool_use out, tool_result back.
    results = [
        block
        for message in last["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    uses = [r["content"] for r in upstream.replies if r["stop_reason"] == "tool_use"]
    assert results and uses
    assert results[-1]["tool_use_id"] == uses[-1][-1]["id"]
