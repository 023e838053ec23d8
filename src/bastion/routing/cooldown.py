"""Cooling down a failing deployment, as LiteLLM's ``allowed_fails``/``cooldown_time`` do.

A deployment that fails more than ``allowed_fails`` times within one minute is
skipped for ``cooldown_time`` seconds. Rate limits (429), bad credentials
(401/403) and a missing deployment (404) cool it down at once. When the provider
said how long to wait (``retry-after`` / ``retry-after-ms``), the cooldown lasts
that long instead of ``cooldown_time``, capped at ``MAX_RETRY_AFTER_COOLDOWN_S``.
A request the provider rejected (400, 413, 422) says nothing about the
deployment's health and is not counted, unless ``allowed_fails_policy`` names its
kind. A group with a single deployment is never cooled down (LiteLLM's rule):
there is nothing to route to instead, and fast failures would hide a recovery.

The state lives in a ``DeploymentStateStore`` (``routing/state_store.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bastion.core.errors import UpstreamError
from bastion.routing.error_kinds import ErrorKind, classify
from bastion.routing.retry_policy import ALLOWED_FAILS, KindCounts
from bastion.routing.state_store import DeploymentStateStore, InMemoryStateStore

WINDOW_S = 60.0
# A provider's retry-after longer than this (a day-long quota reset, a garbled
# header) still cools the deployment, but only this long before it is tried again.
MAX_RETRY_AFTER_COOLDOWN_S = 300.0
_IMMEDIATE = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.AUTHENTICATION, ErrorKind.NOT_FOUND})
_NEVER_COUNTED = frozenset(
    {ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_WINDOW, ErrorKind.CONTENT_POLICY}
)


class CooldownTracker:
    def __init__(
        self,
        *,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        disabled: bool = False,
        allowed_fails_policy: Mapping[str, int | None] | None = None,
        store: DeploymentStateStore | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        self.disabled = disabled
        self.policy = KindCounts(allowed_fails_policy, ALLOWED_FAILS)
        self.store: DeploymentStateStore = store or (
            InMemoryStateStore(clock) if clock is not None else InMemoryStateStore()
        )

    def is_cooling(self, deployment_id: str) -> bool:
        until = self.store.cooling_until(deployment_id)
        return until > 0.0 and until > self.store.now()

    def seconds_left(self, deployment_id: str) -> float:
        return max(0.0, self.store.cooling_until(deployment_id) - self.store.now())

    def cooling_ids(self) -> list[str]:
        return self.store.cooling_ids()

    def record_failure(
        self,
        deployment_id: str,
        error: UpstreamError,
        group_size: int,
        kind: ErrorKind | None = None,
    ) -> bool:
        """Count a failure; returns True when it put the deployment into cooldown."""
        if self.disabled or group_size <= 1:
            return False
        allowed = self._allowed_fails_for(kind or classify(error), error)
        if allowed is None:
            return False
        if self.store.count_failure(deployment_id, WINDOW_S) <= allowed:
            return False
        self.store.cool_down(deployment_id, self.store.now() + self.duration_for(error))
        return True

    def duration_for(self, error: UpstreamError) -> float:
        """The provider's retry-after (capped) when it gave one, else ``cooldown_time``."""
        if error.retry_after is not None:
            return min(max(float(error.retry_after), 0.0), MAX_RETRY_AFTER_COOLDOWN_S)
        return self.cooldown_time

    def _allowed_fails_for(self, kind: ErrorKind, error: UpstreamError) -> int | None:
        """How many failures of this kind are tolerated per minute; None: never cool."""
        configured = self.policy.get(kind)
        if configured is not None:
            return configured
        if kind in _IMMEDIATE:
            return 0
        if kind in _NEVER_COUNTED or not error.retryable:
            return None
        return self.allowed_fails
