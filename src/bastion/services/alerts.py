"""Budget alerts to Slack and generic webhooks, sent in the background.

LiteLLM's settings, read from ``general_settings``::

    alerting: ["slack", "webhook"]        # where alerts go (others are ignored, with a warning)
    alert_types: ["budget_alerts", ...]   # which alerts; unset means all of them
    alert_to_webhook_url:                 # Slack URL(s) per alert type, instead of
      budget_alerts: https://hooks.slack.com/...   # SLACK_WEBHOOK_URL
    alerting_args: {budget_alert_ttl: 86400}

``slack`` posts ``{"text": …}`` to ``SLACK_WEBHOOK_URL`` (comma-separated for
several); ``webhook`` posts LiteLLM's budget webhook event (``spend``,
``max_budget``, ``token``, ``user_id``, ``team_id``, ``event``, ``event_group``,
``event_message``…) to ``WEBHOOK_URL``.

The request path only calls :meth:`Alerter.budget` (policy/budgets.py has already
deduplicated the event: one per entity, limit and budget window in this process),
which logs the alert and puts it on a bounded queue; a background task does the
HTTP. A full queue or a failing endpoint drops the alert with a log line; nothing
waits on it. With Redis, the background task first claims the alert so that one
worker or replica sends it (services/alert_claims.py, which reads
``alerting_args.budget_alert_ttl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bastion.policy.budgets import BudgetEvent
from bastion.services.alert_claims import AlertClaims

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger("bastion.alerts")

BUDGET_ALERTS = "budget_alerts"
CHANNELS = frozenset({"slack", "webhook"})
QUEUE_SIZE = 1000
SEND_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

# LiteLLM's event_group per budget entity (policy/budgets.py entity types).
_EVENT_GROUPS = {
    "key": "key",
    "key_model": "key",
    "team": "team",
    "member": "team_member",
    "user": "user",
    "org": "organization",
    "end_user": "end_user",
    "proxy": "proxy",
}


@dataclass(frozen=True)
class AlertSettings:
    slack_urls: tuple[str, ...] = ()
    webhook_urls: tuple[str, ...] = ()
    alert_types: frozenset[str] | None = None  # None: every type
    budget_alert_ttl: float | None = None  # seconds; None: the budget window decides
    warnings: list[str] = field(default_factory=list)

    @property
    def budget_alerts(self) -> bool:
        return self.alert_types is None or BUDGET_ALERTS in self.alert_types

    @classmethod
    def from_config(
        cls, general: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> AlertSettings:
        warnings: list[str] = []
        raw = general.get("alerting") or []
        channels = [raw] if isinstance(raw, str) else [str(c) for c in raw]
        for channel in channels:
            if channel not in CHANNELS:
                warnings.append(
                    f"general_settings.alerting: {channel!r} is not supported by this "
                    "version (slack and webhook are); ignored"
                )
        types = general.get("alert_types")
        alert_types = frozenset(str(t) for t in types) if isinstance(types, list) else None
        per_type = general.get("alert_to_webhook_url") or {}
        slack: tuple[str, ...] = ()
        if "slack" in channels:
            routed = per_type.get(BUDGET_ALERTS) if isinstance(per_type, dict) else None
            slack = _urls(routed) or _urls(environ.get("SLACK_WEBHOOK_URL"))
            if not slack:
                warnings.append(
                    "general_settings.alerting has 'slack' but SLACK_WEBHOOK_URL is not set; "
                    "budget alerts are only logged"
                )
        webhook: tuple[str, ...] = ()
        if "webhook" in channels:
            webhook = _urls(environ.get("WEBHOOK_URL"))
            if not webhook:
                warnings.append(
                    "general_settings.alerting has 'webhook' but WEBHOOK_URL is not set; "
                    "budget alerts are only logged"
                )
        ttl = _budget_alert_ttl(general.get("alerting_args"), warnings)
        return cls(slack, webhook, alert_types, ttl, warnings)


def _budget_alert_ttl(args: Any, warnings: list[str]) -> float | None:
    value = args.get("budget_alert_ttl") if isinstance(args, dict) else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not (math.isfinite(seconds) and seconds > 0):
        warnings.append(
            f"general_settings.alerting_args.budget_alert_ttl: {value!r} is not a positive "
            "number of seconds; ignored"
        )
        return None
    return seconds


def _urls(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(u.strip() for u in value.split(",") if u.strip())
    if isinstance(value, list):
        return tuple(str(u).strip() for u in value if str(u).strip())
    return ()


def webhook_payload(event: BudgetEvent) -> dict[str, Any]:
    """LiteLLM's budget webhook event for ``event``."""
    kind, ident = event.entity
    head, _, tail = ident.partition(":")  # "token:model" / "team:user"
    by_kind = {"key": ident, "key_model": head}
    return {
        "spend": float(event.spend),
        "max_budget": float(event.limit),
        "token": by_kind.get(kind),
        "model": tail if kind == "key_model" else None,
        "customer_id": ident if kind == "end_user" else None,
        "user_id": {"user": ident, "member": tail}.get(kind),
        "team_id": {"team": ident, "member": head}.get(kind),
        "organization_id": ident if kind == "org" else None,
        "user_email": None,
        "key_alias": None,
        "projected_exceeded_date": None,
        "projected_spend": None,
        "event": event.event,
        "event_group": _EVENT_GROUPS.get(kind, kind),
        "event_message": message(event),
        "budget_reset_at": event.reset_at.isoformat() if event.reset_at else None,
    }


def message(event: BudgetEvent) -> str:
    what = "budget crossed" if event.event == "budget_crossed" else "soft budget crossed"
    limit = "max_budget" if event.event == "budget_crossed" else "soft_budget"
    text = f"{what}: {event.label} has spent ${event.spend:.6f} of its {limit} ${event.limit:.6f}"
    if event.reset_at is not None:
        text += f"; it resets at {event.reset_at.isoformat()}"
    return text


class Alerter:
    """Logs budget events and delivers them to the configured channels in the background."""

    def __init__(self, settings: AlertSettings, claims: AlertClaims | None = None) -> None:
        self.settings = settings
        # With Redis: one process of all those sharing it sends each alert.
        self.claims = claims
        self._queue: asyncio.Queue[tuple[BudgetEvent, datetime]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0
        self.claimed_elsewhere = 0

    @property
    def delivers(self) -> bool:
        s = self.settings
        return s.budget_alerts and bool(s.slack_urls or s.webhook_urls)

    def budget(self, event: BudgetEvent) -> None:
        """Called on the request path: log, enqueue, return."""
        if not self.settings.budget_alerts:
            return
        logger.warning("budget alert: %s", message(event))
        if not self.delivers:
            return
        if self._queue is None:
            self._start_in_loop()
        assert self._queue is not None
        try:
            self._queue.put_nowait((event, datetime.now(UTC)))
        except asyncio.QueueFull:
            logger.error("budget alert dropped (the alert queue is full): %s", message(event))

    async def start(self) -> None:
        if self.delivers and self._queue is None:
            self._start_in_loop()

    def _start_in_loop(self) -> None:
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Deliver what is queued (for a few seconds at most), then stop."""
        if self._task is None or self._queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), STOP_TIMEOUT_S)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event, noticed_at = await self._queue.get()
            try:
                if self.claims is None or await self.claims.claim(event, noticed_at):
                    await self._deliver(event)
                else:
                    self.claimed_elsewhere += 1
                    logger.info(
                        "budget alert left to the process that claimed it: %s", message(event)
                    )
            finally:
                self._queue.task_done()

    async def _deliver(self, event: BudgetEvent) -> None:
        if self._session is None:
            import aiohttp  # only once an alert is sent: several megabytes resident

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)
            )
        slack = orjson.dumps({"text": message(event)})
        webhook = orjson.dumps(webhook_payload(event))
        targets = [(u, slack, "slack") for u in self.settings.slack_urls] + [
            (u, webhook, "webhook") for u in self.settings.webhook_urls
        ]
        for url, body, channel in targets:
            try:
                async with self._session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    if response.status >= 400:
                        raise RuntimeError(f"HTTP {response.status}")
                self.sent += 1
            except Exception as exc:  # an alert endpoint down must not stop the others
                self.failed += 1
                logger.error("could not send a %s budget alert: %s", channel, exc)
