"""Routing strategies, error kinds, retry policies and special fallbacks, with a fake clock."""

from __future__ import annotations

import random
import textwrap
from typing import Any

import pytest

from bastion.config.loader import load_config_text
from bastion.core.deployment import Deployment
from bastion.core.errors import (
    RateLimitError,
    UpstreamConnectionError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from bastion.core.usage import Usage
from bastion.providers.fake import FakeProvider
from bastion.routing.context_window import ContextWindows, context_limit, estimate_prompt_tokens
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.error_kinds import ErrorKind, classify, classify_rejection
from bastion.routing.feedback import TIMEOUT_PENALTY_S, RoutingFeedback
from bastion.routing.model_table import ModelTable
from bastion.routing.retry_policy import ALLOWED_FAILS, RETRIES, KindCounts, unknown_policy_keys
from bastion.routing.router import Router, RouterPolicy
from bastion.routing.setup import build_router
from bastion.routing.state_store import InMemoryStateStore
from bastion.routing.strategies import (
    UNPRICED_COST_PER_TOKEN,
    LatencyArgs,
    LeastBusy,
    LowestCost,
    LowestLatency,
    LowestUsage,
    RouteHints,
    SimpleShuffle,
    Strategy,
    has_room,
)

_FAKE = FakeProvider()


def dep(ident: str, group: str = "g", **fields: Any) -> Deployment:
    return Deployment(
        id=ident,
        model_name=group,
        provider_name="fake",
        upstream_model=ident,
        provider=_FAKE,
        **fields,
    )


def err(
    status: int,
    message: str = "upstream failed",
    code: str | None = None,
    retry_after: float | None = None,
) -> UpstreamStatusError:
    return UpstreamStatusError(
        message, status=status, provider="openai", code=code, retry_after=retry_after
    )


class FakeClock:
    def __init__(self, now: float = 1_000_020.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def picks(strategy: Strategy, group: list[Deployment], n: int = 200, **hints: Any) -> set[str]:
    rng = random.Random(7)
    chosen = set()
    for _ in range(n):
        picked = strategy.pick(group, rng, RouteHints(**hints))
        assert picked is not None
        chosen.add(picked.id)
    return chosen


# --- error kinds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        # OpenAI and Azure OpenAI: the code says it.
        (
            "context_length_exceeded",
            "This model's maximum context length is 8192 tokens. "
            "However, your messages resulted in 9000 tokens.",
            ErrorKind.CONTEXT_WINDOW,
        ),
        (None, "This model's maximum context length is 128000 tokens.", ErrorKind.CONTEXT_WINDOW),
        # Anthropic (and Bedrock's Claude): invalid_request_error, no code.
        (None, "prompt is too long: 208310 tokens > 200000 maximum", ErrorKind.CONTEXT_WINDOW),
        (
            None,
            "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
            ErrorKind.CONTEXT_WINDOW,
        ),
        (
            "ValidationException",
            "ValidationException: Input is too long for requested model.",
            ErrorKind.CONTEXT_WINDOW,
        ),
        # Azure's content filter, by code or by its wording.
        (
            "content_filter",
            "The response was filtered due to the prompt triggering Azure "
            "OpenAI's content management policy.",
            ErrorKind.CONTENT_POLICY,
        ),
        (
            None,
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy. Please modify your prompt and retry.",
            ErrorKind.CONTENT_POLICY,
        ),
        (
            "content_policy_violation",
            "Your request was rejected as a result of our safety system.",
            ErrorKind.CONTENT_POLICY,
        ),
        ("ResponsibleAIPolicyViolation", "blocked", ErrorKind.CONTENT_POLICY),
        (None, "Output blocked by content filtering policy", ErrorKind.CONTENT_POLICY),
        # Anything else the provider rejected.
        (None, "Invalid value for 'temperature': must be <= 2", ErrorKind.BAD_REQUEST),
        ("invalid_value", "max_tokens is too large", ErrorKind.BAD_REQUEST),
    ],
)
def test_rejections_are_classified_from_code_and_message(
    code: str | None, message: str, kind: ErrorKind
) -> None:
    assert classify_rejection(code, message) is kind
    assert classify(err(400, f"openai error: {message}", code)) is kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (err(429), ErrorKind.RATE_LIMIT),
        (err(401), ErrorKind.AUTHENTICATION),
        (err(403), ErrorKind.AUTHENTICATION),
        (err(404), ErrorKind.NOT_FOUND),
        (err(500), ErrorKind.INTERNAL),
        (err(502), ErrorKind.BAD_GATEWAY),
        (err(503), ErrorKind.SERVICE_UNAVAILABLE),
        (err(413, "Request too large"), ErrorKind.BAD_REQUEST),
        (UpstreamTimeoutError("slow", provider="x"), ErrorKind.TIMEOUT),
        (UpstreamConnectionError("refused", provider="x"), ErrorKind.BAD_GATEWAY),
    ],
)
def test_statuses_map_to_kinds(error: UpstreamStatusError, kind: ErrorKind) -> None:
    assert classify(error) is kind


def test_a_500_mentioning_context_is_still_a_server_error() -> None:
    assert classify(err(500, "maximum context length")) is ErrorKind.INTERNAL


# --- retry / allowed-fails policies -------------------------------------------------------


def test_retry_policy_fields_and_parents() -> None:
    counts = KindCounts(
        {
            "BadRequestErrorRetries": 1,
            "RateLimitErrorRetries": 4,
            "InternalServerErrorRetries": 2,
            "ServiceUnavailableErrorRetries": 5,
        },
        RETRIES,
    )
    assert counts.get(ErrorKind.RATE_LIMIT) == 4
    # A context-window overflow and a content-policy refusal are BadRequestErrors.
    assert counts.get(ErrorKind.CONTEXT_WINDOW) == 1
    assert counts.get(ErrorKind.CONTENT_POLICY) == 1
    assert counts.get(ErrorKind.SERVICE_UNAVAILABLE) == 5
    assert counts.get(ErrorKind.BAD_GATEWAY) == 2  # falls back to InternalServerError
    assert counts.get(ErrorKind.TIMEOUT) is None  # not covered: router default


def test_default_retries_covers_unnamed_kinds_and_unknown_keys_are_found() -> None:
    counts = KindCounts({"DefaultRetries": 3, "TimeoutErrorRetries": 0}, RETRIES)
    assert counts.get(ErrorKind.TIMEOUT) == 0
    assert counts.get(ErrorKind.AUTHENTICATION) == 3
    assert not KindCounts(None, RETRIES)
    assert unknown_policy_keys({"RateLimitErrorRetrys": 1, "TimeoutErrorRetries": 1}, RETRIES) == [
        "RateLimitErrorRetrys"
    ]
    assert unknown_policy_keys({"DefaultRetries": 1}, ALLOWED_FAILS) == ["DefaultRetries"]


def test_content_policy_allowed_fails_does_not_apply_to_other_bad_requests() -> None:
    cooldowns = CooldownTracker(
        allowed_fails_policy={"ContentPolicyViolationErrorAllowedFails": 0}, clock=FakeClock()
    )
    assert not cooldowns.record_failure("a", err(400, "bad temperature"), group_size=2)
    assert cooldowns.record_failure("b", err(400, "blocked", code="content_filter"), group_size=2)


# --- state store --------------------------------------------------------------------------


def test_minute_usage_starts_again_each_minute() -> None:
    clock = FakeClock(now=600.0)  # the start of a minute
    store = InMemoryStateStore(clock)
    store.request_started("a")
    store.add_tokens("a", 120)
    clock.advance(59)
    store.request_started("a")
    assert store.minute_usage("a") == (2, 120)
    assert store.in_flight("a") == 2
    clock.advance(1)
    assert store.minute_usage("a") == (0, 0)
    assert store.in_flight("a") == 2  # in flight is not per minute
    store.request_ended("a")
    store.request_ended("a")
    store.request_ended("a")  # never below zero
    assert store.in_flight("a") == 0
    assert store.minute_usage("never-seen") == (0, 0)


def test_latency_is_the_mean_of_recent_samples_within_ttl() -> None:
    clock = FakeClock()
    store = InMemoryStateStore(clock)
    store.add_latency("a", 1.0, first_token=False)
    clock.advance(50)
    store.add_latency("a", 3.0, first_token=False)
    store.add_latency("a", 0.2, first_token=True)
    assert store.latency("a", first_token=False, ttl=100) == pytest.approx(2.0)
    assert store.latency("a", first_token=True, ttl=100) == pytest.approx(0.2)
    clock.advance(60)  # the first sample is now 110 s old
    assert store.latency("a", first_token=False, ttl=100) == pytest.approx(3.0)
    clock.advance(100)
    assert store.latency("a", first_token=False, ttl=100) is None
    for i in range(20):  # only the last 10 samples are kept
        store.add_latency("b", 100.0 if i < 10 else 1.0, first_token=False)
    assert store.latency("b", first_token=False, ttl=100) == pytest.approx(1.0)
    store.add_latency("b", float("nan"), first_token=False)
    assert store.latency("b", first_token=False, ttl=100) == pytest.approx(1.0)


# --- strategies ---------------------------------------------------------------------------


def test_least_busy_picks_the_fewest_in_flight_and_breaks_ties_at_random() -> None:
    store = InMemoryStateStore(FakeClock())
    group = [dep("a"), dep("b"), dep("c")]
    for ident, n in (("a", 3), ("b", 1), ("c", 2)):
        for _ in range(n):
            store.request_started(ident)
    assert picks(LeastBusy(store), group) == {"b"}
    store.request_started("b")  # a tie between b and c
    assert picks(LeastBusy(store), group) == {"b", "c"}


def test_latency_based_prefers_the_fastest_and_tries_unmeasured_first() -> None:
    clock = FakeClock()
    store = InMemoryStateStore(clock)
    strategy = LowestLatency(store)
    group = [dep("fast"), dep("slow"), dep("new")]
    store.add_latency("fast", 0.2, first_token=False)
    store.add_latency("slow", 2.0, first_token=False)
    assert picks(strategy, group) == {"new"}  # no samples: counts as 0 s
    store.add_latency("new", 1.0, first_token=False)
    assert picks(strategy, group) == {"fast"}


def test_latency_based_uses_time_to_first_token_for_streams() -> None:
    store = InMemoryStateStore(FakeClock())
    group = [dep("a"), dep("b")]
    # "a" answers whole requests faster, "b" starts streaming sooner.
    store.add_latency("a", 1.0, first_token=False)
    store.add_latency("b", 3.0, first_token=False)
    store.add_latency("a", 0.8, first_token=True)
    store.add_latency("b", 0.1, first_token=True)
    assert picks(LowestLatency(store), group, stream=False) == {"a"}
    assert picks(LowestLatency(store), group, stream=True) == {"b"}


def test_lowest_latency_buffer_spreads_over_deployments_close_to_the_best() -> None:
    store = InMemoryStateStore(FakeClock())
    group = [dep("a"), dep("b"), dep("c")]
    for ident, seconds in (("a", 1.0), ("b", 1.4), ("c", 2.0)):
        store.add_latency(ident, seconds, first_token=False)
    assert picks(LowestLatency(store, LatencyArgs(lowest_latency_buffer=0.5)), group) == {"a", "b"}
    assert picks(LowestLatency(store, LatencyArgs(lowest_latency_buffer=0)), group) == {"a"}


def test_latency_ttl_forgets_old_samples() -> None:
    clock = FakeClock()
    store = InMemoryStateStore(clock)
    strategy = LowestLatency(store, LatencyArgs(ttl=30))
    store.add_latency("a", 5.0, first_token=False)  # a bad spell, long ago
    clock.advance(31)
    store.add_latency("b", 1.0, first_token=False)
    assert picks(strategy, [dep("a"), dep("b")]) == {"a"}  # "a" has no recent samples


def test_usage_based_picks_the_fewest_tokens_this_minute() -> None:
    store = InMemoryStateStore(FakeClock())
    group = [dep("a"), dep("b")]
    store.add_tokens("a", 5_000)
    store.add_tokens("b", 1_000)
    assert picks(LowestUsage(store), group) == {"b"}


def test_usage_based_respects_rpm_and_tpm_as_capacity() -> None:
    clock = FakeClock(now=1_200.0)
    store = InMemoryStateStore(clock)
    full_rpm, full_tpm, roomy = dep("r", rpm=2), dep("t", tpm=1_000), dep("x", tpm=100_000)
    store.request_started("r")
    store.request_started("r")
    store.add_tokens("t", 900)
    store.add_tokens("x", 50_000)
    strategy = LowestUsage(store)
    # "r" has used its 2 requests; "t" has 100 tokens left and the prompt is ~250.
    prompt = {"messages": [{"role": "user", "content": "x" * 1000}]}
    group = [full_rpm, full_tpm, roomy]
    assert picks(strategy, group, estimate=lambda: estimate_prompt_tokens(prompt)) == {"x"}
    assert (
        strategy.pick([full_rpm, full_tpm], random.Random(1), RouteHints(estimate=lambda: 250))
        is None
    )
    clock.advance(60)  # a new minute: both have room again
    assert picks(strategy, [full_rpm, full_tpm], estimate=lambda: 250) == {"r", "t"}


def test_has_room_reads_model_info_capacity_too() -> None:
    capped = dep("a", model_info={"rpm": 1})
    assert has_room(capped, (0, 0), 0)
    assert not has_room(capped, (1, 0), 0)
    assert has_room(dep("b"), (10**9, 10**12), 10**6)


def test_cost_based_picks_the_cheapest_and_unpriced_last() -> None:
    store = InMemoryStateStore(FakeClock())
    prices = {"cheap": 0.000001, "dear": 0.00003}
    strategy = LowestCost(store, lambda d: prices.get(d.id, UNPRICED_COST_PER_TOKEN))
    assert picks(strategy, [dep("dear"), dep("cheap"), dep("unknown")]) == {"cheap"}
    assert picks(strategy, [dep("dear"), dep("unknown")]) == {"dear"}
    # At capacity, the cheapest is skipped for this minute.
    capped = dep("cheap", rpm=1)
    store.request_started("cheap")
    assert picks(strategy, [capped, dep("dear")]) == {"dear"}


def test_only_strategies_that_need_it_record_feedback() -> None:
    store = InMemoryStateStore(FakeClock())
    shuffle = RoutingFeedback(store, SimpleShuffle())
    assert not shuffle.enabled
    shuffle.started(dep("a"))
    assert store.in_flight("a") == 0
    latency = RoutingFeedback(store, LowestLatency(store))
    latency.started(dep("a"))
    assert store.in_flight("a") == 1
    latency.failed(dep("a"), UpstreamTimeoutError("slow", provider="x"))
    assert store.in_flight("a") == 0
    assert store.latency("a", first_token=False, ttl=60) == TIMEOUT_PENALTY_S
    usage = RoutingFeedback(store, LowestUsage(store))
    usage.used(dep("u"), Usage(input_tokens=10, output_tokens=5, cached_input_tokens=2))
    assert store.minute_usage("u") == (0, 17)


# --- prompt estimate and context windows --------------------------------------------------


def test_prompt_estimate_counts_text_images_and_tools() -> None:
    text = {"messages": [{"role": "user", "content": "abcd" * 100}]}
    assert estimate_prompt_tokens(text) == 3 + 100
    parts = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "abcd" * 10},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            }
        ]
    }
    assert estimate_prompt_tokens(parts) == 3 + 10 + 1600
    assert estimate_prompt_tokens({"input": ["abcd", "efgh"]}) == 2
    assert estimate_prompt_tokens({"prompt": [1, 2, 3]}) == 3
    assert estimate_prompt_tokens({"model": "x"}) == 1


def test_context_limit_from_model_info_then_the_table() -> None:
    assert context_limit(dep("a", model_info={"max_input_tokens": 100, "max_tokens": 50})) == 100
    assert context_limit(dep("b", model_info={"max_tokens": 50})) == 50
    assert context_limit(dep("c"), lambda d: 8192) == 8192
    assert context_limit(dep("d")) is None
    calls: list[str] = []

    def table(d: Deployment) -> int:
        calls.append(d.id)
        return 10

    windows = ContextWindows(table)
    assert windows.limit(dep("e")) == windows.limit(dep("e")) == 10
    assert calls == ["e"]  # the table is asked once per model
    # model_info wins, and is read afresh (a stored model's settings may change).
    assert windows.limit(dep("e", model_info={"max_tokens": 5})) == 5


# --- the router: special fallbacks, pre-call checks, retry policy, capacity ------------------


class Script:
    def __init__(self, outcomes: dict[str, Any]) -> None:
        self.outcomes = {k: list(v) if isinstance(v, list) else [v] for k, v in outcomes.items()}
        self.calls: list[str] = []

    async def __call__(self, deployment: Deployment) -> Any:
        self.calls.append(deployment.id)
        queue = self.outcomes[deployment.id]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def _no_sleep(_seconds: float) -> None:
    return None


def router(
    deployments: list[Deployment], strategy: Strategy | None = None, **policy: Any
) -> Router:
    return Router(
        ModelTable(deployments),
        RouterPolicy(**policy),
        CooldownTracker(clock=FakeClock()),
        rng=random.Random(0),
        sleep=_no_sleep,
        strategy=strategy,
    )


CONTEXT_ERROR = err(
    400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded"
)
POLICY_ERROR = err(400, "filtered", code="content_filter")


async def test_context_window_error_goes_to_context_window_fallbacks() -> None:
    r = router(
        [dep("small", "gpt-small"), dep("big", "gpt-big"), dep("other", "other")],
        fallbacks={"gpt-small": ["other"]},
        context_window_fallbacks={"gpt-small": ["gpt-big"]},
    )
    script = Script({"small": CONTEXT_ERROR, "big": "from big", "other": "from other"})
    routed = await r.route("gpt-small", script)
    assert routed.value == "from big"
    assert script.calls == ["small", "big"]  # not retried, not the ordinary fallback
    assert routed.fallbacks == 1


async def test_context_window_error_without_a_rule_goes_back_to_the_client() -> None:
    r = router(
        [dep("small", "gpt-small"), dep("other", "other")], fallbacks={"gpt-small": ["other"]}
    )
    script = Script({"small": CONTEXT_ERROR, "other": "from other"})
    with pytest.raises(UpstreamStatusError) as info:
        await r.route("gpt-small", script)
    assert info.value is CONTEXT_ERROR
    assert script.calls == ["small"]


async def test_context_window_fallbacks_are_tried_in_order_while_they_overflow() -> None:
    r = router(
        [dep("s", "s"), dep("m", "m"), dep("l", "l")],
        context_window_fallbacks={"s": ["m", "l"]},
    )
    script = Script({"s": CONTEXT_ERROR, "m": CONTEXT_ERROR, "l": "from l"})
    routed = await r.route("s", script)
    assert (routed.value, routed.fallbacks) == ("from l", 2)
    assert script.calls == ["s", "m", "l"]


async def test_content_policy_error_goes_to_content_policy_fallbacks() -> None:
    r = router(
        [dep("strict", "strict"), dep("lenient", "lenient")],
        content_policy_fallbacks={"strict": ["lenient"]},
        context_window_fallbacks={"strict": ["nowhere"]},
    )
    script = Script({"strict": POLICY_ERROR, "lenient": "ok"})
    assert (await r.route("strict", script)).value == "ok"
    # A per-request disable_fallbacks turns these off too.
    with pytest.raises(UpstreamStatusError):
        await r.route("strict", Script({"strict": POLICY_ERROR}), use_fallbacks=False)


async def test_pre_call_checks_skip_deployments_the_prompt_overflows() -> None:
    small = dep("small", "g", model_info={"max_input_tokens": 100})
    large = dep("large", "g", model_info={"max_input_tokens": 10_000}, weight=0)
    r = router(
        [small, large, dep("huge", "huge")],
        enable_pre_call_checks=True,
        context_window_fallbacks={"g": ["huge"]},
    )
    long_prompt = RouteHints(estimate=lambda: 5_000)
    script = Script({"small": "from small", "large": "from large", "huge": "from huge"})
    assert (await r.route("g", script, hints=long_prompt)).value == "from large"
    assert script.calls == ["large"]  # "small" was never called
    # Too long for every deployment of "g": the context-window fallback, before any call.
    too_long = RouteHints(estimate=lambda: 50_000)
    script = Script({"small": "x", "large": "x", "huge": "from huge"})
    routed = await r.route("g", script, hints=too_long)
    assert (routed.value, routed.fallbacks, script.calls) == ("from huge", 1, ["huge"])


async def test_pre_call_checks_without_a_fallback_answer_400() -> None:
    r = router([dep("small", "g", model_info={"max_tokens": 10})], enable_pre_call_checks=True)
    with pytest.raises(UpstreamStatusError) as info:
        await r.route("g", Script({"small": "x"}), hints=RouteHints(estimate=lambda: 99))
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"
    assert "99 tokens" in info.value.message and "10 tokens" in info.value.message


async def test_pre_call_checks_off_never_estimate() -> None:
    def boom() -> int:
        raise AssertionError("estimated without pre-call checks")

    r = router([dep("small", "g", model_info={"max_tokens": 10})])
    assert (await r.route("g", Script({"small": "x"}), hints=RouteHints(estimate=boom))).value


async def test_retry_policy_sets_retries_per_error_kind() -> None:
    # 400s are retried twice, 429s not at all (the default would retry both ways).
    r = router(
        [dep("a")],
        num_retries=2,
        retry_policy={"BadRequestErrorRetries": 2, "RateLimitErrorRetries": 0},
    )
    script = Script({"a": [err(400), err(400), "third time"]})
    routed = await r.route("g", script)
    assert (routed.value, routed.retries) == ("third time", 2)
    script = Script({"a": [err(429), "never"]})
    with pytest.raises(UpstreamStatusError) as info:
        await r.route("g", script)
    assert info.value.status == 429 and script.calls == ["a"]


async def test_retry_policy_can_give_timeouts_more_retries_than_num_retries() -> None:
    r = router([dep("a")], num_retries=1, retry_policy={"TimeoutErrorRetries": 3})
    timeout = UpstreamTimeoutError("slow", provider="x")
    script = Script({"a": [timeout, timeout, timeout, "ok"]})
    assert (await r.route("g", script)).retries == 3


async def test_a_groups_own_retry_policy_replaces_the_general_one() -> None:
    timeout = UpstreamTimeoutError("slow", provider="x")
    r = router(
        [dep("a", "g"), dep("b", "h")],
        num_retries=0,
        retry_policy={"TimeoutErrorRetries": 0, "RateLimitErrorRetries": 1},
        model_group_retry_policy={"g": {"TimeoutErrorRetries": 2}},
        fallbacks={},
    )
    assert (await r.route("g", Script({"a": [timeout, timeout, "ok"]}))).retries == 2
    with pytest.raises(UpstreamTimeoutError):  # h keeps the general policy: no retry
        await r.route("h", Script({"b": [timeout, "never"]}))
    # g's policy replaces the general one whole: 429s are not retried for g.
    script = Script({"a": [err(429), "never"]})
    with pytest.raises(UpstreamStatusError):
        await r.route("g", script)
    assert script.calls == ["a"]


async def test_a_groups_retry_policy_applies_to_its_aliases() -> None:
    timeout = UpstreamTimeoutError("slow", provider="x")
    table = ModelTable([dep("a", "g")], aliases={"alias": "g"})
    r = Router(
        table,
        RouterPolicy(num_retries=0, model_group_retry_policy={"g": {"TimeoutErrorRetries": 1}}),
        CooldownTracker(clock=FakeClock()),
        rng=random.Random(0),
        sleep=_no_sleep,
    )
    assert (await r.route("alias", Script({"a": [timeout, "ok"]}))).retries == 1


async def test_all_deployments_at_capacity_is_a_429_that_falls_back() -> None:
    store = InMemoryStateStore(FakeClock())
    full = dep("full", "g", rpm=1)
    store.request_started("full")
    r = router(
        [full, dep("spare", "spare")], strategy=LowestUsage(store), fallbacks={"g": ["spare"]}
    )
    routed = await r.route("g", Script({"spare": "from spare"}))
    assert routed.value == "from spare"
    with pytest.raises(RateLimitError) as info:
        await r.route("g", Script({}), use_fallbacks=False)
    assert info.value.code == "no_deployments_available"
    assert "rpm/tpm" in info.value.message
    assert 1 <= int(info.value.headers["retry-after"]) <= 60


async def test_the_strategy_chooses_among_deployments_not_yet_tried() -> None:
    store = InMemoryStateStore(FakeClock())
    store.add_latency("fast", 0.1, first_token=False)
    store.add_latency("slow", 1.0, first_token=False)
    r = router([dep("fast"), dep("slow")], strategy=LowestLatency(store))
    script = Script({"fast": err(500), "slow": "from slow"})
    routed = await r.route("g", script)
    assert script.calls == ["fast", "slow"] and routed.retries == 1


# --- configuration ------------------------------------------------------------------------


def _router_from(text: str) -> tuple[Router, list[str]]:
    loaded = load_config_text(textwrap.dedent(text), "<test>")
    from bastion.providers.http import UpstreamHTTP
    from bastion.providers.registry import ProviderRegistry
    from bastion.routing.deployments import build_deployments

    warnings = list(loaded.warnings)
    deployments = build_deployments(loaded.config, ProviderRegistry(UpstreamHTTP()))
    return build_router(loaded.config, ModelTable(deployments), None, warnings), warnings


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("simple-shuffle", SimpleShuffle),
        ("least-busy", LeastBusy),
        ("latency-based-routing", LowestLatency),
        ("usage-based-routing", LowestUsage),
        ("usage-based-routing-v2", LowestUsage),
        ("cost-based-routing", LowestCost),
    ],
)
def test_routing_strategy_names(name: str, cls: type) -> None:
    r, warnings = _router_from(f"""
        model_list: [{{model_name: m, litellm_params: {{model: fake/m}}}}]
        router_settings: {{routing_strategy: {name}}}
        """)
    assert isinstance(r.strategy, cls)
    assert r.strategy.name == name
    assert warnings == []


def test_router_settings_are_read_and_bad_policy_keys_named() -> None:
    r, warnings = _router_from("""
        model_list:
          - {model_name: a, litellm_params: {model: fake/a}}
          - {model_name: b, litellm_params: {model: fake/b}}
        router_settings:
          routing_strategy: latency-based-routing
          routing_strategy_args: {ttl: 60, lowest_latency_buffer: 0.2, max_latency_list_size: 5}
          context_window_fallbacks: [{a: [b]}]
          enable_pre_call_checks: true
          retry_policy: {TimeoutErrorRetries: 4, TimeoutRetries: 1}
          allowed_fails_policy: {RateLimitErrorAllowedFails: 3}
        litellm_settings:
          content_policy_fallbacks: [{b: [a]}]
        """)
    assert isinstance(r.strategy, LowestLatency)
    assert r.strategy.args == LatencyArgs(ttl=60, lowest_latency_buffer=0.2)
    assert r.policy.context_window_fallbacks == {"a": ["b"]}
    assert r.policy.content_policy_fallbacks == {"b": ["a"]}
    assert r.policy.enable_pre_call_checks
    joined = "\n".join(warnings)
    assert "retry_policy.TimeoutRetries" in joined
    assert "routing_strategy_args.max_latency_list_size" in joined
    assert "accepted, but not acted on" not in joined


def test_model_group_retry_policy_is_read_and_checked() -> None:
    r, warnings = _router_from("""
        model_list:
          - {model_name: a, litellm_params: {model: fake/a}}
        router_settings:
          model_group_retry_policy:
            a: {TimeoutErrorRetries: 4, RateLimitErrorRetrys: 1, BadRequestErrorRetries: -1}
            b: "three"
        """)
    assert r.policy.model_group_retry_policy == {
        "a": {"TimeoutErrorRetries": 4, "RateLimitErrorRetrys": 1}
    }
    joined = "\n".join(warnings)
    assert "model_group_retry_policy.a.RateLimitErrorRetrys" in joined
    assert "model_group_retry_policy.a.BadRequestErrorRetries" in joined
    assert "model_group_retry_policy.b" in joined
    assert "accepted, but not acted on" not in joined


def test_malformed_litellm_settings_routing_values_are_noted_not_fatal() -> None:
    r, warnings = _router_from("""
        model_list:
          - {model_name: a, litellm_params: {model: fake/a}}
          - {model_name: b, litellm_params: {model: fake/b}}
        litellm_settings:
          retry_policy: {TimeoutErrorRetries: lots, RateLimitErrorRetries: 2}
          context_window_fallbacks: [{a: b}, "not a rule"]
        """)
    assert r.policy.retry_policy == {"RateLimitErrorRetries": 2}
    assert r.policy.context_window_fallbacks == {"a": ["b"]}
    assert any("retry_policy.TimeoutErrorRetries" in w for w in warnings)
