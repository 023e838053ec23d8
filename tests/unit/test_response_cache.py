"""The response cache's pure parts and in-process store: keys, controls, TTL with a
fake clock, the byte-bounded LRU, settings, and stream recording."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.cache.controls import CacheControls, parse_controls
from bastion.cache.entry import CachedAnswer, stream_answer
from bastion.cache.in_flight import Lead
from bastion.cache.keys import DEFAULT_NAMESPACE, cache_key
from bastion.cache.memory import ENTRY_OVERHEAD, MemoryStore
from bastion.cache.recording import RecordingStream
from bastion.cache.service import ResponseCache
from bastion.cache.settings import ALL_CALLS, CHAT, EMBEDDING, cache_settings
from bastion.config.loader import load_config_text
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError
from bastion.providers.base import ProviderResponse
from bastion.providers.fake import FakeProvider
from bastion.routing.model_table import ModelTable

CHAT_BODY: dict[str, Any] = {
    "model": "gpt",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0.2,
}


def key(body: dict[str, Any], *, stream: bool = False, model: str = "gpt", **kw: Any) -> str:
    return cache_key(Operation.CHAT, Dialect.OPENAI, model, body, stream, **kw)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- keys -------------------------------------------------------------------------------


def test_key_ignores_caller_identity_and_gateway_fields() -> None:
    base = key(CHAT_BODY)
    same = {
        **CHAT_BODY,
        "user": "alice",
        "metadata": {"run": 7},
        "cache": {"ttl": 5},
        "tags": ["a"],
        "timeout": 30,
        "num_retries": 1,
        "fallbacks": ["other"],
    }
    assert key(same) == base


def test_key_changes_with_every_answer_changing_parameter() -> None:
    base = key(CHAT_BODY)
    for change in (
        {"temperature": 0.3},
        {"messages": [{"role": "user", "content": "hi!"}]},
        {"max_tokens": 10},
        {"top_p": 0.5},
        {"seed": 1},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"response_format": {"type": "json_object"}},
        {"n": 2},
        {"stop": ["x"]},
        {"mock_response": "canned"},
    ):
        assert key({**CHAT_BODY, **change}) != base, change
    assert key(CHAT_BODY, model="other") != base
    assert cache_key(Operation.COMPLETION, Dialect.OPENAI, "gpt", CHAT_BODY, False) != base
    assert cache_key(Operation.CHAT, Dialect.ANTHROPIC, "gpt", CHAT_BODY, False) != base


def test_key_separates_streams_and_their_options_but_not_object_order() -> None:
    assert key(CHAT_BODY, stream=True) != key(CHAT_BODY)
    with_usage = {**CHAT_BODY, "stream_options": {"include_usage": True}}
    assert key(with_usage, stream=True) != key(CHAT_BODY, stream=True)
    assert key(with_usage) == key(CHAT_BODY)  # stream_options means nothing unstreamed
    # The gateway added include_usage (and strips that chunk): not the client's own ask.
    assert key(with_usage, stream=True, usage_added=True) != key(with_usage, stream=True)
    reordered = dict(reversed(list(CHAT_BODY.items())))
    assert key(reordered) == key(CHAT_BODY)
    nested_a = {**CHAT_BODY, "response_format": {"type": "json_schema", "strict": True}}
    nested_b = {**CHAT_BODY, "response_format": {"strict": True, "type": "json_schema"}}
    assert key(nested_a) == key(nested_b)


def test_key_is_scoped_by_namespace() -> None:
    assert key(CHAT_BODY).startswith(DEFAULT_NAMESPACE + ":")
    assert key(CHAT_BODY, namespace="team-a").startswith("team-a:")
    assert key(CHAT_BODY, namespace="team-a") != key(CHAT_BODY, namespace="team-b")


# --- controls ---------------------------------------------------------------------------


def test_controls_default_on_and_default_off() -> None:
    assert parse_controls({}, default_off=False) == CacheControls()
    assert parse_controls({}, default_off=True) is None
    assert parse_controls({"cache": {"no-cache": True}}, default_off=True) is None
    opted = parse_controls({"cache": {"use-cache": True, "ttl": 5}}, default_off=True)
    assert opted == CacheControls(ttl=5.0)


def test_controls_read_write_ttl_age_namespace() -> None:
    parsed = parse_controls(
        {"cache": {"no-cache": True, "s-maxage": 0, "namespace": "ns"}}, default_off=False
    )
    assert parsed == CacheControls(read=False, write=True, max_age=0.0, namespace="ns")
    no_store = parse_controls({"cache": {"no-store": True}}, default_off=False)
    assert no_store is not None and no_store.read and not no_store.write
    assert (
        parse_controls({"cache": {"no-cache": True, "no-store": True}}, default_off=False) is None
    )


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        {"no-cache": "true"},
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": "60"},
        {"s-maxage": -1},
        {"namespace": ""},
        {"namespace": 3},
        {"use-cache": 1},
    ],
)
def test_bad_controls_are_a_400_naming_cache(value: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_controls({"cache": value}, default_off=False)
    assert caught.value.param == "cache"


# --- the in-process store ---------------------------------------------------------------


def test_memory_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    store = MemoryStore(10_000, 10_000, clock=clock)
    assert store.put("a", b"1", ttl=10)
    clock.now += 9.9
    assert store.get_now("a") == b"1"
    clock.now += 0.2
    assert store.get_now("a") is None
    assert len(store) == 0 and store.size == 0


def test_memory_lru_stays_within_its_byte_bound() -> None:
    one = ENTRY_OVERHEAD + 1 + 100  # a one-character key and a 100-byte value
    store = MemoryStore(3 * one, 3 * one, clock=FakeClock())
    for name in "abc":
        store.put(name, b"x" * 100, ttl=60)
    assert store.get_now("a") is not None  # a is now the most recently used
    store.put("d", b"x" * 100, ttl=60)
    assert store.get_now("b") is None  # the least recently used went
    assert all(store.get_now(n) is not None for n in "acd")
    assert store.size <= 3 * one and store.evictions == 1
    for i in range(50):
        store.put(f"k{i}", b"y" * 300, ttl=60)
        assert store.size <= store.max_bytes


def test_memory_refuses_an_entry_larger_than_the_item_bound() -> None:
    store = MemoryStore(10_000, 500, clock=FakeClock())
    assert not store.put("big", b"z" * 500, ttl=60)
    assert store.get_now("big") is None and store.size == 0


# --- entries, settings ------------------------------------------------------------------


def test_entries_round_trip() -> None:
    answer = stream_answer(5.0, b"text/event-stream", [b"data: 1\n\n", b"data: [DONE]\n\n"], "d1")
    back = CachedAnswer.decode(answer.encode())
    assert back == answer
    assert back is not None and back.pieces() == [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert CachedAnswer.decode(b"not an entry") is None
    assert CachedAnswer.decode(b'{"f": 99}\nbody') is None


def _config(cache_yaml: str) -> Any:
    text = "model_list: []\nlitellm_settings:\n" + textwrap.indent(cache_yaml, "  ")
    return load_config_text(text).config


def test_settings_read_litellm_cache_params() -> None:
    warnings: list[str] = []
    problems: list[str] = []
    assert cache_settings(_config("cache: false\n"), warnings, problems) is None
    settings = cache_settings(
        _config(
            "cache: true\ncache_params:\n  type: redis\n  host: 10.0.0.9\n  port: 6380\n"
            "  username: app\n  password: pw\n  ssl: true\n  namespace: ns\n  ttl: 30\n"
            "  mode: default_off\n  supported_call_types: [acompletion, aembedding, aresponses]\n"
        ),
        warnings,
        problems,
        environ={},
    )
    assert settings is not None and not problems
    assert settings.type == "redis" and settings.ttl == 30 and settings.namespace == "ns"
    assert settings.default_off and settings.calls == {CHAT, EMBEDDING}
    assert settings.redis is not None
    assert (settings.redis.host, settings.redis.port, settings.redis.username) == (
        "10.0.0.9",
        6380,
        "app",
    )
    assert settings.redis.ssl and settings.redis.password == "pw"
    assert any("aresponses" in w for w in warnings)
    local = cache_settings(_config("cache: true\n"), [], problems)
    assert local is not None and local.type == "local" and local.calls == ALL_CALLS


def test_bad_settings_are_reported() -> None:
    problems: list[str] = []
    cache_settings(
        _config("cache: true\ncache_params:\n  ttl: -1\n  mode: sometimes\n"), [], problems
    )
    assert any("ttl" in p for p in problems) and any("mode" in p for p in problems)


# --- the service ------------------------------------------------------------------------


def _deployment() -> Deployment:
    return Deployment(
        id="d1", model_name="gpt", provider_name="fake", upstream_model="m", provider=FakeProvider()
    )


def _cache(clock: FakeClock, **settings: Any) -> ResponseCache:
    config = _config(
        "cache: true\n" + "".join(f"cache_params:\n  {k}: {v}\n" for k, v in settings.items())
    )
    parsed = cache_settings(config, [], [])
    assert parsed is not None
    table = ModelTable([_deployment()], {"alias": "gpt"})
    return ResponseCache(parsed, MemoryStore(1 << 20, 1 << 20, clock=clock), table, clock=clock)


def test_service_hits_after_a_store_honours_s_maxage_and_resolves_aliases() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = _cache(clock)
        plan = cache.plan(Operation.CHAT, Dialect.OPENAI, dict(CHAT_BODY), False)
        assert plan is not None
        assert await cache.lookup(plan) is None
        cache.keep_answer(plan, _deployment(), ProviderResponse(200, b'{"id":"x"}'))
        hit = await cache.lookup(plan)
        assert hit is not None and hit.body == b'{"id":"x"}' and hit.model_id == "d1"
        aliased = cache.plan(Operation.CHAT, Dialect.OPENAI, {**CHAT_BODY, "model": "alias"}, False)
        assert aliased is not None and aliased.key == plan.key
        clock.now += 30
        fresh_only = cache.plan(
            Operation.CHAT, Dialect.OPENAI, {**CHAT_BODY, "cache": {"s-maxage": 10}}, False
        )
        assert fresh_only is not None and await cache.lookup(fresh_only) is None
        assert cache.counters.hits == 1 and cache.counters.misses == 2
        cache.keep_answer(plan, _deployment(), ProviderResponse(500, b'{"error":{}}'))
        assert cache.counters.not_stored == 1
        assert (
            cache.plan(Operation.CHAT, Dialect.OPENAI, {**CHAT_BODY, "model": "nope"}, False)
            is None
        )
        assert (
            cache.plan(Operation.IMAGE_GENERATION, Dialect.OPENAI, dict(CHAT_BODY), False) is None
        )

    asyncio.run(scenario())


def test_identical_misses_in_flight_follow_the_first() -> None:
    async def scenario() -> None:
        cache = _cache(FakeClock())
        plan = cache.plan(Operation.CHAT, Dialect.OPENAI, dict(CHAT_BODY), False)
        assert plan is not None
        lead = await cache.after_miss(plan)
        assert isinstance(lead, Lead)
        followers = [asyncio.ensure_future(cache.after_miss(plan)) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(f.done() for f in followers)
        cache.keep_answer(plan, _deployment(), ProviderResponse(200, b'{"id":"x"}'), lead)
        answers = await asyncio.gather(*followers)
        assert all(isinstance(a, CachedAnswer) and a.body == b'{"id":"x"}' for a in answers)
        assert cache.counters.coalesced == 3
        cache.release(lead)  # the leader on its way out: nothing changes
        assert len(cache.in_flight) == 0

        # A leader with nothing to share (an error, a client that left): followers get
        # None and go upstream; the next miss leads anew.
        lead = await cache.after_miss(plan)
        assert isinstance(lead, Lead)
        follower = asyncio.ensure_future(cache.after_miss(plan))
        await asyncio.sleep(0)
        cache.keep_answer(plan, _deployment(), ProviderResponse(500, b'{"error":{}}'), lead)
        assert not follower.done()  # an error is not shared...
        cache.release(lead)
        assert await follower is None  # ...the leader's release lets the follower go
        assert isinstance(await cache.after_miss(plan), Lead)

        # A follower that gives up does not cancel the answer the others wait for.
        quitter = asyncio.ensure_future(cache.after_miss(plan))
        stayer = asyncio.ensure_future(cache.after_miss(plan))
        await asyncio.sleep(0)
        quitter.cancel()
        await asyncio.sleep(0)
        assert not stayer.done()

    asyncio.run(scenario())


def test_streams_and_requests_that_do_not_store_never_wait() -> None:
    async def scenario() -> None:
        cache = _cache(FakeClock())
        streamed = cache.plan(Operation.CHAT, Dialect.OPENAI, dict(CHAT_BODY), True)
        no_store = cache.plan(
            Operation.CHAT, Dialect.OPENAI, {**CHAT_BODY, "cache": {"no-store": True}}, False
        )
        assert streamed is not None and no_store is not None
        for plan in (streamed, streamed, no_store, no_store):
            assert await cache.after_miss(plan) is None
        assert len(cache.in_flight) == 0

    asyncio.run(scenario())


class _Stream:
    content_type = b"text/event-stream"

    def __init__(self, chunks: list[bytes], fail: bool = False) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail:
            raise RuntimeError("upstream broke")

    async def aclose(self) -> None:
        self.closed = True


def test_recording_keeps_only_streams_that_reached_their_end() -> None:
    async def drain(stream: Any) -> list[bytes]:
        return [chunk async for chunk in stream]

    done = [b'data: {"a":1}\n\n', b"data: [DONE]\n\n"]
    kept: list[list[bytes]] = []
    out = asyncio.run(drain(RecordingStream(_Stream(done), Dialect.OPENAI, 1000, kept.append)))
    assert out == done and kept == [done]
    kept.clear()
    asyncio.run(drain(RecordingStream(_Stream(done[:1]), Dialect.OPENAI, 1000, kept.append)))
    assert kept == []  # cut short: no [DONE]
    with pytest.raises(RuntimeError):
        asyncio.run(
            drain(RecordingStream(_Stream(done, fail=True), Dialect.OPENAI, 1000, kept.append))
        )
    assert kept == []
    asyncio.run(drain(RecordingStream(_Stream(done), Dialect.OPENAI, 10, kept.append)))
    assert kept == []  # larger than the bound: passed on, not kept
    anthropic = [b"event: message_delta\ndata: {}\n\n", b"event: message_stop\ndata: {}\n\n"]
    asyncio.run(drain(RecordingStream(_Stream(anthropic), Dialect.ANTHROPIC, 1000, kept.append)))
    assert kept == [anthropic]
