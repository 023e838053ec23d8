"""The mock upstream is wire-faithful: the official ``openai`` SDK talks to it unmodified."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from pydantic import BaseModel

if TYPE_CHECKING:
    from mocks.openai_upstream import (
        MockOpenAIUpstream,
        delay,
        drop_connection,
        reset_mid_stream,
        slow_first_byte,
        slow_stream,
        status,
    )
else:
    # Works whether pytest puts the repository root or tests/ on sys.path.
    try:
        from tests.mocks.openai_upstream import (
            MockOpenAIUpstream,
            delay,
            drop_connection,
            reset_mid_stream,
            slow_first_byte,
            slow_stream,
            status,
        )
    except ImportError:
        from mocks.openai_upstream import (
            MockOpenAIUpstream,
            delay,
            drop_connection,
            reset_mid_stream,
            slow_first_byte,
            slow_stream,
            status,
        )

KEY = "sk-mock-upstream-key"
USER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


@pytest.fixture
def up() -> Iterator[MockOpenAIUpstream]:
    with MockOpenAIUpstream(api_key=KEY, name="east") as mock:
        yield mock


@pytest.fixture
def client(up: MockOpenAIUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.openai_base, api_key=KEY, max_retries=0, timeout=10) as c:
        yield c


def raw_post(
    up: MockOpenAIUpstream, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=5)
    try:
        hdrs = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def assert_openai_error(body: bytes, param: str | None = None) -> dict[str, Any]:
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["message"]
    if param is not None:
        assert err["param"] == param
    return dict(err)


# -- chat completions ---------------------------------------------------------------------------


def test_chat_completion_shape(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    assert raw.headers["x-mock-name"] == "east"
    assert raw.headers["content-type"].startswith("application/json")
    data = json.loads(raw.content)
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-4o"
    assert data["system_fingerprint"].startswith("fp_")
    msg = data["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["refusal"] is None
    assert msg["content"] == "[east] Mock reply to: What is the weather in Paris?"
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert set(usage["completion_tokens_details"]) == {
        "reasoning_tokens",
        "audio_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
    }

    completion = raw.parse()
    assert completion.choices[0].message.content == msg["content"]
    assert completion.usage is not None and completion.usage.prompt_tokens == 6

    rec = up.last_request
    assert rec.method == "POST" and rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    assert rec.json["messages"] == USER and rec.model == "gpt-4o"
    assert up.count("/chat/completions", model="gpt-4o") == 1
    assert up.count(model="other") == 0


def test_fixed_reply_n_and_max_tokens() -> None:
    with MockOpenAIUpstream(reply="one two three four") as up:
        c = openai.OpenAI(base_url=up.openai_base, api_key="x", max_retries=0)
        r = c.chat.completions.create(model="m", messages=USER, n=2)
        assert [ch.index for ch in r.choices] == [0, 1]
        assert {ch.message.content for ch in r.choices} == {"one two three four"}
        assert r.usage is not None and r.usage.completion_tokens == 8
        r = c.chat.completions.create(model="m", messages=USER, max_completion_tokens=2)
        assert r.choices[0].message.content == "one two"
        assert r.choices[0].finish_reason == "length"
        c.close()


def test_multimodal_parts_and_json_modes(client: openai.OpenAI) -> None:
    parts: Any = [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    r = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": parts}]
    )
    assert r.choices[0].message.content == "[east] Mock reply to: Describe this"
    assert r.usage is not None and r.usage.prompt_tokens == 2 + 85

    r = client.chat.completions.create(
        model="gpt-4o", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(r.choices[0].message.content or "")["reply"].endswith("Paris?")

    class Weather(BaseModel):
        city: str
        temperature: float
        tags: list[str]

    parsed = client.chat.completions.parse(model="gpt-4o", messages=USER, response_format=Weather)
    assert isinstance(parsed.choices[0].message.parsed, Weather)


def test_chat_stream_with_usage(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[east] Mock reply to: What is the weather in Paris?"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == len(content_chunks)
    assert all(c.usage is None for c in chunks[:-1])
    assert up.wait_until(lambda: up.completed_streams == 1)
    assert up.streams[0].chunks_sent == len(chunks)


def test_stream_raw_wire_format(up: MockOpenAIUpstream) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    code, headers, raw = raw_post(up, "/v1/chat/completions", json.dumps(body).encode())
    assert code == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers.get("transfer-encoding") == "chunked"
    events = raw.decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: {")
        chunk = json.loads(event[len("data: ") :])
        assert "usage" not in chunk  # only present when include_usage is requested
        assert chunk["choices"][0]["logprobs"] is None


async def test_async_stream(up: MockOpenAIUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=up.openai_base, api_key=KEY, max_retries=0) as c:
        r = await c.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert r.model == "gpt-4o-mini"
        stream = await c.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream])
        assert text == r.choices[0].message.content


# -- tools ----------------------------------------------------------------------------------------


def test_tool_call(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].id.startswith("call_") and calls[0].type == "function"
    fn = calls[0].function
    assert fn.name == "get_weather"
    assert json.loads(fn.arguments) == {"city": "mock", "unit": "celsius", "days": 1}

    forced = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert forced.choices[0].message.tool_calls[0].function.name == "get_time"  # type: ignore[index,union-attr]

    none = client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.content

    after_tool: Any = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": calls[0].id,
                    "type": "function",
                    "function": {"name": fn.name, "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": "18C and sunny"},
    ]
    final = client.chat.completions.create(
        model="gpt-4o", messages=after_tool, tools=[WEATHER_TOOL]
    )
    assert final.choices[0].message.content == "Mock reply to tool result: 18C and sunny"


def test_tool_call_stream_fragments(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], stream=True
    )
    chunks = [c for c in stream if c.choices]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.tool_calls is not None
    head = first.tool_calls[0]
    assert head.index == 0 and (head.id or "").startswith("call_") and head.type == "function"
    assert head.function is not None and head.function.name == "get_weather"
    assert head.function.arguments == ""
    fragments: list[str] = []
    for c in chunks[1:-1]:
        (tc,) = c.choices[0].delta.tool_calls or []
        assert tc.id is None and tc.function is not None and tc.function.name is None
        fragments.append(tc.function.arguments or "")
    assert len(fragments) > 2
    assert json.loads("".join(fragments))["unit"] == "celsius"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_n2_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, n=2, stream=True)
    texts = ["", ""]
    finishes = {}
    for c in stream:
        for ch in c.choices:
            texts[ch.index] += ch.delta.content or ""
            if ch.finish_reason:
                finishes[ch.index] = ch.finish_reason
    assert texts[0] == texts[1] and texts[0].endswith("Paris?")
    assert finishes == {0: "stop", 1: "stop"}


# -- completions, embeddings, models ------------------------------------------------------------


def test_legacy_completions(client: openai.OpenAI) -> None:
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].text == " [east] Mock completion of: Say hi"
    assert r.usage is not None and r.usage.prompt_tokens == 2
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["a", "b"], n=2)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=[1, 2, 3], max_tokens=2)
    assert r.choices[0].finish_reason == "length" and r.usage is not None
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 2

    stream = client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == (
        " [east] Mock completion of: Say hi"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_embeddings(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    r = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert r.object == "list" and r.model == "text-embedding-3-small"
    assert [d.index for d in r.data] == [0, 1] and r.data[0].object == "embedding"
    vec = r.data[0].embedding
    assert len(vec) == 1536 and abs(sum(v * v for v in vec) - 1.0) < 1e-3
    assert r.usage.prompt_tokens == 2 == r.usage.total_tokens

    f = client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="float", dimensions=8
    )
    assert up.last_request.json["encoding_format"] == "float"
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="hello", encoding_format="base64", dimensions=8
    )
    b64 = json.loads(raw.content)["data"][0]["embedding"]
    assert isinstance(b64, str)
    decoded = struct.unpack("<8f", base64.b64decode(b64))
    assert decoded == pytest.approx(f.data[0].embedding, abs=1e-6)
    assert vec != r.data[1].embedding

    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]])
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 4


def test_models_and_routes_without_v1(up: MockOpenAIUpstream) -> None:
    c = openai.OpenAI(base_url=up.base_url, api_key=KEY, max_retries=0)
    assert "gpt-4o" in [m.id for m in c.models.list()]
    assert c.models.retrieve("gpt-4o").object == "model"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("nope")
    r = c.chat.completions.create(model="gpt-4o", messages=USER)
    assert r.choices[0].message.content
    assert up.last_request.path == "/chat/completions"
    with pytest.raises(openai.NotFoundError):
        c.post("/v1/unknown", cast_to=object, body={})
    c.close()


# -- azure ----------------------------------------------------------------------------------------


def test_azure(up: MockOpenAIUpstream) -> None:
    az = openai.AzureOpenAI(
        azure_endpoint=up.base_url, api_version="2024-10-21", api_key=KEY, max_retries=0
    )
    r = az.chat.completions.create(model="my-gpt4o-deployment", messages=USER)
    assert r.model == "my-gpt4o-deployment"
    rec = up.last_request
    assert rec.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert rec.query["api-version"] == "2024-10-21"
    assert rec.headers["api-key"] == KEY
    assert "prompt_filter_results" in json.loads(
        az.chat.completions.with_raw_response.create(model="dep", messages=USER).content
    )
    stream = az.chat.completions.create(model="dep", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == r.choices[0].message.content
    e = az.embeddings.create(model="emb-dep", input="hi", dimensions=4)
    assert e.model == "emb-dep" and len(e.data[0].embedding) == 4
    cmp = az.completions.create(model="instruct-dep", prompt="hi")
    assert cmp.model == "instruct-dep"
    az.close()

    bad = openai.AzureOpenAI(
        azure_endpoint=up.base_url, api_version="2024-10-21", api_key="wrong", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="dep", messages=USER)
    bad.close()

    body = json.dumps({"messages": USER}).encode()
    code, _, raw = raw_post(up, "/openai/deployments/dep/chat/completions", body, {"api-key": KEY})
    assert code == 400 and json.loads(raw)["error"]["param"] == "api-version"


# -- errors and faults ----------------------------------------------------------------------------


def test_auth_failure(up: MockOpenAIUpstream) -> None:
    c = openai.OpenAI(base_url=up.openai_base, api_key="sk-wrong-key-123", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong-key-123" not in info.value.message
    assert up.count() == 1  # rejected requests are still recorded
    c.close()


def test_bad_requests(up: MockOpenAIUpstream) -> None:
    code, _, raw = raw_post(up, "/v1/chat/completions", b"{not json")
    assert code == 400 and assert_openai_error(raw)
    code, _, raw = raw_post(up, "/v1/chat/completions", json.dumps({"messages": USER}).encode())
    assert code == 400 and assert_openai_error(raw, "model")
    code, _, raw = raw_post(up, "/v1/chat/completions", json.dumps({"model": "m"}).encode())
    assert code == 400 and assert_openai_error(raw, "messages")
    code, _, raw = raw_post(up, "/v1/embeddings", json.dumps({"model": "m"}).encode())
    assert code == 400 and assert_openai_error(raw, "input")
    assert up.last_request.body == b'{"model": "m"}'


def test_rate_limit_and_server_error(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    up.enqueue(status(429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.type == "rate_limit_error" and info.value.code == "rate_limit_exceeded"

    up.enqueue(status(500), times=2, model="gpt-4o")
    assert client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="gpt-4o", messages=USER)
        assert err.value.type == "server_error"
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert up.pending_faults == 0

    up.set_default(status(503))
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    up.set_default(None)
    assert client.embeddings.create(model="text-embedding-3-small", input="x").data


def test_delay_drop_and_slow_first_byte(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    up.enqueue(delay(2))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=USER, timeout=0.2)

    up.enqueue(drop_connection())
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=USER)

    up.enqueue(slow_first_byte(0.3))
    start = time.monotonic()
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    next(iter(stream))
    assert time.monotonic() - start >= 0.3
    stream.close()


def test_reset_mid_stream(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    up.enqueue(reset_mid_stream(after_chunks=3))
    received = 0
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            received += 1
    assert received <= 3
    assert up.reset_streams == 1 and up.streams[0].chunks_sent == 3

    up.enqueue(reset_mid_stream())  # non-streaming: truncated JSON body
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=USER)


def test_client_disconnect_is_tracked(up: MockOpenAIUpstream, client: openai.OpenAI) -> None:
    up.enqueue(slow_stream(interval_s=0.02, chunks=500))
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    it = iter(stream)
    for _ in range(4):
        next(it)
    assert up.active_streams == 1
    stream.close()
    assert up.wait_until(lambda: up.disconnected_streams == 1, timeout=3)
    record = up.streams[0]
    assert record.outcome == "disconnected" and 4 <= record.chunks_sent < 100
    assert up.completed_streams == 0


async def test_async_client_disconnect_is_tracked(up: MockOpenAIUpstream) -> None:
    up.set_default(slow_stream(interval_s=0.02, chunks=500))
    async with openai.AsyncOpenAI(base_url=up.openai_base, api_key=KEY, max_retries=0) as c:
        stream = await c.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 3:
                break
        await stream.close()
    assert await up.async_wait_until(lambda: up.disconnected_streams == 1, timeout=3)


def test_two_upstreams_and_clean_stop() -> None:
    with MockOpenAIUpstream(name="a") as a, MockOpenAIUpstream(name="b") as b:
        assert a.port != b.port
        for mock in (a, b):
            c = openai.OpenAI(base_url=mock.openai_base, api_key="x", max_retries=0)
            raw = c.chat.completions.with_raw_response.create(model="m", messages=USER)
            assert raw.headers["x-mock-name"] == mock.name
            c.close()
        # stop() with a stream still running returns promptly
        b.set_default(slow_stream(interval_s=0.05, chunks=1000))
        c = openai.OpenAI(base_url=b.openai_base, api_key="x", max_retries=0)
        stream = c.chat.completions.create(model="m", messages=USER, stream=True)
        next(iter(stream))
        start = time.monotonic()
        b.stop()
        assert time.monotonic() - start < 2
        assert b.streams[0].outcome == "shutdown"
        with pytest.raises(openai.APIConnectionError):
            list(stream)
        c.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _chat_id(up: MockOpenAIUpstream) -> str:
    with openai.OpenAI(base_url=up.openai_base, api_key="x", max_retries=0) as c:
        return c.chat.completions.create(model="gpt-4o", messages=USER).id


def test_restart_with_fixed_port_keeps_address_and_state() -> None:
    port = _free_port()
    up = MockOpenAIUpstream(port=port, name="fixed").start()
    try:
        url = up.base_url
        assert up.port == port
        _chat_id(up)
        # a stream in progress at stop is cancelled and recorded as shutdown
        up.set_default(slow_stream(interval_s=0.05, chunks=1000))
        c = openai.OpenAI(base_url=up.openai_base, api_key="x", max_retries=0)
        stream = c.chat.completions.create(model="m", messages=USER, stream=True)
        next(iter(stream))
        t0 = time.monotonic()
        up.stop()
        assert time.monotonic() - t0 < 2
        assert up.streams[-1].outcome == "shutdown"
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/v1/models", timeout=1)
        c.close()
        up.clear_faults()
        up.start()
        assert up.base_url == url and not up.stopping
        _chat_id(up)
        assert up.count("/chat/completions") == 3  # recordings survive a restart
        # a client disconnect after restart is "disconnected", not "shutdown"
        up.set_default(slow_stream(interval_s=0.02, chunks=500))
        with openai.OpenAI(base_url=up.openai_base, api_key="x", max_retries=0) as c2:
            s2 = c2.chat.completions.create(model="m", messages=USER, stream=True)
            next(iter(s2))
            s2.close()
        assert up.wait_until(lambda: up.disconnected_streams == 1, timeout=3)
        assert [t.name for t in threading.enumerate()].count("mock-openai-fixed") == 1
    finally:
        up.stop()
    assert "mock-openai-fixed" not in [t.name for t in threading.enumerate()]


def test_restart_on_free_port_and_double_start() -> None:
    up = MockOpenAIUpstream().start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            up.start()
        _chat_id(up)
        up.stop()
        up.stop()  # idempotent
        up.start()
        _chat_id(up)
    finally:
        up.stop()
