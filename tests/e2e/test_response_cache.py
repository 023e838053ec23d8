"""The response cache through a running gateway, with the openai SDK against a mock
upstream that counts its calls: in-process and Redis stores, streams replayed as
streams, per-request controls, default_off, the entry read in the rate limiter's
admission round trip, and Redis away (still served)."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.helpers import MockPool
from tests.mocks.openai_upstream import MockOpenAIUpstream, delay
from tests.support.gateway import GatewayProcess, free_port
from tests.support.redis_service import PrivateRedis

MASTER = "sk-master-cache-e2e"


@pytest.fixture(scope="module")
def upstream(mocks: MockPool) -> MockOpenAIUpstream:
    return mocks.new(api_key="sk-upstream")


def config(
    upstream: MockOpenAIUpstream, cache_params: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    params = {"api_base": upstream.openai_base, "api_key": "sk-upstream"}
    return {
        "model_list": [
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", **params}},
            {
                "model_name": "embed",
                "litellm_params": {"model": "openai/text-embedding-3-small", **params},
            },
        ],
        "router_settings": {"model_group_alias": {"gpt-alias": "gpt"}},
        "litellm_settings": {"cache": True, "cache_params": cache_params or {}, **extra},
        "general_settings": {"master_key": MASTER},
    }


@pytest.fixture(scope="module")
def local_gw(upstream: MockOpenAIUpstream) -> Iterator[GatewayProcess]:
    with GatewayProcess(config(upstream, {"type": "local"})) as gw:
        yield gw


def client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER, max_retries=0, timeout=20)


def ask(gw: GatewayProcess, text: str, **kw: Any) -> Any:
    return client(gw).chat.completions.with_raw_response.create(
        model=kw.pop("model", "gpt"), messages=[{"role": "user", "content": text}], **kw
    )


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex}"


def chat_calls(upstream: MockOpenAIUpstream) -> int:
    return upstream.count("/chat/completions")


def test_miss_then_hit_calls_the_upstream_once(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    prompt = unique("miss-then-hit")
    first = ask(local_gw, prompt, temperature=0)
    assert "x-litellm-cache-key" not in first.headers
    assert chat_calls(upstream) == 1
    # Another caller identity, another key order, the router alias: the same request.
    second = ask(local_gw, prompt, temperature=0, user="someone-else", model="gpt-alias")
    assert chat_calls(upstream) == 1
    assert second.headers["x-litellm-cache-key"].startswith("bastion:cache:")
    assert second.headers["x-litellm-response-cost"] == "0.000000"
    assert second.parse().model_dump() == first.parse().model_dump()
    # A parameter that changes the answer is another request.
    ask(local_gw, prompt, temperature=1)
    assert chat_calls(upstream) == 2


def test_a_streamed_answer_is_replayed_as_the_same_stream(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    prompt = unique("stream")

    def streamed() -> tuple[list[dict[str, Any]], httpx.Headers]:
        with client(local_gw).chat.completions.with_streaming_response.create(
            model="gpt", messages=[{"role": "user", "content": prompt}], stream=True
        ) as response:
            chunks = [chunk.model_dump() for chunk in response.parse()]
            return chunks, response.headers

    first, first_headers = streamed()
    assert chat_calls(upstream) == 1 and "x-litellm-cache-key" not in first_headers
    second, headers = streamed()
    assert chat_calls(upstream) == 1
    assert headers["content-type"].startswith("text/event-stream")
    assert "x-litellm-cache-key" in headers
    assert second == first and len(second) > 1
    # An unstreamed request is keyed apart from the stream.
    ask(local_gw, prompt)
    assert chat_calls(upstream) == 2
    # The gateway asked for usage on the first stream and removed it; a client that
    # asks for the usage chunk itself gets a stream of its own, with that chunk.
    assert all(chunk["usage"] is None for chunk in first)
    for _ in range(2):
        with client(local_gw).chat.completions.with_streaming_response.create(
            model="gpt",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            with_usage = [chunk.model_dump() for chunk in response.parse()]
        assert with_usage[-1]["usage"] is not None
    assert chat_calls(upstream) == 3


def test_anthropic_messages_are_cached_in_their_dialect(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    claude = anthropic.Anthropic(base_url=local_gw.url, api_key=MASTER, max_retries=0)
    prompt = unique("messages")
    kwargs: dict[str, Any] = {
        "model": "gpt",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt}],
    }
    first = claude.messages.create(**kwargs)
    second = claude.messages.with_raw_response.create(**kwargs)
    assert chat_calls(upstream) == 1 and "x-litellm-cache-key" in second.headers
    assert second.parse().model_dump() == first.model_dump()
    with claude.messages.stream(**kwargs) as stream:
        events = [event.type for event in stream]
    with claude.messages.stream(**kwargs) as stream:
        assert [event.type for event in stream] == events
    assert chat_calls(upstream) == 2 and events[-1] == "message_stop"


def test_embeddings_are_cached(local_gw: GatewayProcess, upstream: MockOpenAIUpstream) -> None:
    text = unique("embed")
    first = client(local_gw).embeddings.create(model="embed", input=[text])
    second = client(local_gw).embeddings.create(model="embed", input=[text])
    assert upstream.count("/embeddings") == 1
    assert second.data[0].embedding == first.data[0].embedding


def test_no_cache_no_store_ttl_and_namespace_controls(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    prompt = unique("controls")
    ask(local_gw, prompt, extra_body={"cache": {"no-store": True}})
    ask(local_gw, prompt)  # not stored above: a miss, stored now
    assert chat_calls(upstream) == 2
    hit = ask(local_gw, prompt)
    assert chat_calls(upstream) == 2 and "x-litellm-cache-key" in hit.headers
    fresh = ask(local_gw, prompt, extra_body={"cache": {"no-cache": True}})
    assert chat_calls(upstream) == 3 and "x-litellm-cache-key" not in fresh.headers
    # s-maxage: an answer older than that is not taken.
    time.sleep(1.2)
    ask(local_gw, prompt, extra_body={"cache": {"s-maxage": 1}})
    assert chat_calls(upstream) == 4
    # namespace: another namespace is another cache.
    other = ask(local_gw, prompt, extra_body={"cache": {"namespace": "team-x"}})
    assert chat_calls(upstream) == 5
    assert "x-litellm-cache-key" not in other.headers
    again = ask(local_gw, prompt, extra_body={"cache": {"namespace": "team-x"}})
    assert again.headers["x-litellm-cache-key"].startswith("team-x:")
    # ttl: a short-lived answer is gone after its ttl.
    short = unique("ttl")
    ask(local_gw, short, extra_body={"cache": {"ttl": 1}})
    ask(local_gw, short)
    assert chat_calls(upstream) == 6
    time.sleep(1.2)
    ask(local_gw, short)
    assert chat_calls(upstream) == 7


def test_bad_controls_are_a_400(local_gw: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(local_gw, "x", extra_body={"cache": {"ttl": "soon"}})
    assert "cache.ttl" in str(caught.value)


def test_a_hit_is_logged_with_no_spend_and_readiness_shows_the_cache(
    local_gw: GatewayProcess,
) -> None:
    prompt = unique("logged")
    ask(local_gw, prompt)
    hit = ask(local_gw, prompt)
    call_id = hit.headers["x-litellm-call-id"]
    row: dict[str, Any] | None = None
    deadline = time.monotonic() + 15
    while row is None and time.monotonic() < deadline:
        response = httpx.get(
            f"{local_gw.url}/spend/logs",
            params={"request_id": call_id},
            headers={"Authorization": f"Bearer {MASTER}"},
        )
        rows = response.json() if response.status_code == 200 else []
        row = rows[0] if rows else None
        time.sleep(0.3)
    assert row is not None, "the hit never reached the spend log"
    assert row["cache_hit"] == "True" and float(row["spend"]) == 0
    assert row["metadata"]["cache_key"] == hit.headers["x-litellm-cache-key"]
    ready = httpx.get(f"{local_gw.url}/health/readiness").json()
    assert ready["cache"] == "local"
    assert ready["cache_details"]["hits"] >= 1 and ready["cache_details"]["stores"] >= 1


def test_default_off_caches_only_requests_that_ask(upstream: MockOpenAIUpstream) -> None:
    with GatewayProcess(config(upstream, {"mode": "default_off"})) as gw:
        prompt = unique("default-off")
        ask(gw, prompt)
        ask(gw, prompt)
        assert chat_calls(upstream) == 2
        ask(gw, prompt, extra_body={"cache": {"use-cache": True}})
        hit = ask(gw, prompt, extra_body={"cache": {"use-cache": True}})
        assert chat_calls(upstream) == 3 and "x-litellm-cache-key" in hit.headers


def test_redis_backend_shares_answers_between_gateways(
    upstream: MockOpenAIUpstream, redis_url: str, redis_prefix: str
) -> None:
    params = {"type": "redis", "host": "127.0.0.1", "port": 6379, "namespace": redis_prefix[:-1]}
    with (
        GatewayProcess(config(upstream, params)) as one,
        GatewayProcess(config(upstream, params)) as two,
    ):
        prompt = unique("redis")
        first = ask(one, prompt)
        # The write is off the latency path: wait until it has landed.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            hit = ask(two, prompt)
            if "x-litellm-cache-key" in hit.headers:
                break
            time.sleep(0.1)
        assert hit.headers["x-litellm-cache-key"].startswith(redis_prefix)
        assert hit.parse().model_dump() == first.parse().model_dump()
        assert (
            httpx.get(f"{two.url}/health/readiness").json()["cache_details"]["redis"]["status"]
            == "connected"
        )


def test_redis_away_still_serves_and_says_so(upstream: MockOpenAIUpstream) -> None:
    closed = free_port()
    params = {"type": "redis", "host": "127.0.0.1", "port": closed}
    with GatewayProcess(config(upstream, params)) as gw:
        prompt = unique("redis-away")
        for _ in range(3):
            answer = ask(gw, prompt)
            assert answer.http_response.status_code == 200
        assert chat_calls(upstream) == 3
        details = httpx.get(f"{gw.url}/health/readiness").json()["cache_details"]
        assert details["redis"]["status"] == "unreachable" and details["usable"] is False
        assert details["bypassed"] >= 1
        assert gw.log().count("response cache bypassed") == 1


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_on_the_rate_limiters_redis_the_entry_is_read_in_the_admission(
    upstream: MockOpenAIUpstream, tmp_path: Path
) -> None:
    """Limits and cache on one Redis: a request makes one call before its answer (the
    admission script reads the entry; no GET), and a hit counts against the limits, as
    in LiteLLM. With Redis gone, requests are still served."""
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        settings = config(upstream, {"type": "redis", "host": "127.0.0.1", "port": server.port})
        settings["model_list"][0]["litellm_params"]["rpm"] = 4  # the deployment's limit
        settings["router_settings"]["redis_url"] = f"redis://127.0.0.1:{server.port}/0"
        with GatewayProcess(settings) as gw, server.monitor() as sent:
            if time.time() % 60 > 45:  # the five calls below must fall in one rpm minute
                time.sleep(60.5 - time.time() % 60)
            prompt = unique("admission")
            first = ask(gw, prompt)
            assert "x-litellm-cache-key" not in first.headers
            deadline = time.monotonic() + 10
            while "SET" not in sent:  # stored after the answer left
                assert time.monotonic() < deadline, sent
                time.sleep(0.05)
            hits = [ask(gw, prompt) for _ in range(2)]
            assert all("x-litellm-cache-key" in hit.headers for hit in hits)
            assert [h.parse().model_dump() for h in hits] == [first.parse().model_dump()] * 2
            assert chat_calls(upstream) == 1

            with client(gw).chat.completions.with_streaming_response.create(
                model="gpt", messages=[{"role": "user", "content": prompt}], stream=True
            ) as response:  # a miss (a stream is keyed apart): the fourth call this minute
                streamed = [chunk.model_dump() for chunk in response.parse()]
            assert len(streamed) > 1 and chat_calls(upstream) == 2
            time.sleep(0.3)
            assert "GET" not in sent, sent  # the entries were read by the admission script
            assert sent.count("EVALSHA") + sent.count("EVAL") >= 4

            with pytest.raises(openai.RateLimitError):  # hits counted: rpm 4 is used up
                client(gw).chat.completions.create(
                    model="gpt", messages=[{"role": "user", "content": prompt}]
                )
            assert chat_calls(upstream) == 2

            server.stop()  # Redis away: served (local counters, cache bypassed)
            away = ask(gw, unique("redis-away-admission"))
            assert away.http_response.status_code == 200
            details = httpx.get(f"{gw.url}/health/readiness", timeout=5).json()
            assert details["cache_details"]["usable"] is False
            assert details["cache_details"]["bypassed"] >= 1
    finally:
        server.stop()


def _ask_async(gw: GatewayProcess, prompt: str, **kw: Any) -> Any:
    client = openai.AsyncOpenAI(
        base_url=f"{gw.url}/v1", api_key=MASTER, max_retries=0, timeout=kw.pop("timeout", 20)
    )
    return client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": prompt}], **kw
    )


def test_identical_misses_in_flight_make_one_upstream_call(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    prompt = unique("coalesced")
    before = chat_calls(upstream)
    upstream.set_default(delay(0.5))
    try:

        async def burst() -> list[Any]:
            return list(await asyncio.gather(*(_ask_async(local_gw, prompt) for _ in range(5))))

        answers = asyncio.run(burst())
    finally:
        upstream.set_default(None)
    assert chat_calls(upstream) == before + 1
    bodies = {a.http_response.text for a in answers}
    assert len(bodies) == 1  # the same answer for all five
    assert sum("x-litellm-cache-key" in a.headers for a in answers) == 4  # the followers
    details = httpx.get(f"{local_gw.url}/health/readiness").json()["cache_details"]
    assert details["coalesced"] >= 4


def test_streams_are_not_coalesced_and_a_leader_whose_client_left_still_answers_followers(
    local_gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    prompt = unique("streams-in-flight")
    before = chat_calls(upstream)
    upstream.set_default(delay(0.5))
    try:

        async def streams() -> None:
            async def one() -> None:
                client = openai.AsyncOpenAI(
                    base_url=f"{local_gw.url}/v1", api_key=MASTER, max_retries=0, timeout=20
                )
                stream = await client.chat.completions.create(
                    model="gpt", messages=[{"role": "user", "content": prompt}], stream=True
                )
                async for _ in stream:
                    pass

            await asyncio.gather(one(), one(), one())

        asyncio.run(streams())
        assert chat_calls(upstream) == before + 3  # each stream went upstream

        left = unique("leader-leaves")

        async def leader_leaves() -> list[Any]:
            leader = asyncio.ensure_future(_ask_async(local_gw, left, timeout=0.25))
            await asyncio.sleep(0.1)
            followers = [_ask_async(local_gw, left) for _ in range(2)]
            return list(await asyncio.gather(leader, *followers, return_exceptions=True))

        mark = chat_calls(upstream)
        leader, *followers = asyncio.run(leader_leaves())
    finally:
        upstream.set_default(None)
    assert isinstance(leader, openai.APITimeoutError)
    # The leader's call went on without its client; its answer served the followers.
    assert all(f.http_response.status_code == 200 for f in followers)
    assert all("x-litellm-cache-key" in f.headers for f in followers)
    assert chat_calls(upstream) == mark + 1
