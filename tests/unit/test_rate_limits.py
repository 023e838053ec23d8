"""Rate limits as pure logic: which counters apply, the in-process backend and the
limiter's tickets, on a fake clock. No Redis, no HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from bastion.core.deployment import Deployment, Operation
from bastion.core.errors import RateLimitError, UpstreamStatusError
from bastion.core.usage import Usage
from bastion.limits.counters import WINDOW_S, Counter, Kind, seconds_to_next_window
from bastion.limits.estimate import DEFAULT_OUTPUT_RESERVE, estimate_tokens
from bastion.limits.limiter import RateLimiter
from bastion.limits.memory import MemoryBackend
from bastion.limits.plan import deployment_counters, principal_counters
from bastion.policy.auth import MASTER, Principal, PrincipalKind
from bastion.storage.snapshot import (
    AuthSnapshot,
    BudgetAuth,
    BudgetFields,
    EndUserAuth,
    KeyAuth,
    MembershipAuth,
    TeamAuth,
    UserAuth,
)

T0 = 1_800_000_000.0  # a window start (divisible by 60)


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limits(rpm: int | None = None, tpm: int | None = None, par: int | None = None) -> BudgetFields:
    return BudgetFields(
        max_budget=None,
        soft_budget=None,
        budget_duration=None,
        budget_reset_at=None,
        spend=Decimal(0),
        tpm_limit=tpm,
        rpm_limit=rpm,
        max_parallel_requests=par,
    )


def key(
    b: BudgetFields | None = None,
    model_rpm: dict[str, Any] | None = None,
    model_tpm: dict[str, Any] | None = None,
) -> KeyAuth:
    return KeyAuth(
        token="a" * 64,
        key_name="sk-...abcd",
        key_alias="ci-key",
        team_id="team-1",
        user_id="alice",
        organization_id=None,
        models=[],
        aliases={},
        budget=b or limits(),
        model_rpm_limit=model_rpm or {},
        model_tpm_limit=model_tpm or {},
        model_max_budget={},
        metadata={},
        tags=[],
        blocked=False,
        expires=None,
    )


def principal(
    k: KeyAuth | None = None,
    team: BudgetFields | None = None,
    user: BudgetFields | None = None,
    member: tuple[int | None, int | None] | None = None,
) -> Principal:
    return Principal(
        PrincipalKind.KEY,
        key=k or key(),
        team=TeamAuth("team-1", "search", None, [], team or limits(), None, {}, {}, False),
        user=UserAuth("alice", None, "internal_user", [], user or limits(), False),
        membership=(
            MembershipAuth("team-1", "alice", "user", None, None, Decimal(0), member[1], member[0])
            if member
            else None
        ),
    )


def deployment(rpm: int | None = None, tpm: int | None = None, id: str = "d1") -> Deployment:
    return Deployment(
        id=id, model_name="gpt", provider_name="openai", upstream_model="gpt", provider=None,  # type: ignore[arg-type]
        rpm=rpm, tpm=tpm,
    )  # fmt: skip


def snapshot_with_end_user(budget: BudgetFields) -> AuthSnapshot:
    return AuthSnapshot(
        loaded_at=None,  # type: ignore[arg-type]
        keys={},
        previous_tokens={},
        teams={},
        users={},
        organizations={},
        memberships={},
        end_users={"cust-7": EndUserAuth("cust-7", "b1", False, Decimal(0), None, None)},
        budgets={"b1": BudgetAuth("b1", budget)},
    )


# --- which counters apply -------------------------------------------------------------


def test_a_key_without_limits_has_no_counters() -> None:
    assert principal_counters(principal()) == []
    assert principal_counters(MASTER) == []


def test_every_level_contributes_its_limits() -> None:
    p = principal(
        key(limits(rpm=60, tpm=1000, par=3), model_rpm={"gpt": 5}, model_tpm={"gpt": "50"}),
        team=limits(rpm=600),
        user=limits(par=10),
        member=(30, 300),
    )
    counters = principal_counters(
        p,
        models=("gpt",),
        end_user="cust-7",
        snapshot=snapshot_with_end_user(limits(rpm=2)),
        global_max_parallel=100,
    )
    described = {(c.kind.value, c.scope.split(":")[0], c.setting, c.limit) for c in counters}
    assert described == {
        ("parallel", "global", "global_max_parallel_requests", 100),
        ("rpm", "key", "rpm_limit", 60),
        ("tpm", "key", "tpm_limit", 1000),
        ("parallel", "key", "max_parallel_requests", 3),
        ("rpm", "key_model", "model_rpm_limit", 5),
        ("tpm", "key_model", "model_tpm_limit", 50),
        ("parallel", "user", "max_parallel_requests", 10),
        ("rpm", "team", "rpm_limit", 600),
        ("rpm", "member", "rpm_limit", 30),
        ("tpm", "member", "tpm_limit", 300),
        ("rpm", "end_user", "rpm_limit", 2),
    }


def test_model_limits_match_the_requested_name_or_its_alias_target() -> None:
    p = principal(key(model_rpm={"gpt-4o": 5, "junk": "x"}))
    assert principal_counters(p, models=("fast",)) == []
    [counter] = principal_counters(p, models=("fast", "gpt-4o"))
    assert counter.label == "key ci-key on model gpt-4o" and counter.limit == 5
    assert principal_counters(p, models=("junk",)) == []  # not a number: ignored


def test_deployment_counters() -> None:
    assert deployment_counters(deployment()) == []
    kinds = [(c.kind, c.limit, c.setting) for c in deployment_counters(deployment(rpm=10, tpm=99))]
    assert kinds == [(Kind.RPM, 10, "rpm"), (Kind.TPM, 99, "tpm")]


def test_token_estimate() -> None:
    assert estimate_tokens({"max_tokens": 100}, 400, Operation.CHAT) == 200
    assert estimate_tokens({"max_completion_tokens": 7}, 40, Operation.CHAT) == 17
    assert estimate_tokens({}, 40, Operation.CHAT) == 10 + DEFAULT_OUTPUT_RESERVE
    assert estimate_tokens({"max_tokens": 100}, 400, Operation.EMBEDDING) == 100


def test_windows_are_fixed_minutes() -> None:
    assert seconds_to_next_window(T0) == WINDOW_S
    assert seconds_to_next_window(T0 + 59.2) == 1
    assert seconds_to_next_window(T0 + 30) == 30


# --- the in-process backend ------------------------------------------------------------

RPM2 = Counter(Kind.RPM, "key:k", 2, "key k", "rpm_limit")
TPM100 = Counter(Kind.TPM, "key:k", 100, "key k", "tpm_limit")
PAR1 = Counter(Kind.PARALLEL, "key:k", 1, "key k", "max_parallel_requests")


def test_rpm_counts_per_fixed_window() -> None:
    backend = MemoryBackend()
    assert backend.acquire_now([RPM2], 0, T0).allowed
    assert backend.acquire_now([RPM2], 0, T0 + 10).values == [2]
    refused = backend.acquire_now([RPM2], 0, T0 + 59)
    assert not refused.allowed and refused.refused == 0 and refused.values == [2]
    assert backend.acquire_now([RPM2], 0, T0 + 60).values == [1]  # the next minute


def test_a_refusal_counts_nothing() -> None:
    backend = MemoryBackend()
    other = Counter(Kind.RPM, "team:t", 10, "team t", "rpm_limit")
    backend.acquire_now([RPM2], 0, T0)
    backend.acquire_now([RPM2], 0, T0)
    assert not backend.acquire_now([other, RPM2], 0, T0).allowed
    assert backend.acquire_now([other], 0, T0).values == [1]  # the team was not counted


def test_tpm_reservation_is_settled_to_the_real_usage() -> None:
    backend = MemoryBackend()
    first = backend.acquire_now([TPM100], 80, T0)
    assert first.values == [80]
    backend.settle_now([TPM100], first.window, 10 - 80)  # used 10 of the 80 reserved
    assert backend.acquire_now([TPM100], 80, T0).values == [90]
    # Admitted while below the limit (one request may overshoot it), then no more
    # until the next window.
    assert backend.acquire_now([TPM100], 20, T0).values == [110]
    assert not backend.acquire_now([TPM100], 1, T0).allowed
    assert backend.acquire_now([TPM100], 1, T0 + 60).values == [1]


def test_a_settle_for_a_past_window_changes_nothing() -> None:
    backend = MemoryBackend()
    old = backend.acquire_now([TPM100], 50, T0)
    backend.acquire_now([TPM100], 5, T0 + 60)
    backend.settle_now([TPM100], old.window, -50)
    assert backend.acquire_now([TPM100], 0, T0 + 60).values == [5]


def test_parallel_slots_are_freed_by_settle() -> None:
    backend = MemoryBackend()
    held = backend.acquire_now([PAR1], 0, T0)
    assert not backend.acquire_now([PAR1], 0, T0 + 120).allowed  # not a window: in flight
    backend.settle_now([PAR1], held.window, 0)
    assert backend.acquire_now([PAR1], 0, T0).allowed


# --- the limiter and its tickets ---------------------------------------------------------


async def test_a_request_without_limits_gets_no_ticket() -> None:
    limiter = RateLimiter(clock=FakeClock())
    assert limiter.ticket("r1", [], lambda: 0) is None
    with_deployments = RateLimiter(clock=FakeClock(), deployment_limits=True)
    ticket = with_deployments.ticket("r1", [], lambda: 0)
    assert ticket is not None
    await ticket.admit(deployment())  # nothing to count: no error, nothing held
    ticket.finish()


async def test_a_refusal_names_the_limit_and_carries_the_headers() -> None:
    clock = FakeClock(T0 + 45)
    limiter = RateLimiter(clock=clock)
    counters = principal_counters(principal(key(limits(rpm=1))))
    ticket = limiter.ticket("r1", counters, lambda: 0)
    assert ticket is not None
    await ticket.admit(deployment())
    assert dict(ticket.headers()) == {
        b"x-ratelimit-limit-requests": b"1",
        b"x-ratelimit-remaining-requests": b"0",
    }
    ticket.finish()
    second = limiter.ticket("r2", counters, lambda: 0)
    assert second is not None
    with pytest.raises(RateLimitError) as caught:
        await second.admit(deployment())
    error = caught.value
    assert error.status == 429
    assert "key ci-key" in error.message and "rpm_limit 1 reached" in error.message
    assert error.headers == {
        "retry-after": "15",
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
    }


async def test_tokens_are_reserved_then_settled_with_usage() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    counters = principal_counters(principal(key(limits(tpm=1000))))
    estimates: list[int] = []

    def estimate() -> int:
        estimates.append(300)
        return 300

    ticket = limiter.ticket("r1", counters, estimate)
    assert ticket is not None
    await ticket.admit(deployment())
    assert dict(ticket.headers())[b"x-ratelimit-remaining-tokens"] == b"700"
    ticket.served_by(deployment())
    ticket.record_usage(Usage(input_tokens=20, output_tokens=5))
    ticket.finish()
    ticket.finish()  # idempotent
    assert estimates == [300]
    next_ticket = limiter.ticket("r2", counters, lambda: 0)
    assert next_ticket is not None
    await next_ticket.admit(deployment())
    assert dict(next_ticket.headers())[b"x-ratelimit-remaining-tokens"] == b"975"


async def test_a_failed_call_gives_its_tokens_back_and_frees_its_slot() -> None:
    limiter = RateLimiter(clock=FakeClock())
    counters = principal_counters(principal(key(limits(tpm=1000, par=1))))
    ticket = limiter.ticket("r1", counters, lambda: 400)
    assert ticket is not None
    await ticket.admit(deployment())
    blocked = limiter.ticket("r2", counters, lambda: 1)
    assert blocked is not None
    with pytest.raises(RateLimitError, match="max_parallel_requests 1") as caught:
        await blocked.admit(deployment())
    assert caught.value.headers == {"retry-after": "1"}
    ticket.finish()  # never served: no tokens used
    again = limiter.ticket("r3", counters, lambda: 0)
    assert again is not None
    await again.admit(deployment())
    assert dict(again.headers())[b"x-ratelimit-remaining-tokens"] == b"1000"


async def test_a_deployment_at_its_limit_is_refused_as_an_upstream_429() -> None:
    limiter = RateLimiter(clock=FakeClock(), deployment_limits=True)
    counters = principal_counters(principal(key(limits(rpm=100))))
    busy = deployment(rpm=1, id="busy")
    first = limiter.ticket("r1", counters, lambda: 0)
    assert first is not None
    await first.admit(busy)
    second = limiter.ticket("r2", counters, lambda: 0)
    assert second is not None
    with pytest.raises(UpstreamStatusError) as caught:
        await second.admit(busy)
    assert caught.value.status == 429 and caught.value.retryable
    assert "deployment gpt (busy): rpm 1 reached" in caught.value.message
    # Nothing was counted for the key: the router's next pick counts it once.
    await second.admit(deployment(id="other"))
    assert dict(second.headers())[b"x-ratelimit-remaining-requests"] == b"98"


async def test_only_the_deployment_that_answered_keeps_the_tokens() -> None:
    limiter = RateLimiter(clock=FakeClock(), deployment_limits=True)
    failed, answered = deployment(tpm=1000, id="a"), deployment(tpm=1000, id="b")
    ticket = limiter.ticket("r1", [], lambda: 100)
    assert ticket is not None
    await ticket.admit(failed)
    await ticket.admit(answered)
    ticket.served_by(answered)
    ticket.record_usage(Usage(input_tokens=30))
    ticket.finish()
    backend = limiter.local
    probe_a, probe_b = deployment_counters(failed), deployment_counters(answered)
    assert backend.acquire_now(probe_a, 0, T0).values == [0]
    assert backend.acquire_now(probe_b, 0, T0).values == [30]


def test_ticket_survives_replace_of_frozen_counter() -> None:
    # Counters are values: equal counters from two snapshots count together.
    assert replace(RPM2) == RPM2 and hash(replace(RPM2)) == hash(RPM2)


async def test_drain_waits_for_nothing_on_memory() -> None:
    limiter = RateLimiter(clock=FakeClock())
    await asyncio.wait_for(limiter.drain(), 1)
