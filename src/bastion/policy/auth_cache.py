"""Virtual keys served from memory: the database's auth snapshot, swapped on change.

No request reads the database. The snapshot is loaded at startup, reloaded by the
worker that changes a key, team or user (``refresh``), and reloaded by every
worker on a short timer so that changes made elsewhere arrive within
``refresh_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bastion.core.errors import AuthenticationError
from bastion.core.periodic import Periodic
from bastion.policy.auth import Principal, PrincipalKind
from bastion.storage.snapshot import AuthSnapshot

logger = logging.getLogger("bastion.auth")

SnapshotLoader = Callable[[datetime], Awaitable[AuthSnapshot]]
DEFAULT_REFRESH_INTERVAL_S = 2.0


def hash_key(key: str) -> str:
    """How keys are stored: sha256 hex, as LiteLLM does."""
    return hashlib.sha256(key.encode()).hexdigest()


class AuthCache:
    def __init__(
        self,
        load: SnapshotLoader,
        *,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_loaded: Callable[[float], None] | None = None,
    ) -> None:
        self._load = load
        # Told the monotonic time each installed snapshot's load started (the ledger).
        self.on_loaded = on_loaded
        self._clock = clock
        self.refresh_interval = refresh_interval
        self.snapshot: AuthSnapshot | None = None
        self._poller = Periodic(
            self.refresh,
            lambda: self.refresh_interval,
            failure="could not reload virtual keys (serving the last ones)",
            logger=logger,
        )
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Load the snapshot, then keep reloading it; raises if the first load fails."""
        await self.refresh()
        self.start_polling()

    def start_polling(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def refresh(self) -> None:
        """Load a fresh snapshot now (after a change made through this worker)."""
        async with self._lock:
            started = time.monotonic()
            self.snapshot = await self._load(self._clock())
            if self.on_loaded is not None:
                self.on_loaded(started)

    def resolve(self, key: str) -> Principal:
        snapshot = self.snapshot
        if snapshot is None:
            raise AuthenticationError("virtual keys are not loaded yet; retry in a moment")
        token = hash_key(key)
        record = snapshot.keys.get(token)
        now = self._clock()
        if record is None:
            previous = snapshot.previous_tokens.get(token)
            if previous is not None and _aware(previous.valid_until) > now:
                record = snapshot.keys.get(previous.key_token)
        if record is None:
            raise AuthenticationError("invalid API key: it is not a key this gateway knows")
        name = record.key_alias or record.key_name or "this key"
        if record.blocked:
            raise AuthenticationError(f"key {name} is blocked; an admin can unblock it")
        if record.expires is not None and _aware(record.expires) <= now:
            raise AuthenticationError(f"key {name} expired at {_aware(record.expires).isoformat()}")
        team = snapshot.teams.get(record.team_id) if record.team_id else None
        if team is not None and team.blocked:
            raise AuthenticationError(
                f"team {team.team_alias or team.team_id} is blocked; its keys are refused"
            )
        user = snapshot.users.get(record.user_id) if record.user_id else None
        organization_id = record.organization_id or (team.organization_id if team else None)
        organization = snapshot.organizations.get(organization_id) if organization_id else None
        membership = (
            snapshot.memberships.get((record.team_id, record.user_id))
            if record.team_id and record.user_id
            else None
        )
        return Principal(
            PrincipalKind.KEY,
            key=record,
            team=team,
            user=user,
            organization=organization,
            membership=membership,
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
