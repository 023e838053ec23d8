"""Cooling down a failing deployment, as LiteLLM's ``allowed_fails``/``cooldown_time`` do.

A deployment that fails more than ``allowed_fails`` times within one minute is
skipped for ``cooldown_time`` seconds. Rate limits (429), bad credentials
(401/403) and a missing deployment (404) cool it down at once, for at least the
provider's ``retry-after``. A request the provider rejected (400, 413, 422) says
nothing about the deployment's health and is not counted. A group with a single
deployment is never cooled down (LiteLLM's rule): there is nothing to route to
instead, and fast failures would hide a recovery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.core.errors import UpstreamError, UpstreamTimeoutError

WINDOW_S = 60.0
_IMMEDIATE_STATUSES = frozenset({401, 403, 404, 429})

# allowed_fails_policy keys (LiteLLM's names) and the errors they cover.
_POLICY_KEYS: tuple[tuple[str, Callable[[UpstreamError], bool]], ...] = (
    ("RateLimitErrorAllowedFails", lambda e: e.status == 429),
    ("AuthenticationErrorAllowedFails", lambda e: e.status in (401, 403)),
    ("TimeoutErrorAllowedFails", lambda e: isinstance(e, UpstreamTimeoutError)),
    ("BadRequestErrorAllowedFails", lambda e: e.status == 400),
    ("ContentPolicyViolationErrorAllowedFails", lambda e: e.status == 400),
    ("InternalServerErrorAllowedFails", lambda e: e.status >= 500),
)


@dataclass(slots=True)
class _Health:
    window_start: float = 0.0
    failures: int = 0
    cooling_until: float = 0.0


class CooldownTracker:
    def __init__(
        self,
        *,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        disabled: bool = False,
        allowed_fails_policy: dict[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        self.disabled = disabled
        self.policy = allowed_fails_policy or {}
        self._clock = clock
        self._health: dict[str, _Health] = {}

    def is_cooling(self, deployment_id: str) -> bool:
        health = self._health.get(deployment_id)
        return health is not None and health.cooling_until > self._clock()

    def seconds_left(self, deployment_id: str) -> float:
        health = self._health.get(deployment_id)
        return max(0.0, health.cooling_until - self._clock()) if health else 0.0

    def cooling_ids(self) -> list[str]:
        now = self._clock()
        return [i for i, h in self._health.items() if h.cooling_until > now]

    def record_failure(self, deployment_id: str, error: UpstreamError, group_size: int) -> bool:
        """Count a failure; returns True when it put the deployment into cooldown."""
        if self.disabled or group_size <= 1:
            return False
        allowed = self._allowed_fails_for(error)
        if allowed is None:
            return False
        now = self._clock()
        health = self._health.setdefault(deployment_id, _Health(window_start=now))
        if now - health.window_start >= WINDOW_S:
            health.window_start, health.failures = now, 0
        health.failures += 1
        if health.failures <= allowed:
            return False
        duration = max(self.cooldown_time, error.retry_after or 0.0)
        health.cooling_until = now + duration
        health.failures = 0
        health.window_start = now
        return True

    def _allowed_fails_for(self, error: UpstreamError) -> int | None:
        """How many failures of this kind are tolerated per minute; None: never cool."""
        for key, matches in _POLICY_KEYS:
            if key in self.policy and matches(error):
                return self.policy[key]
        if error.status in _IMMEDIATE_STATUSES:
            return 0
        if error.retryable:
            return self.allowed_fails
        return None
