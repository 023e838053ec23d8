"""Weighted picks, cooldowns, the retry/fallback router and the model table."""

from __future__ import annotations

import random
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from bastion.app import build_runtime
from bastion.config.loader import load_config_text
from bastion.core.deployment import Deployment
from bastion.core.errors import (
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from bastion.providers.fake import FakeProvider
from bastion.routing.cooldown import MAX_RETRY_AFTER_COOLDOWN_S, WINDOW_S, CooldownTracker
from bastion.routing.model_table import ModelTable
from bastion.routing.router import BACKOFF_BASE_S, MAX_INLINE_WAIT_S, Router, RouterPolicy
from bastion.routing.strategy import deployment_weight, pick_weighted

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


def status_error(status: int, retry_after: float | None = None) -> UpstreamStatusError:
    return UpstreamStatusError(
        f"upstream said {status}", status=status, provider="fake", retry_after=retry_after
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- weighted pick ------------------------------------------------------------------------


def _pick_counts(
    candidates: Sequence[Deployment], picks: int = 4000, seed: int = 7
) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(pick_weighted(candidates, rng).id for _ in range(picks))


def test_weighted_pick_follows_weights() -> None:
    counts = _pick_counts([dep("heavy", weight=3), dep("light", weight=1)])
    assert counts["heavy"] + counts["light"] == 4000
    assert abs(counts["heavy"] - 3000) < 150


def test_rpm_is_the_weight_when_weight_is_absent() -> None:
    counts = _pick_counts([dep("big", rpm=900), dep("small", rpm=300)])
    assert abs(counts["big"] - 3000) < 150


def test_tpm_is_the_weight_when_weight_and_rpm_are_absent() -> None:
    counts = _pick_counts([dep("a", tpm=100_000), dep("b", tpm=300_000)])
    assert abs(counts["b"] - 3000) < 150


def test_weight_beats_rpm_and_default_is_even() -> None:
    assert deployment_weight(dep("a", weight=2, rpm=1000, tpm=5)) == 2.0
    assert deployment_weight(dep("a", rpm=1000, tpm=5)) == 1000.0
    assert deployment_weight(dep("a")) == 1.0
    counts = _pick_counts([dep("a", weight=1, rpm=10_000), dep("b", weight=1)])
    assert abs(counts["a"] - 2000) < 150
    even = _pick_counts([dep("x"), dep("y"), dep("z")], picks=3000)
    assert all(abs(n - 1000) < 120 for n in even.values())


def test_zero_weights_pick_uniformly_and_single_candidate_is_returned() -> None:
    counts = _pick_counts([dep("a", weight=0), dep("b", weight=0)])
    assert abs(counts["a"] - 2000) < 150
    only = dep("only", weight=0)
    assert pick_weighted([only], random.Random(1)) is only


def test_weighted_pick_is_reproducible_with_a_seed() -> None:
    group = [dep("a", weight=1), dep("b", weight=2), dep("c", weight=3)]
    assert _pick_counts(group, 200, seed=42) == _pick_counts(group, 200, seed=42)


# --- cooldowns ----------------------------------------------------------------------------


def tracker(clock: FakeClock, **kwargs: Any) -> CooldownTracker:
    return CooldownTracker(clock=clock, **kwargs)


def test_cooldown_after_more_than_allowed_fails() -> None:
    clock = FakeClock()
    cooldowns = tracker(clock, allowed_fails=2, cooldown_time=10)
    assert cooldowns.record_failure("a", status_error(500), group_size=2) is False
    assert cooldowns.record_failure("a", status_error(503), group_size=2) is False
    assert not cooldowns.is_cooling("a")
    assert cooldowns.record_failure("a", status_error(500), group_size=2) is True
    assert cooldowns.is_cooling("a")
    assert cooldowns.cooling_ids() == ["a"]
    assert cooldowns.seconds_left("a") == pytest.approx(10)
    assert not cooldowns.is_cooling("b")


def test_cooldown_expires_after_cooldown_time() -> None:
    clock = FakeClock()
    cooldowns = tracker(clock, allowed_fails=0, cooldown_time=5)
    assert cooldowns.record_failure("a", status_error(500), group_size=3)
    clock.advance(4.9)
    assert cooldowns.is_cooling("a")
    assert cooldowns.seconds_left("a") == pytest.approx(0.1)
    clock.advance(0.2)
    assert not cooldowns.is_cooling("a")
    assert cooldowns.seconds_left("a") == 0.0
    assert cooldowns.cooling_ids() == []


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = FakeClock()
    cooldowns = tracker(clock, allowed_fails=1, cooldown_time=5)
    assert not cooldowns.record_failure("a", status_error(500), group_size=2)
    clock.advance(WINDOW_S + 1)
    assert not cooldowns.record_failure("a", status_error(500), group_size=2)
    assert not cooldowns.is_cooling("a")
    assert cooldowns.record_failure("a", status_error(500), group_size=2)


def test_rate_limit_cools_at_once_for_the_providers_retry_after() -> None:
    clock = FakeClock()
    cooldowns = tracker(clock, allowed_fails=5, cooldown_time=5)
    assert cooldowns.record_failure("a", status_error(429, retry_after=30), group_size=2)
    assert cooldowns.seconds_left("a") == pytest.approx(30)
    clock.advance(29)
    assert cooldowns.is_cooling("a")
    clock.advance(2)
    assert not cooldowns.is_cooling("a")
    # retry-after replaces cooldown_time, shorter or longer, up to a cap.
    assert cooldowns.record_failure("b", status_error(429, retry_after=1), group_size=2)
    assert cooldowns.seconds_left("b") == pytest.approx(1)
    assert cooldowns.record_failure("c", status_error(429, retry_after=86_400), group_size=2)
    assert cooldowns.seconds_left("c") == pytest.approx(MAX_RETRY_AFTER_COOLDOWN_S)
    # Without retry-after, cooldown_time applies.
    assert cooldowns.record_failure("d", status_error(429), group_size=2)
    assert cooldowns.seconds_left("d") == pytest.approx(5)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_not_found_cool_at_once(status: int) -> None:
    cooldowns = tracker(FakeClock(), allowed_fails=5)
    assert cooldowns.record_failure("a", status_error(status), group_size=2)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_rejected_requests_never_cool(status: int) -> None:
    cooldowns = tracker(FakeClock(), allowed_fails=0)
    for _ in range(20):
        assert not cooldowns.record_failure("a", status_error(status), group_size=2)
    assert not cooldowns.is_cooling("a")


def test_timeouts_count_toward_allowed_fails() -> None:
    cooldowns = tracker(FakeClock(), allowed_fails=1)
    timeout = UpstreamTimeoutError("slow", provider="fake")
    assert not cooldowns.record_failure("a", timeout, group_size=2)
    assert cooldowns.record_failure("a", timeout, group_size=2)


def test_single_deployment_group_never_cools() -> None:
    cooldowns = tracker(FakeClock(), allowed_fails=0)
    for _ in range(10):
        assert not cooldowns.record_failure("a", status_error(429, 60), group_size=1)
        assert not cooldowns.record_failure("a", status_error(500), group_size=1)
    assert not cooldowns.is_cooling("a")


def test_disable_cooldowns() -> None:
    cooldowns = tracker(FakeClock(), allowed_fails=0, disabled=True)
    assert not cooldowns.record_failure("a", status_error(429, 60), group_size=5)
    assert not cooldowns.is_cooling("a")


def test_allowed_fails_policy_per_error_kind() -> None:
    clock = FakeClock()
    cooldowns = tracker(
        clock,
        allowed_fails=0,
        allowed_fails_policy={
            "RateLimitErrorAllowedFails": 2,
            "BadRequestErrorAllowedFails": 1,
            "InternalServerErrorAllowedFails": 3,
        },
    )
    # 429s are tolerated twice a minute instead of cooling at once.
    assert not cooldowns.record_failure("rl", status_error(429), group_size=2)
    assert not cooldowns.record_failure("rl", status_error(429), group_size=2)
    assert cooldowns.record_failure("rl", status_error(429), group_size=2)
    # A policy entry makes 400s count, which they otherwise never do.
    assert not cooldowns.record_failure("br", status_error(400), group_size=2)
    assert cooldowns.record_failure("br", status_error(400), group_size=2)
    for _ in range(3):
        assert not cooldowns.record_failure("ise", status_error(502), group_size=2)
    assert cooldowns.record_failure("ise", status_error(502), group_size=2)
    # Kinds without a policy entry use the plain rules: 401 cools at once.
    assert cooldowns.record_failure("auth", status_error(401), group_size=2)


# --- router -------------------------------------------------------------------------------

Outcome = Any  # a value to return, or an exception to raise


class Script:
    """A scripted ``attempt``: per deployment id, outcomes consumed in order (the last repeats)."""

    def __init__(self, outcomes: dict[str, Outcome | list[Outcome]]) -> None:
        self.outcomes = {k: list(v) if isinstance(v, list) else [v] for k, v in outcomes.items()}
        self.calls: list[str] = []

    async def __call__(self, deployment: Deployment) -> Any:
        self.calls.append(deployment.id)
        queue = self.outcomes[deployment.id]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_router(
    deployments: list[Deployment],
    *,
    clock: FakeClock | None = None,
    aliases: dict[str, str | dict[str, Any]] | None = None,
    **policy: Any,
) -> tuple[Router, Sleeps]:
    sleeps = Sleeps()
    cooldowns = CooldownTracker(
        allowed_fails=policy.pop("allowed_fails", 3),
        cooldown_time=policy.pop("cooldown_time", 5.0),
        clock=clock or FakeClock(),
    )
    router = Router(
        ModelTable(deployments, aliases),
        RouterPolicy(**policy),
        cooldowns,
        rng=random.Random(0),
        sleep=sleeps,
    )
    return router, sleeps


async def test_success_on_first_try() -> None:
    router, sleeps = make_router([dep("a", "gpt-4o")])
    script = Script({"a": "answer"})
    routed = await router.route("gpt-4o", script)
    assert routed.value == "answer"
    assert routed.deployment.id == "a"
    assert (routed.retries, routed.fallbacks) == (0, 0)
    assert script.calls == ["a"]
    assert sleeps.waits == []


async def test_retry_goes_to_a_different_deployment_after_500() -> None:
    # "b" has weight 0, so "a" is always picked first while both are fresh.
    router, sleeps = make_router([dep("a", "g", weight=1), dep("b", "g", weight=0)])
    script = Script({"a": status_error(500), "b": "from b"})
    routed = await router.route("g", script)
    assert script.calls == ["a", "b"]
    assert routed.value == "from b"
    assert routed.deployment.id == "b"
    assert (routed.retries, routed.fallbacks) == (1, 0)
    assert sleeps.waits == []  # a fresh deployment needs no wait


async def test_retries_exhausted_then_fallback_group() -> None:
    router, sleeps = make_router(
        [dep("p1", "primary"), dep("b1", "backup")],
        num_retries=2,
        fallbacks={"primary": ["backup"]},
    )
    script = Script({"p1": status_error(503), "b1": "from backup"})
    routed = await router.route("primary", script)
    assert script.calls == ["p1", "p1", "p1", "b1"]
    assert routed.value == "from backup"
    assert routed.deployment.model_name == "backup"
    assert (routed.retries, routed.fallbacks) == (2, 1)
    # Retrying the only deployment backs off exponentially.
    assert sleeps.waits == pytest.approx([BACKOFF_BASE_S, BACKOFF_BASE_S * 2])


async def test_policy_retry_after_is_a_minimum_wait() -> None:
    router, sleeps = make_router([dep("a")], num_retries=2, retry_after=0.5)
    script = Script({"a": [status_error(500), status_error(500), "ok"]})
    routed = await router.route("g", script)
    assert routed.retries == 2
    assert sleeps.waits == [0.5, 0.5]


async def test_retry_same_deployment_waits_for_short_retry_after() -> None:
    router, sleeps = make_router([dep("a")], num_retries=1)
    script = Script({"a": [status_error(429, retry_after=2), "ok"]})
    routed = await router.route("g", script)
    assert routed.value == "ok"
    assert routed.retries == 1
    assert sleeps.waits == [2.0]


async def test_long_retry_after_goes_to_fallback_without_waiting() -> None:
    router, sleeps = make_router(
        [dep("a", "g"), dep("f", "fb")],
        num_retries=3,
        fallbacks={"g": ["fb"]},
    )
    script = Script({"a": status_error(429, retry_after=MAX_INLINE_WAIT_S + 25), "f": "ok"})
    routed = await router.route("g", script)
    assert script.calls == ["a", "f"]
    assert sleeps.waits == []
    assert routed.fallbacks == 1


async def test_non_retryable_400_is_raised_at_once_without_fallback() -> None:
    router, sleeps = make_router(
        [dep("a", "g"), dep("b", "g"), dep("f", "fb")],
        num_retries=3,
        fallbacks={"g": ["fb"]},
        default_fallbacks=["fb"],
    )
    bad_request = status_error(400)
    script = Script({"a": bad_request, "b": bad_request, "f": "never"})
    with pytest.raises(UpstreamStatusError) as info:
        await router.route("g", script)
    assert info.value is bad_request
    assert len(script.calls) == 1
    assert "f" not in script.calls
    assert sleeps.waits == []


async def test_upstream_401_falls_back() -> None:
    router, _ = make_router([dep("a", "g"), dep("f", "fb")], num_retries=3, fallbacks={"g": ["fb"]})
    script = Script({"a": status_error(401), "f": "fallback answer"})
    routed = await router.route("g", script)
    assert script.calls == ["a", "f"]  # a 401 is not retried within the group
    assert routed.value == "fallback answer"
    assert (routed.retries, routed.fallbacks) == (0, 1)


async def test_all_deployments_cooling_gives_429_with_retry_after() -> None:
    clock = FakeClock()
    router, _ = make_router([dep("a"), dep("b")], clock=clock, cooldown_time=5.0)
    router.cooldowns.record_failure("a", status_error(429), group_size=2)
    clock.advance(1.5)
    router.cooldowns.record_failure("b", status_error(429), group_size=2)
    script = Script({"a": "x", "b": "x"})
    with pytest.raises(RateLimitError) as info:
        await router.route("g", script)
    error = info.value
    assert error.status == 429
    assert error.code == "no_deployments_available"
    assert error.headers["retry-after"] == "4"  # "a" is free first, in 3.5s: rounded up
    assert "cooling down" in error.message
    assert script.calls == []
    clock.advance(3.6)
    assert (await router.route("g", script)).deployment.id == "a"


async def test_cooled_deployment_is_skipped_until_it_recovers() -> None:
    clock = FakeClock()
    router, _ = make_router(
        [dep("a", weight=1), dep("b", weight=0)], clock=clock, allowed_fails=0, cooldown_time=10.0
    )
    script = Script({"a": [status_error(500), "a ok"], "b": "b ok"})
    first = await router.route("g", script)
    assert first.deployment.id == "b"
    assert router.cooldowns.is_cooling("a")
    # While "a" cools, even a weight-0 deployment gets every request.
    assert (await router.route("g", script)).deployment.id == "b"
    clock.advance(10.1)
    assert (await router.route("g", script)).deployment.id == "a"


async def test_all_cooling_falls_back_when_a_fallback_exists() -> None:
    router, _ = make_router([dep("a"), dep("b"), dep("f", "fb")], fallbacks={"g": ["fb"]})
    for ident in ("a", "b"):
        router.cooldowns.record_failure(ident, status_error(429), group_size=2)
    routed = await router.route("g", Script({"f": "ok"}))
    assert routed.deployment.id == "f"
    assert routed.fallbacks == 1


async def test_default_fallbacks_used_when_group_has_none() -> None:
    router, _ = make_router(
        [dep("a", "g"), dep("o", "other"), dep("d", "default")],
        num_retries=0,
        fallbacks={"other": ["g"]},
        default_fallbacks=["default"],
    )
    script = Script({"a": status_error(500), "d": "default answer"})
    routed = await router.route("g", script)
    assert routed.value == "default answer"
    assert script.calls == ["a", "d"]
    assert router.fallback_chain("other") == ["g"]  # a group's own list beats the default
    assert router.fallback_chain("g") == ["default"]
    assert router.fallback_chain("default") == []  # never falls back to itself


async def test_max_fallbacks_is_respected() -> None:
    groups = ["g", "f1", "f2", "f3", "f4"]
    router, _ = make_router(
        [dep(name, name) for name in groups],
        num_retries=0,
        max_fallbacks=2,
        fallbacks={"g": ["f1", "f2", "f3", "f4"]},
    )
    script = Script({name: status_error(500) for name in groups})
    with pytest.raises(UpstreamStatusError):
        await router.route("g", script)
    assert script.calls == ["g", "f1", "f2"]
    assert router.fallback_chain("g") == ["f1", "f2"]


async def test_per_request_fallbacks_override_the_config() -> None:
    router, _ = make_router(
        [dep("a", "g"), dep("c", "configured"), dep("r", "requested")],
        num_retries=0,
        fallbacks={"g": ["configured"]},
        default_fallbacks=["configured"],
    )
    script = Script({"a": status_error(500), "c": "configured", "r": "requested"})
    routed = await router.route("g", script, fallbacks=["requested"])
    assert routed.value == "requested"
    assert script.calls == ["a", "r"]
    # An empty per-request list disables fallbacks.
    with pytest.raises(UpstreamStatusError):
        await router.route("g", Script({"a": status_error(500)}), fallbacks=[])


async def test_use_fallbacks_false_and_per_request_num_retries() -> None:
    router, _ = make_router([dep("a", "g"), dep("f", "fb")], num_retries=2, fallbacks={"g": ["fb"]})
    script = Script({"a": status_error(500), "f": "x"})
    with pytest.raises(UpstreamStatusError):
        await router.route("g", script, num_retries=0, use_fallbacks=False)
    assert script.calls == ["a"]


async def test_every_group_failing_raises_the_last_error() -> None:
    router, _ = make_router([dep("a", "g"), dep("f", "fb")], num_retries=1, fallbacks={"g": ["fb"]})
    last = status_error(502)
    script = Script({"a": status_error(500), "f": last})
    with pytest.raises(UpstreamStatusError) as info:
        await router.route("g", script)
    assert info.value is last
    assert script.calls == ["a", "a", "f", "f"]


async def test_unknown_fallback_groups_are_skipped() -> None:
    router, _ = make_router(
        [dep("a", "g"), dep("f", "fb")], num_retries=0, fallbacks={"g": ["ghost", "fb"]}
    )
    routed = await router.route("g", Script({"a": status_error(500), "f": "ok"}))
    assert routed.deployment.id == "f"
    assert routed.fallbacks == 1


async def test_unknown_model_is_not_found() -> None:
    router, _ = make_router([dep("a", "g")])
    script = Script({"a": "x"})
    with pytest.raises(NotFoundError) as info:
        await router.route("nope", script)
    assert info.value.status == 404
    assert info.value.param == "model"
    assert info.value.code == "model_not_found"
    assert "'nope'" in info.value.message
    assert script.calls == []


async def test_router_routes_through_an_alias() -> None:
    router, _ = make_router([dep("a", "gpt-4o")], aliases={"gpt4": "gpt-4o"})
    routed = await router.route("gpt4", Script({"a": "ok"}))
    assert routed.deployment.id == "a"


async def test_failures_feed_the_cooldown_tracker() -> None:
    router, _ = make_router([dep("a", weight=1), dep("b", weight=0)], num_retries=1)
    await router.route("g", Script({"a": status_error(429), "b": "ok"}))
    assert router.cooldowns.is_cooling("a")
    assert not router.cooldowns.is_cooling("b")


# --- model table --------------------------------------------------------------------------


def test_groups_collect_deployments_by_name() -> None:
    a1, a2, b = dep("a1", "gpt-4o"), dep("a2", "gpt-4o"), dep("b", "embed")
    table = ModelTable([a1, a2, b])
    assert table.lookup("gpt-4o") == [a1, a2]
    assert table.lookup("embed") == [b]
    assert table.lookup("missing") is None
    assert table.public_names() == ["gpt-4o", "embed"]
    assert table.all_deployments == [a1, a2, b]


def test_model_group_alias_string_and_hidden_dict() -> None:
    a = dep("a", "gpt-4o")
    table = ModelTable(
        [a],
        {
            "gpt4": "gpt-4o",
            "internal-gpt": {"model": "gpt-4o", "hidden": True},
            "visible-dict": {"model": "gpt-4o"},
            "broken": "no-such-group",
        },
    )
    assert table.lookup("gpt4") == [a]
    assert table.lookup("internal-gpt") == [a]
    assert table.lookup("visible-dict") == [a]
    assert table.lookup("broken") is None
    names = table.public_names()
    assert "gpt4" in names and "visible-dict" in names
    assert "internal-gpt" not in names
    assert table.hidden_aliases == {"internal-gpt"}


def test_wildcard_without_factory_matches_nothing() -> None:
    table = ModelTable([dep("w", "openai/*")])
    assert table.lookup("openai/gpt-4o") is None
    assert table.public_names() == ["openai/*"]


def test_longest_wildcard_prefix_wins_with_a_plain_factory() -> None:
    built: list[tuple[str, str]] = []

    def factory(template: Deployment, matched: str) -> Deployment:
        built.append((template.id, matched))
        return dep(f"{template.id}:{matched}", template.model_name.replace("*", matched))

    table = ModelTable(
        [
            dep("any", "*"),
            dep("oa", "openai/*"),
            dep("g4", "openai/gpt-4*"),
            dep("g4b", "openai/gpt-4*"),
        ],
        wildcard_factory=factory,
    )
    group = table.lookup("openai/gpt-4o")
    assert group is not None
    assert [d.id for d in group] == ["g4:o", "g4b:o"]  # every template of the longest prefix
    assert [d.id for d in table.lookup("openai/o3") or []] == ["oa:o3"]
    assert [d.id for d in table.lookup("mistral-large") or []] == ["any:mistral-large"]
    # Built once per concrete name, then cached.
    assert table.lookup("openai/gpt-4o") is group
    assert built.count(("g4", "o")) == 1


WILDCARD_CONFIG = """
    model_list:
      - model_name: gpt-4o
        litellm_params:
          model: openai/gpt-4o-2024-08-06
          api_key: sk-exact
      - model_name: "openai/*"
        litellm_params:
          model: "openai/*"
          api_key: sk-openai-wild
      - model_name: "openai/gpt-4*"
        litellm_params:
          model: "azure/gpt-4*"
          api_base: https://r.openai.azure.com
          api_key: az-key
      - model_name: "groq/*"
        litellm_params:
          model: "groq/*"
          api_key: gsk-wild
      - model_name: "*"
        litellm_params:
          model: "*"
          api_key: sk-catch-all
    router_settings:
      model_group_alias:
        best: openai/o3
"""


@pytest.fixture
def wildcard_table(monkeypatch: pytest.MonkeyPatch) -> ModelTable:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_API_BASE",
        "OPENAI_BASE_URL",
        "GROQ_API_KEY",
        "GROQ_API_BASE",
        "AZURE_API_VERSION",
        "LITELLM_MASTER_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    loaded = load_config_text(textwrap.dedent(WILDCARD_CONFIG), source="wild.yaml")
    return build_runtime(loaded).table


def _single(table: ModelTable, name: str) -> Deployment:
    group = table.lookup(name)
    assert group is not None and len(group) == 1, group
    return group[0]


def test_exact_group_beats_wildcards(wildcard_table: ModelTable) -> None:
    exact = _single(wildcard_table, "gpt-4o")
    assert exact.upstream_model == "gpt-4o-2024-08-06"
    assert exact.api_key == "sk-exact"


def test_provider_wildcard_builds_the_concrete_deployment(wildcard_table: ModelTable) -> None:
    deployment = _single(wildcard_table, "openai/o3-mini")
    assert deployment.model_name == "openai/o3-mini"
    assert deployment.provider_name == "openai"
    assert deployment.upstream_model == "o3-mini"
    assert deployment.api_key == "sk-openai-wild"
    assert deployment.api_base == "https://api.openai.com/v1"
    assert deployment.request_headers["Authorization"] == "Bearer sk-openai-wild"
    assert deployment.id.endswith(":o3-mini")
    groq = _single(wildcard_table, "groq/llama-3.1-8b-instant")
    assert (groq.provider_name, groq.upstream_model) == ("groq", "llama-3.1-8b-instant")


def test_longest_prefix_wins_over_provider_wildcard(wildcard_table: ModelTable) -> None:
    deployment = _single(wildcard_table, "openai/gpt-4.1")
    assert deployment.provider_name == "azure"
    assert deployment.upstream_model == "gpt-4.1"
    assert deployment.request_headers["api-key"] == "az-key"


def test_catch_all_wildcard_infers_the_provider(wildcard_table: ModelTable) -> None:
    openai = _single(wildcard_table, "gpt-4o-mini")
    assert (openai.provider_name, openai.upstream_model) == ("openai", "gpt-4o-mini")
    assert openai.api_key == "sk-catch-all"
    vllm = _single(wildcard_table, "mistral/mistral-large-latest")
    assert (vllm.provider_name, vllm.upstream_model) == ("mistral", "mistral-large-latest")


def test_catch_all_with_an_unservable_name_is_not_found(wildcard_table: ModelTable) -> None:
    with pytest.raises(NotFoundError) as info:
        wildcard_table.lookup("mystery-model")
    assert info.value.param == "model"
    assert "mystery-model" in info.value.message


def test_catch_all_template_is_not_callable_as_a_literal_star(
    wildcard_table: ModelTable,
) -> None:
    # The "*" template stands on a placeholder provider; asking for model "*" must not reach it.
    with pytest.raises(NotFoundError):
        wildcard_table.lookup("*")


def test_alias_can_target_a_wildcard_name(wildcard_table: ModelTable) -> None:
    deployment = _single(wildcard_table, "best")
    assert (deployment.provider_name, deployment.upstream_model) == ("openai", "o3")


def test_wildcard_names_are_listed(wildcard_table: ModelTable) -> None:
    names = wildcard_table.public_names()
    assert names[0] == "gpt-4o"
    assert {"openai/*", "openai/gpt-4*", "groq/*", "*", "best"} <= set(names)


def test_upstream_error_classification() -> None:
    assert status_error(500).retryable and status_error(500).fallback_ok
    assert status_error(429).retryable
    assert status_error(408).retryable
    assert not status_error(400).retryable and not status_error(400).fallback_ok
    assert not status_error(401).retryable and status_error(401).fallback_ok
    assert isinstance(UpstreamTimeoutError("t"), UpstreamError)
    assert UpstreamTimeoutError("t").retryable


async def test_bad_credentials_on_one_deployment_try_its_sibling_not_itself_again() -> None:
    router, sleeps = make_router([dep("a"), dep("b")], num_retries=3)
    script = Script({"a": status_error(401), "b": status_error(401)})
    with pytest.raises(UpstreamStatusError) as error:
        await router.route("g", script)
    assert error.value.status == 401
    assert sorted(script.calls) == ["a", "b"]  # each once: a 401 is not transient
    assert sleeps.waits == []
    router, _ = make_router([dep("a"), dep("b")], num_retries=3)
    script = Script({"a": status_error(403), "b": "sibling answer"})
    routed = await router.route("g", script)
    assert routed.value == "sibling answer"


async def test_fallbacks_written_for_a_group_apply_through_its_alias() -> None:
    router, _ = make_router(
        [dep("a", "g"), dep("f", "fb")],
        aliases={"nice-name": "g"},
        num_retries=0,
        fallbacks={"g": ["fb"]},
    )
    script = Script({"a": status_error(500), "f": "from fallback"})
    routed = await router.route("nice-name", script)
    assert routed.value == "from fallback" and routed.fallbacks == 1


async def test_time_spent_waiting_between_retries_is_reported() -> None:
    router, _ = make_router([dep("a")], num_retries=2)
    script = Script({"a": [status_error(429, retry_after=1.5), status_error(503), "ok"]})
    routed = await router.route("g", script)
    assert routed.value == "ok"
    assert routed.waited_seconds == pytest.approx(1.5 + 0.1)
