"""Who may do what on the management API (LiteLLM's roles, all of them in the open).

- ``proxy_admin`` (the master key, open mode, or a user with that role): everything.
- ``proxy_admin_viewer``: reads everything, changes nothing.
- a team admin (membership role ``admin``): that team's keys and members, and reads it.
- ``internal_user``: their own keys, and reads themselves and their teams.
- ``internal_user_viewer``: reads themselves and their teams.
- a virtual key not owned by a user: no management API at all (it may call models).
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.errors import PermissionDeniedError
from bastion.policy.auth import Principal

PROXY_ADMIN = "proxy_admin"
PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
INTERNAL_USER = "internal_user"
INTERNAL_USER_VIEWER = "internal_user_viewer"
USER_ROLES = frozenset({PROXY_ADMIN, PROXY_ADMIN_VIEWER, INTERNAL_USER, INTERNAL_USER_VIEWER})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a management request, with the teams they administer."""

    role: str | None
    user_id: str | None = None
    admin_teams: frozenset[str] = frozenset()
    member_teams: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        principal: Principal,
        admin_teams: frozenset[str] = frozenset(),
        member_teams: frozenset[str] = frozenset(),
    ) -> Actor:
        user_id = principal.user.user_id if principal.user is not None else None
        return cls(principal.role, user_id, admin_teams, member_teams)

    @property
    def is_admin(self) -> bool:
        return self.role == PROXY_ADMIN

    @property
    def reads_all(self) -> bool:
        return self.role in (PROXY_ADMIN, PROXY_ADMIN_VIEWER)

    @property
    def may_use_management_api(self) -> bool:
        return self.role in USER_ROLES


def require_management(actor: Actor) -> None:
    if not actor.may_use_management_api:
        raise PermissionDeniedError(
            "this key may call models but not the management API; use the master key or a "
            "key of a user with a management role"
        )


def require_admin(actor: Actor, action: str) -> None:
    require_management(actor)
    if not actor.is_admin:
        raise PermissionDeniedError(f"only a proxy_admin may {action}")


def require_read_all(actor: Actor, what: str) -> None:
    require_management(actor)
    if not actor.reads_all:
        raise PermissionDeniedError(f"only a proxy_admin or proxy_admin_viewer may read {what}")


def can_manage_team(actor: Actor, team_id: str | None) -> bool:
    return actor.is_admin or (team_id is not None and team_id in actor.admin_teams)


def can_read_team(actor: Actor, team_id: str) -> bool:
    return actor.reads_all or team_id in actor.admin_teams or team_id in actor.member_teams


def can_manage_key(actor: Actor, key_user_id: str | None, key_team_id: str | None) -> bool:
    """Admins: any key; team admins: their team's keys; internal users: their own keys."""
    if actor.is_admin or can_manage_team(actor, key_team_id):
        return True
    return (
        actor.role == INTERNAL_USER and actor.user_id is not None and key_user_id == actor.user_id
    )


def can_read_key(actor: Actor, key_user_id: str | None, key_team_id: str | None) -> bool:
    if actor.reads_all or can_manage_key(actor, key_user_id, key_team_id):
        return True
    return actor.user_id is not None and key_user_id == actor.user_id


def can_read_user(actor: Actor, user_id: str) -> bool:
    return actor.reads_all or (actor.user_id is not None and actor.user_id == user_id)


def deny(action: str) -> PermissionDeniedError:
    return PermissionDeniedError(f"you may not {action}")


def can_own_key(actor: Actor, key_user_id: str | None, key_team_id: str | None) -> bool:
    """May the actor create a key with this owner, or move a key to it? Admins: any;
    team admins: keys of their team; internal users: their own keys, in no team or in a
    team they belong to."""
    if actor.is_admin or can_manage_team(actor, key_team_id):
        return True
    return (
        actor.role == INTERNAL_USER
        and actor.user_id is not None
        and key_user_id == actor.user_id
        and (key_team_id is None or key_team_id in actor.member_teams)
    )
