"""AWS Bedrock end to end: SDK → the real gateway → the Bedrock mock, which checks SigV4.

The openai SDK reaches Converse and ConverseStream (event-stream frames); the
anthropic SDK reaches InvokeModel and InvokeModelWithResponseStream for Claude
models. Credentials come from environment variables, a shared-credentials profile
file, explicit litellm_params, an STS AssumeRole and a web identity token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.bedrock_support import (
    NOVA,
    REGION,
    SONNET,
    SONNET_45,
    BedrockEnv,
    assert_streamed_weather_call,
    deployment,
    reset_mock,
    weather_tool_turn,
)
from tests.e2e.helpers import MASTER_KEY, USER_MSG, WEATHER_TOOL, auth, running, sync_client
from tests.mocks.bedrock_upstream import (
    MockBedrockUpstream,
    aws_error,
    exception_mid_stream,
    reset_mid_stream,
    throttling,
)

ENV_KEY, ENV_SECRET = "AKIDE2EENV0000000001", "e2e-env-secret/abcdefghijklmnopq"
EXPLICIT_KEY, EXPLICIT_SECRET = "AKIDE2EEXPLICIT00002", "e2e-explicit-secret/0123456789"
PROFILE_KEY, PROFILE_SECRET = "AKIDE2EPROFILE000003", "e2e-profile-secret/zyxwvutsrqp"
WRONG_SECRET = "e2e-wrong-secret/definitely-not-it"
ROLE_ARN = "arn:aws:iam::123456789012:role/bastion-bedrock"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.e2e-web-identity-token.sig"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SECRETS = (ENV_SECRET, EXPLICIT_SECRET, PROFILE_SECRET, WRONG_SECRET)


@dataclass
class Env(BedrockEnv):
    claude: anthropic.Anthropic


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    mock = MockBedrockUpstream(
        credentials={
            ENV_KEY: ENV_SECRET,
            EXPLICIT_KEY: EXPLICIT_SECRET,
            PROFILE_KEY: PROFILE_SECRET,
        },
        region=REGION,
    ).start()
    home = tmp_path_factory.mktemp("aws")
    (home / "credentials").write_text(
        f"[bastion-e2e]\naws_access_key_id = {PROFILE_KEY}\n"
        f"aws_secret_access_key = {PROFILE_SECRET}\n"
    )
    base = mock.base_url
    explicit = {"aws_access_key_id": EXPLICIT_KEY, "aws_secret_access_key": EXPLICIT_SECRET}
    config = {
        "model_list": [
            deployment("claude", SONNET, base),
            deployment("sonnet-45", SONNET_45, base),
            deployment("nova", NOVA, base),
            deployment("claude-explicit", SONNET, base, **explicit),
            deployment("claude-profile", SONNET, base, aws_profile_name="bastion-e2e"),
            deployment("claude-ghost", SONNET, base, aws_profile_name="no-such-profile"),
            deployment(
                "claude-wrong",
                SONNET,
                base,
                aws_access_key_id=EXPLICIT_KEY,
                aws_secret_access_key=WRONG_SECRET,
            ),
            deployment(
                "claude-role",
                SONNET,
                base,
                aws_role_name=ROLE_ARN,
                aws_session_name="e2e-session",
                aws_sts_endpoint=base,
                **explicit,
            ),
        ],
        "router_settings": {"disable_cooldowns": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    process_env = {
        "AWS_ACCESS_KEY_ID": ENV_KEY,
        "AWS_SECRET_ACCESS_KEY": ENV_SECRET,
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        with running(config, env=process_env) as gw:
            claude = anthropic.Anthropic(
                base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20
            )
            yield Env(gw, mock, sync_client(gw), claude)
    finally:
        mock.stop()


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> None:
    reset_mock(env.mock)


def test_chat_through_converse_signed_with_env_credentials(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *USER_MSG],
        max_tokens=50,
        temperature=0.3,
    )
    assert resp.choices[0].message.content == "[bedrock] Mock reply to: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    seen = env.mock.last_request
    assert seen.authenticated and seen.access_key == ENV_KEY and seen.region == REGION
    assert seen.raw_path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert seen.json == {
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.3},
    }
    assert MASTER_KEY.encode() not in seen.body and MASTER_KEY not in str(seen.headers)


def test_streaming_with_usage(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="claude", messages=USER_MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[bedrock] Mock reply to: hello there"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6  # the words of the reply
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 6
    seen = env.mock.last_request
    assert seen.operation == "converse-stream" and seen.authenticated
    assert seen.headers["accept"] == "application/vnd.amazon.eventstream"
    assert [s.outcome for s in env.mock.streams] == ["completed"]


def test_tool_call_streamed_in_argument_fragments_then_tool_result(env: Env) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    stream = env.client.chat.completions.create(
        model="claude", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    chunks = list(stream)
    call_id = assert_streamed_weather_call(chunks)
    spec = env.mock.last_request.json["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "get_weather"
    assert spec["inputSchema"]["json"] == WEATHER_TOOL["function"]["parameters"]

    messages += weather_tool_turn(call_id)
    resp = env.client.chat.completions.create(
        model="claude", messages=messages, tools=[WEATHER_TOOL]
    )
    assert resp.choices[0].message.content == "[bedrock] Tool said: 18C and sunny"
    sent = env.mock.last_request.json["messages"]
    assert sent[1]["content"][0]["toolUse"] == {
        "toolUseId": call_id,
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["content"][0]["toolResult"]["content"] == [{"text": "18C and sunny"}]


def test_non_streaming_tool_call(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="nova", messages=USER_MSG, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert env.mock.last_request.json["toolConfig"]["toolChoice"] == {"any": {}}


def test_image_bytes_reach_bedrock(env: Env) -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    resp = env.client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": content}]
    )
    size = len(base64.b64decode(PNG))
    assert resp.choices[0].message.content == (
        f"[bedrock] Mock reply to: what is this (images: png {size} bytes)"
    )
    block = env.mock.last_request.json["messages"][0]["content"][1]
    assert block == {"image": {"format": "png", "source": {"bytes": PNG}}}


def test_usage_counts_cache_reads_and_writes(env: Env) -> None:
    env.mock.cache_read_tokens, env.mock.cache_write_tokens = 1000, 200
    resp = env.client.chat.completions.create(model="claude", messages=USER_MSG)
    usage = resp.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens == 2 + 1000 + 200
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert (usage.model_extra or {})["cache_creation_input_tokens"] == 200
    stream = env.client.chat.completions.create(
        model="claude", messages=USER_MSG, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.usage is not None and last.usage.prompt_tokens == 1202


def test_explicit_and_profile_credentials(env: Env) -> None:
    env.client.chat.completions.create(model="claude-explicit", messages=USER_MSG)
    assert env.mock.last_request.access_key == EXPLICIT_KEY
    env.client.chat.completions.create(model="claude-profile", messages=USER_MSG)
    assert env.mock.last_request.access_key == PROFILE_KEY
    assert env.mock.last_request.authenticated


def test_assume_role_through_sts(env: Env) -> None:
    resp = env.client.chat.completions.create(model="claude-role", messages=USER_MSG)
    assert resp.choices[0].message.content == "[bedrock] Mock reply to: hello there"
    assert env.mock.assumed == [
        {"action": "AssumeRole", "role": ROLE_ARN, "session": "e2e-session"}
    ]
    seen = env.mock.last_request
    assert seen.access_key and seen.access_key.startswith("ASIA") and seen.authenticated
    assert "x-amz-security-token" in seen.headers
    env.client.chat.completions.create(model="claude-role", messages=USER_MSG)
    assert len(env.mock.assumed) == 1  # the role's credentials are reused until near expiry


def test_cross_region_inference_profile_reaches_its_url(env: Env) -> None:
    env.client.chat.completions.create(model="sonnet-45", messages=USER_MSG)
    seen = env.mock.last_request
    assert seen.raw_path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    assert seen.model_id == SONNET_45 and seen.authenticated


def test_anthropic_sdk_messages_through_invoke_model(env: Env) -> None:
    message = env.claude.messages.create(
        model="claude",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
        # Claude Code's own flag is one Bedrock would refuse: it is left out.
        extra_headers={"anthropic-beta": "claude-code-20250219,output-128k-2025-02-19"},
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "[bedrock] Mock reply to: hello there"
    assert message.id.startswith("msg_bdrk_") and message.stop_reason == "end_turn"
    seen = env.mock.last_request
    assert seen.raw_path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"
    assert seen.json == {
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello there"}],
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["output-128k-2025-02-19"],
    }
    assert seen.authenticated and seen.access_key == ENV_KEY


def test_anthropic_sdk_streaming_through_invoke_with_response_stream(env: Env) -> None:
    with env.claude.messages.stream(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "[bedrock] Mock reply to: stream it"
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.usage.output_tokens > 0
    assert env.mock.last_request.operation == "invoke-with-response-stream"
    assert "stream" not in env.mock.last_request.json


def test_anthropic_sdk_streamed_tool_use(env: Env) -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],
    }
    with env.claude.messages.stream(
        model="claude",
        max_tokens=100,
        tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather"
    assert uses[0].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert env.mock.last_request.json["tools"] == [tool]


def test_count_tokens_through_bedrock_count_tokens(env: Env) -> None:
    counted = env.claude.messages.count_tokens(
        model="claude", messages=[{"role": "user", "content": "count these four words"}]
    )
    assert counted.input_tokens == 4  # the mock counts words
    seen = env.mock.last_request
    assert seen.raw_path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/count-tokens"
    inner = json.loads(base64.b64decode(seen.json["input"]["invokeModel"]["body"]))
    assert inner == {
        "messages": [{"role": "user", "content": "count these four words"}],
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1,
    }
    assert seen.authenticated
    estimated = env.claude.messages.count_tokens(
        model="nova", messages=[{"role": "user", "content": "count these four words"}]
    )
    assert estimated.input_tokens > 0  # no Bedrock call: the gateway's estimate
    assert env.mock.count() == 1
    env.mock.enqueue(aws_error(400, "ValidationException", "This model cannot count tokens."))
    fallback = env.claude.messages.count_tokens(
        model="claude", messages=[{"role": "user", "content": "count these four words"}]
    )
    assert fallback.input_tokens == estimated.input_tokens and env.mock.count() == 2


def test_anthropic_client_of_a_non_claude_model_goes_through_converse(env: Env) -> None:
    message = env.claude.messages.create(
        model="nova", max_tokens=20, messages=[{"role": "user", "content": "hello there"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "[bedrock] Mock reply to: hello there"
    assert env.mock.last_request.operation == "converse"


def test_throttling_is_retried_then_surfaced_as_429(env: Env) -> None:
    env.mock.enqueue(throttling())
    resp = env.client.chat.completions.create(model="claude", messages=USER_MSG)
    assert resp.choices[0].message.content == "[bedrock] Mock reply to: hello there"
    assert env.mock.count("converse") == 2
    env.mock.enqueue(throttling(retry_after=0), times=5)
    r = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "claude", "messages": USER_MSG, "num_retries": 0},
    )
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "ThrottlingException"
    assert "Too many requests" in error["message"]


def stream_text(env: Env, model: str = "claude") -> str:
    with httpx.stream(
        "POST",
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": model, "messages": USER_MSG, "stream": True},
        timeout=20,
    ) as r:
        assert r.status_code == 200
        return r.read().decode()


def test_exception_mid_stream_becomes_an_error_event(env: Env) -> None:
    env.mock.enqueue(exception_mid_stream(3, "throttlingException", "Too many tokens"))
    text = stream_text(env)
    assert '"content":"[bedrock]"' in text and "[DONE]" not in text
    error = json.loads(text.rstrip().rsplit("data: ", 1)[1])["error"]
    assert error["code"] == "ThrottlingException" and "Too many tokens" in error["message"]
    assert env.mock.streams[0].outcome == "exception"


def test_connection_reset_mid_stream(env: Env) -> None:
    env.mock.enqueue(reset_mid_stream(2))
    text = stream_text(env)
    assert "[DONE]" not in text
    error = json.loads(text.rstrip().rsplit("data: ", 1)[1])["error"]
    assert error["type"] == "api_connection_error"


def test_wrong_secret_is_a_clean_error_without_secrets(env: Env) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        env.client.chat.completions.create(model="claude-wrong", messages=USER_MSG)
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in body["message"]
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        env.claude.messages.create(
            model="claude-wrong", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    anthropic_body = denied.value.body
    assert isinstance(anthropic_body, dict) and anthropic_body["type"] == "error"
    assert anthropic_body["error"]["type"] == "permission_error"
    assert "InvalidSignatureException" in anthropic_body["error"]["message"]
    raw = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "claude-wrong", "messages": USER_MSG},
    ).text
    log = env.gw.log()
    for secret in SECRETS:
        assert secret not in raw and secret not in log
    assert not env.mock.last_request.authenticated


def test_missing_credentials_are_a_401_not_a_crash(env: Env) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        env.client.chat.completions.create(model="claude-ghost", messages=USER_MSG)
    assert "no-such-profile" in str(caught.value)
    assert env.mock.count() == 0


def test_web_identity_credentials_from_the_environment(tmp_path: Path) -> None:
    with MockBedrockUpstream(region="eu-west-1", web_identity_tokens=(WEB_TOKEN,)) as mock:
        token_file = tmp_path / "token"
        token_file.write_text(WEB_TOKEN)
        config = {
            "model_list": [
                {
                    "model_name": "claude",
                    "litellm_params": {"model": f"bedrock/{SONNET}", "api_base": mock.base_url},
                }
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
        process_env = {
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_REGION": "eu-west-1",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": ROLE_ARN,
            "AWS_ROLE_SESSION_NAME": "irsa-e2e",
            "AWS_ENDPOINT_URL_STS": mock.base_url,
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        with running(config, env=process_env) as gw:
            resp = sync_client(gw).chat.completions.create(model="claude", messages=USER_MSG)
        assert resp.choices[0].message.content == "[bedrock] Mock reply to: hello there"
        assert mock.assumed == [
            {"action": "AssumeRoleWithWebIdentity", "role": ROLE_ARN, "session": "irsa-e2e"}
        ]
        seen = mock.last_request
        assert seen.authenticated and seen.region == "eu-west-1"
        assert seen.access_key and seen.access_key.startswith("ASIA")
