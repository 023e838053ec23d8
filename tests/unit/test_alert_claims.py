"""Budget alerts claimed in Redis: one delivery across workers, again after the TTL,
and still delivered when Redis is away. Real Redis, a local HTTP receiver."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from bastion.config.redis_settings import RedisSettings
from bastion.limits.limiter import RateLimiter
from bastion.limits.redis_backend import RedisBackend
from bastion.policy.budgets import BudgetEvent
from bastion.services.alert_claims import (
    NO_WINDOW_TTL_S,
    WINDOW_END_MARGIN_S,
    AlertClaims,
    claim_ttl,
    dedup_id,
)
from bastion.services.alerts import Alerter, AlertSettings
from bastion.services.budget_config import alerter
from bastion.storage.redis_link import RedisLink
from tests.unit.test_alerts import Receiver, receiver  # noqa: F401 (fixture)

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def crossed(reset_at: datetime | None, *, soft: bool = False, limit: str = "10") -> BudgetEvent:
    return BudgetEvent(
        "soft_budget_crossed" if soft else "budget_crossed",
        ("team", "team-1"),
        "team search",
        Decimal("10.5"),
        Decimal(limit),
        reset_at,
    )


def webhook_settings(base: str) -> AlertSettings:
    return AlertSettings.from_config({"alerting": ["webhook"]}, {"WEBHOOK_URL": f"{base}/hook"})


@pytest.fixture
async def links(redis_url: str) -> AsyncIterator[list[RedisLink]]:
    """One Redis link per simulated worker process (each has its own client)."""
    made = [RedisLink(RedisSettings("test", url=redis_url)) for _ in range(2)]
    for link in made:
        await link.start()
    yield made
    for link in made:
        await link.stop()


async def feed(alerters: list[Alerter], event: BudgetEvent) -> list[Alerter]:
    """The same event raised by each worker's budget guard, then the senders drained and
    stopped (a stopped Alerter does not start again: each round uses new ones)."""
    for one in alerters:
        one.budget(event)
    for one in alerters:
        await one.stop()
    return alerters


async def test_two_workers_sharing_redis_deliver_each_alert_once(
    receiver: tuple[Receiver, str],  # noqa: F811
    links: list[RedisLink],
    redis_url: str,
    redis_prefix: str,
) -> None:
    rec, base = receiver

    def workers() -> list[Alerter]:
        return [Alerter(webhook_settings(base), AlertClaims(link, redis_prefix)) for link in links]

    reset_at = datetime.now(UTC) + timedelta(hours=1)
    hard = await feed(workers(), crossed(reset_at))
    soft = await feed(workers(), crossed(reset_at, soft=True))  # the other limit: its own alert

    assert sorted(body["event"] for _, body in rec.posts) == [
        "budget_crossed",
        "soft_budget_crossed",
    ]
    for pair in (hard, soft):
        assert sorted((w.sent, w.claimed_elsewhere) for w in pair) == [(0, 1), (1, 0)]
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}alert:*")]
        assert len(keys) == 2
        ttl = await client.ttl(keys[0])  # until the window ends, plus the margin
        assert 3600 <= ttl <= 3600 + WINDOW_END_MARGIN_S
    finally:
        await client.aclose()


async def test_after_budget_alert_ttl_the_alert_can_be_sent_again(
    receiver: tuple[Receiver, str],  # noqa: F811
    links: list[RedisLink],
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, base = receiver
    monkeypatch.setenv("WEBHOOK_URL", f"{base}/hook")
    general = {"alerting": ["webhook"], "alerting_args": {"budget_alert_ttl": 1}}
    limiters = [
        RateLimiter(shared=RedisBackend(link.resp, redis_prefix), link=link) for link in links
    ]

    def workers() -> list[Alerter]:  # wired as the composition root does, from the limiter
        warnings: list[str] = []
        made = [alerter(general, warnings, limits) for limits in limiters]
        assert warnings == []
        assert all(w.claims is not None and w.claims.ttl == 1 for w in made)
        return made

    event = crossed(datetime.now(UTC) + timedelta(days=30))
    await feed(workers(), event)
    assert len(rec.posts) == 1
    await feed(workers(), event)  # within the TTL: still claimed
    assert len(rec.posts) == 1
    await asyncio.sleep(1.2)
    again = await feed(workers(), event)
    assert len(rec.posts) == 2 and sorted(w.sent for w in again) == [0, 1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_unreachable_redis_still_delivers_once_per_worker(
    receiver: tuple[Receiver, str],  # noqa: F811
) -> None:
    rec, base = receiver
    port = closed_port()
    links = [
        RedisLink(RedisSettings("test", port=port), first_retry=10, max_retry=10) for _ in range(2)
    ]

    def workers() -> list[Alerter]:
        return [Alerter(webhook_settings(base), AlertClaims(link, "p:")) for link in links]

    try:
        sent = await feed(workers(), crossed(NOW + timedelta(days=9)))
        assert len(rec.posts) == 2 and [w.sent for w in sent] == [1, 1]
        assert not any(link.up for link in links)  # told, as the other Redis users do
        assert all("Error" in (link.last_error or "") for link in links)
        await feed(workers(), crossed(NOW + timedelta(days=9), soft=True))  # link down: no wait
        assert len(rec.posts) == 4
    finally:
        for link in links:
            await link.stop()


def test_the_dedup_id_names_entity_limit_and_window() -> None:
    reset_at = NOW + timedelta(days=1)
    base = dedup_id(crossed(reset_at), NOW)
    assert base.startswith("hard:team:")
    assert dedup_id(crossed(reset_at, limit="10.00"), NOW) == base
    assert dedup_id(crossed(reset_at.astimezone(timezone(timedelta(hours=2)))), NOW) == base
    others = {
        dedup_id(crossed(reset_at, soft=True), NOW),
        dedup_id(crossed(reset_at, limit="20"), NOW),
        dedup_id(crossed(reset_at + timedelta(days=1)), NOW),
        dedup_id(crossed(reset_at), reset_at),  # the window has ended: the next one's
        dedup_id(crossed(None), NOW),
    }
    assert len(others) == 5 and base not in others
    assert dedup_id(crossed(None), NOW).startswith("hard:team:")
    assert dedup_id(crossed(None, soft=True), NOW).startswith("soft:team:")


def test_claim_ttl_follows_the_setting_or_the_window() -> None:
    in_an_hour = crossed(NOW + timedelta(hours=1))
    assert claim_ttl(in_an_hour, NOW, None) == 3600 + WINDOW_END_MARGIN_S
    assert claim_ttl(in_an_hour, NOW, 0.2) == 1
    assert claim_ttl(in_an_hour, NOW, 600) == 600
    assert claim_ttl(crossed(None), NOW, None) == NO_WINDOW_TTL_S
    assert claim_ttl(in_an_hour, NOW + timedelta(hours=2), None) == NO_WINDOW_TTL_S


def test_budget_alert_ttl_is_read_and_checked() -> None:
    read = AlertSettings.from_config({"alerting_args": {"budget_alert_ttl": "3600"}}, {})
    assert read.budget_alert_ttl == 3600.0 and read.warnings == []
    assert AlertSettings.from_config({}, {}).budget_alert_ttl is None
    for bad in (0, -5, "soon", float("inf")):
        wrong = AlertSettings.from_config({"alerting_args": {"budget_alert_ttl": bad}}, {})
        assert wrong.budget_alert_ttl is None
        assert "budget_alert_ttl" in wrong.warnings[0]


def test_without_a_redis_limiter_there_are_no_claims() -> None:
    assert AlertClaims.through(None, 60) is None
    assert AlertClaims.through(RateLimiter(), 60) is None


def test_the_composition_root_claims_alerts_on_the_limiters_redis() -> None:
    from bastion.app import build_runtime
    from bastion.config.loader import load_config_mapping

    loaded = load_config_mapping(
        {
            "model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
            "router_settings": {"redis_url": "redis://127.0.0.1:6379/0"},
            "general_settings": {
                "alerting": ["webhook"],
                "alerting_args": {"budget_alert_ttl": 600},
                "rate_limit_redis_prefix": "gw:",
            },
        }
    )
    runtime = build_runtime(loaded)
    claims = runtime.alerts.claims if runtime.alerts is not None else None
    assert claims is not None and runtime.limits is not None
    assert claims.link is runtime.limits.link
    assert (claims.prefix, claims.ttl) == ("gw:", 600.0)
    plain = build_runtime(load_config_mapping({"general_settings": {"alerting": ["webhook"]}}))
    assert plain.alerts is not None and plain.alerts.claims is None
