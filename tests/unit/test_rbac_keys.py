"""rbac.can_own_key: who may create a key for an owner, or move a key to it."""

from __future__ import annotations

import pytest

from bastion.policy.rbac import Actor, can_own_key

ADMIN = Actor("proxy_admin")
VIEWER = Actor("proxy_admin_viewer", "v")
TEAM_ADMIN = Actor("internal_user", "alice", frozenset({"a"}), frozenset({"a"}))
MEMBER = Actor("internal_user", "bob", frozenset(), frozenset({"a"}))
READER = Actor("internal_user_viewer", "ivy", frozenset(), frozenset({"a"}))
PLAIN = Actor(None)


@pytest.mark.parametrize(
    ("actor", "user_id", "team_id", "allowed"),
    [
        (ADMIN, "anyone", "any-team", True),
        (ADMIN, None, None, True),
        (VIEWER, "v", None, False),
        (TEAM_ADMIN, None, "a", True),
        (TEAM_ADMIN, "bob", "a", True),
        (TEAM_ADMIN, None, "b", False),
        (TEAM_ADMIN, "alice", None, True),
        (MEMBER, "bob", None, True),
        (MEMBER, "bob", "a", True),
        (MEMBER, "bob", "b", False),
        (MEMBER, "carol", None, False),
        (MEMBER, None, "a", False),
        (READER, "ivy", None, False),
        (PLAIN, None, "a", False),
    ],
)
def test_can_own_key(actor: Actor, user_id: str | None, team_id: str | None, allowed: bool) -> None:
    assert can_own_key(actor, user_id, team_id) is allowed
