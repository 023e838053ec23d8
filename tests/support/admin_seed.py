"""Seed users, teams, keys and spend straight through the repositories, before the
gateway starts (so its in-memory key cache loads them), for management API tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bastion.storage.database import Database
from bastion.storage.migrator import migrate
from bastion.storage.models import Team, User, VirtualKey
from bastion.storage.repositories import hash_key
from bastion.storage.spend import SpendRecord

ADMIN_KEY = "sk-seed-admin-0001"
VIEWER_KEY = "sk-seed-viewer-0002"
TEAM_ADMIN_KEY = "sk-seed-alice-0003"  # alice: internal_user, admin of team-a
INTERNAL_KEY = "sk-seed-bob-0004"  # bob: internal_user, no team
PLAIN_KEY = "sk-seed-plain-0005"  # team-b key with no user


@dataclass
class Seeded:
    today: date
    d1: date  # two days ago
    d2: date  # yesterday
    d0: date  # 40 days ago: outside the 30-day window
    hashes: dict[str, str] = field(default_factory=dict)


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def spend_records(s: Seeded) -> list[SpendRecord]:
    alice, bob, plain = (hash_key(k) for k in (TEAM_ADMIN_KEY, INTERNAL_KEY, PLAIN_KEY))
    return [
        SpendRecord(
            "r1", Decimal("0.10"), _at(s.d1, 10), api_key=alice, user_id="alice",
            team_id="team-a", model="gpt-4o", end_user="cust-1",
            prompt_tokens=100, completion_tokens=50, total_tokens=150,
        ),
        SpendRecord(
            "r2", Decimal("0.02"), _at(s.d1, 11), api_key=alice, user_id="alice",
            team_id="team-a", model="gpt-4o-mini", end_user="cust-1",
            prompt_tokens=20, completion_tokens=10, total_tokens=30,
        ),
        SpendRecord(
            "r3", Decimal("0.30"), _at(s.d2, 9), api_key=bob, user_id="bob", model="gpt-4o",
            end_user="cust-2", prompt_tokens=300, completion_tokens=100, total_tokens=400,
        ),
        SpendRecord(
            "r4", Decimal("1.000000001"), _at(s.d2, 12), api_key=plain, team_id="team-b",
            model="claude", prompt_tokens=10, completion_tokens=5, total_tokens=15,
        ),
        SpendRecord(
            "r5", Decimal("0.000000007"), _at(s.d2, 23, 59, 59), api_key=alice,
            user_id="alice", team_id="team-a", model="gpt-4o", status="failure",
            prompt_tokens=1, completion_tokens=1, total_tokens=2,
        ),
        SpendRecord(
            "r6", Decimal("5"), _at(s.d0, 8), api_key=bob, user_id="bob", model="gpt-4o",
            prompt_tokens=1, completion_tokens=1, total_tokens=2,
        ),
    ]  # fmt: skip


async def _seed(url: str, s: Seeded) -> None:
    await migrate(url)
    db = Database.connect(url)
    try:
        async with db.transaction() as store:
            for user_id, role in (
                ("admin-user", "proxy_admin"),
                ("viewer", "proxy_admin_viewer"),
                ("alice", "internal_user"),
                ("bob", "internal_user"),
            ):
                await store.users.create(User(user_id=user_id, user_role=role))
            await store.teams.create(Team(team_id="team-a", team_alias="Alpha"))
            await store.teams.create(Team(team_id="team-b", team_alias="Beta"))
            await store.members.add("team-a", "alice", "admin")
            for raw, user_id, team_id, alias in (
                (ADMIN_KEY, "admin-user", None, "admin-key"),
                (VIEWER_KEY, "viewer", None, "viewer-key"),
                (TEAM_ADMIN_KEY, "alice", "team-a", "alice-key"),
                (INTERNAL_KEY, "bob", None, "bob-key"),
                (PLAIN_KEY, None, "team-b", "plain-key"),
            ):
                await store.keys.create(
                    VirtualKey(
                        token=hash_key(raw),
                        key_name=f"sk-...{raw[-4:]}",
                        key_alias=alias,
                        user_id=user_id,
                        team_id=team_id,
                    )
                )
        await db.apply_spend_batch(spend_records(s))
    finally:
        await db.dispose()


def seed(url: str) -> Seeded:
    today = datetime.now(UTC).date()
    s = Seeded(today, today - timedelta(days=2), today - timedelta(days=1), today - timedelta(40))
    s.hashes = {k: hash_key(k) for k in (TEAM_ADMIN_KEY, INTERNAL_KEY, PLAIN_KEY)}
    asyncio.run(_seed(url, s))
    return s
