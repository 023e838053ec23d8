"""Budget alerts delivered to a local HTTP server (Slack and generic webhook shapes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from bastion.core.errors import BudgetExceededError
from bastion.policy.budgets import BudgetEvent, BudgetGuard, Charge
from bastion.policy.ledger import SpendLedger
from bastion.services.alerts import Alerter, AlertSettings, webhook_payload

RESET = datetime(2026, 12, 1, tzinfo=UTC)


class Receiver:
    """An HTTP server that records what is posted to /slack, /hook and /broken."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle(self, request: web.Request) -> web.Response:
        await self.gate.wait()
        self.posts.append((request.path, await request.json()))
        self.arrived.set()
        return web.Response(status=500 if request.path == "/broken" else 200, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def team_charge(spend: str) -> Charge:
    return Charge(("team", "team-1"), "team search", Decimal(10), Decimal(5), Decimal(spend), RESET)


async def test_soft_and_hard_budget_alerts_reach_slack_and_the_webhook_once(
    receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    rec, base = receiver
    settings = AlertSettings.from_config(
        {"alerting": ["slack", "webhook"], "alert_types": ["budget_alerts"]},
        {"SLACK_WEBHOOK_URL": f"{base}/slack", "WEBHOOK_URL": f"{base}/hook,{base}/broken"},
    )
    alerter = Alerter(settings)
    await alerter.start()
    guard = BudgetGuard(
        SpendLedger(), clock=lambda: datetime(2026, 11, 22, tzinfo=UTC), alerts=alerter.budget
    )
    rec.gate.clear()  # the receiver holds every post: the checks below must not wait for it
    caplog.set_level(logging.WARNING, "bastion.alerts")
    for _ in range(20):
        guard.check([team_charge("6")])  # soft budget: never blocks
    for _ in range(20):
        with pytest.raises(BudgetExceededError):
            guard.check([team_charge("10.5")])
    assert rec.posts == []  # nothing was sent on the request path
    rec.gate.set()
    await alerter.stop()  # drains the queue

    by_path: dict[str, list[Any]] = {}
    for path, body in rec.posts:
        by_path.setdefault(path, []).append(body)
    assert sorted(by_path) == ["/broken", "/hook", "/slack"]
    assert [b["text"].split(":")[0] for b in by_path["/slack"]] == [
        "soft budget crossed",
        "budget crossed",
    ]
    soft, hard = by_path["/hook"]
    assert soft["event"] == "soft_budget_crossed" and hard["event"] == "budget_crossed"
    assert hard["event_group"] == "team" and hard["team_id"] == "team-1"
    assert hard["spend"] == 10.5 and hard["max_budget"] == 10.0
    assert "team search has spent $10.500000" in hard["event_message"]
    assert alerter.sent == 4 and alerter.failed == 2  # /broken answered 500, the others went on
    logged = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("budget alert:") for line in logged) == 2
    assert sum("could not send a webhook budget alert" in line for line in logged) == 2


async def test_alert_types_without_budget_alerts_send_nothing(
    receiver: tuple[Receiver, str],
) -> None:
    rec, base = receiver
    settings = AlertSettings.from_config(
        {"alerting": ["webhook"], "alert_types": ["llm_exceptions"]}, {"WEBHOOK_URL": base + "/h"}
    )
    alerter = Alerter(settings)
    alerter.budget(
        BudgetEvent("budget_crossed", ("key", "abc"), "key k", Decimal(2), Decimal(1), None)
    )
    await alerter.stop()
    assert rec.posts == [] and not alerter.delivers


def test_alerting_settings_report_what_they_cannot_do() -> None:
    settings = AlertSettings.from_config({"alerting": ["slack", "email", "webhook"]}, {})
    joined = "\n".join(settings.warnings)
    assert "'email' is not supported" in joined
    assert "SLACK_WEBHOOK_URL is not set" in joined and "WEBHOOK_URL is not set" in joined
    routed = AlertSettings.from_config(
        {
            "alerting": ["slack"],
            "alert_to_webhook_url": {"budget_alerts": ["http://a", "http://b"]},
        },
        {"SLACK_WEBHOOK_URL": "http://env"},
    )
    assert routed.slack_urls == ("http://a", "http://b") and routed.warnings == []


def test_webhook_payload_per_entity() -> None:
    model = webhook_payload(
        BudgetEvent(
            "budget_crossed",
            ("key_model", "tok:gpt-4o"),
            "key k on model gpt-4o",
            Decimal(1),
            Decimal(1),
            RESET,
        )
    )
    assert model["token"] == "tok" and model["model"] == "gpt-4o"
    assert model["event_group"] == "key" and model["budget_reset_at"] == RESET.isoformat()
    member = webhook_payload(
        BudgetEvent("soft_budget_crossed", ("member", "t1:ann"), "m", Decimal(1), Decimal(1), None)
    )
    assert (member["team_id"], member["user_id"], member["event_group"]) == (
        "t1",
        "ann",
        "team_member",
    )
    proxy = webhook_payload(
        BudgetEvent("budget_crossed", ("proxy", "global"), "p", Decimal(1), Decimal(1), None)
    )
    assert proxy["event_group"] == "proxy" and proxy["token"] is None
