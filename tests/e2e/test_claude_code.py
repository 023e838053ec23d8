"""Claude Code end to end (issue 3, item 2): ``claude -p`` -> bastion serve -> an OpenAI upstream.

Claude Code talks Anthropic's Messages API (streaming, tools, system blocks, ``role:
system`` messages, ``?beta=true``); the only model group is an OpenAI deployment on the
mock upstream, so every request crosses the Anthropic -> OpenAI bridge and back. The
``*`` group catches whatever model names Claude Code asks for (main and small/fast).

With tools in the request the mock answers with a call of the first tool, so Claude Code
is limited to its read-only ``Read`` tool: it runs the call (the mock's made-up arguments
fail, harmlessly), sends the tool result back, and the mock then answers with its fixed
reply, which Claude Code prints.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.helpers import MASTER_KEY, MockPool, running
from tests.support.claude_code import ClaudeCode

PROVIDER_KEY = "sk-e2e-provider-claude-code-51f0"
REPLY = "BASTION-CLAUDE-CODE-OK-4711"


def test_claude_code_runs_a_tool_loop_through_an_openai_deployment(
    claude_code: ClaudeCode, mocks: MockPool
) -> None:
    up = mocks.new(api_key=PROVIDER_KEY, reply=REPLY, name="cc")
    params = {"model": "openai/gpt-4o", "api_base": up.openai_base, "api_key": PROVIDER_KEY}
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

    chats: list[dict[str, Any]] = [
        r.json for r in up.requests if r.path == "/v1/chat/completions" and r.json
    ]
    assert len(chats) >= 2, [r.path for r in up.requests]
    assert {c["model"] for c in chats} == {"gpt-4o"}
    first, last = chats[0], chats[-1]
    # The translated request carries Claude Code's tools, system prompt and prompt.
    tools = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert "Read" in tools
    assert tools["Read"]["parameters"]["type"] == "object"
    assert "file_path" in tools["Read"]["parameters"]["properties"]
    assert first["messages"][0]["role"] == "system"
    assert any(m["role"] == "user" and "notes.txt" in str(m["content"]) for m in first["messages"])
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    # The tool loop crossed the bridge both ways: tool_use out, tool_result back.
    calls = [m for m in last["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    results = [m for m in last["messages"] if m["role"] == "tool"]
    assert calls and results
    assert results[-1]["tool_call_id"] == calls[-1]["tool_calls"][0]["id"]
    assert calls[-1]["tool_calls"][0]["function"]["name"] == "Read"
