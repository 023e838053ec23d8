"""One delivery per budget alert across workers and replicas, claimed in Redis.

Each worker's budget guard (policy/budgets.py) raises an alert once per entity,
limit and budget window, so N workers or replicas would each send it. With the
rate limiter's Redis configured, the alert sender first claims the alert::

    SET <prefix>alert:<dedup id> 1 NX EX <ttl>

and only the process whose ``SET`` succeeded sends it. ``prefix`` is
``general_settings.rate_limit_redis_prefix``. The dedup id names what the guard
deduplicates on: which limit (``soft``/``hard``), the entity kind, and a digest of
the entity id, the limit's amount and the budget window (its reset time, marked
``after`` once that has passed and the snapshot has not caught up yet).

The claim holds for ``general_settings.alerting_args.budget_alert_ttl`` seconds
when that is set; otherwise until the budget window ends (plus
:data:`WINDOW_END_MARGIN_S` for clocks that disagree), or
:data:`NO_WINDOW_TTL_S` (LiteLLM's default ``budget_alert_ttl``) for a budget
without a reset time or one past it.

Claims are made by the alert sender's background task, never on the request
path. When Redis is down or a claim fails, the alert is sent anyway
(at least once rather than never) and the link is told (storage/redis_link.py).
"""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bastion.policy.budgets import BudgetEvent

if TYPE_CHECKING:  # redis-py is loaded only when Redis is configured
    from bastion.limits.limiter import RateLimiter
    from bastion.storage.redis_link import RedisLink

logger = logging.getLogger("bastion.alerts")

NO_WINDOW_TTL_S = 86_400
WINDOW_END_MARGIN_S = 300


def dedup_id(event: BudgetEvent, noticed_at: datetime) -> str:
    """The same for every process that sees this entity cross this limit in this window."""
    kind, ident = event.entity
    which = "hard" if event.event == "budget_crossed" else "soft"
    window = "none"
    reset_at = _utc(event.reset_at)
    if reset_at is not None:
        window = reset_at.isoformat()
        if reset_at <= noticed_at:
            window = "after:" + window
    what = "\x1f".join((ident, _amount(event.limit), window))
    return f"{which}:{kind}:{hashlib.sha256(what.encode()).hexdigest()[:32]}"


def claim_ttl(event: BudgetEvent, noticed_at: datetime, configured: float | None) -> int:
    """Seconds the claim holds (see the module's docstring)."""
    if configured is not None:
        return max(1, math.ceil(configured))
    reset_at = _utc(event.reset_at)
    if reset_at is None or reset_at <= noticed_at:
        return NO_WINDOW_TTL_S
    return math.ceil((reset_at - noticed_at).total_seconds()) + WINDOW_END_MARGIN_S


class AlertClaims:
    """Claims alerts through the rate limiter's Redis link."""

    def __init__(self, link: RedisLink, prefix: str, ttl: float | None = None) -> None:
        self.link = link
        self.prefix = prefix
        self.ttl = ttl

    @classmethod
    def through(cls, limits: RateLimiter | None, ttl: float | None) -> AlertClaims | None:
        """Built only when the rate limiter talks to Redis (as services/shared_state.py is)."""
        if limits is None or limits.link is None or limits.shared is None:
            return None
        return cls(limits.link, limits.shared.prefix, ttl)

    async def claim(self, event: BudgetEvent, noticed_at: datetime) -> bool:
        """Whether this process sends the alert: it claimed it, or Redis could not say."""
        if not self.link.up:
            return True
        from redis.exceptions import RedisError

        from bastion.storage.redis_link import UNREACHABLE

        key = f"{self.prefix}alert:{dedup_id(event, noticed_at)}"
        ttl = claim_ttl(event, noticed_at, self.ttl)
        try:
            return bool(await self.link.client.set(key, b"1", nx=True, ex=ttl))
        except (*UNREACHABLE, RedisError) as exc:
            self.link.failed(exc)
        except Exception:
            logger.exception("could not claim a budget alert in Redis; sending it anyway")
        return True


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f")
