"""Who may do what on the /key endpoints: the master key, a proxy_admin user, a
proxy_admin_viewer, a team admin, an internal user, an internal_user_viewer and a
plain team key with no user, each against keys of a team, of themselves and of others.

Users, the team and memberships are seeded through the repositories (the gateway
migrated the database at startup); every key is issued through /key/generate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bastion.storage.database import Database
from bastion.storage.models import Team, User
from tests.e2e.helpers import MASTER_KEY, assert_openai_error, running
from tests.e2e.test_admin_keys import MODEL, _config, chat, generate, get, post
from tests.support.gateway import GatewayProcess

ROLES = {
    "admin": "proxy_admin",
    "viewer": "proxy_admin_viewer",
    "alice": "internal_user",  # admin of team-a
    "bob": "internal_user",  # member of team-a
    "carol": "internal_user",  # no team
    "ivy": "internal_user_viewer",  # member of team-a
}
ACTORS = ("master", "admin", "viewer", "alice", "bob", "ivy", "plain")


async def _seed(url: str) -> None:
    database = Database.connect(url)
    try:
        async with database.transaction() as store:
            for user_id, role in ROLES.items():
                await store.users.create(User(user_id=user_id, user_role=role))
            for team_id in ("team-a", "team-b"):
                await store.teams.create(Team(team_id=team_id, team_alias=team_id))
            await store.members.add("team-a", "alice", "admin")
            await store.members.add("team-a", "bob", "user")
            await store.members.add("team-a", "ivy", "user")
    finally:
        await database.dispose()


@dataclass
class World:
    gw: GatewayProcess
    keys: dict[str, str]  # actor -> key

    def new_key(self, **owner: Any) -> str:
        """A fresh target key, issued by the master key."""
        return str(generate(self.gw, **owner)["key"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("keys-rbac") / "bastion.db"
    url = f"sqlite:///{path}"
    with running(_config(url)) as gw:
        asyncio.run(_seed(url))
        keys = {"master": MASTER_KEY}
        for user_id in ROLES:
            keys[user_id] = generate(gw, user_id=user_id)["key"]
        keys["plain"] = generate(gw, team_id="team-a")["key"]
        yield World(gw, keys)


OWNERS: dict[str, dict[str, str]] = {
    "team-a": {"team_id": "team-a"},
    "bob": {"user_id": "bob"},
    "carol": {"user_id": "carol"},
    "ivy": {"user_id": "ivy"},
}


def _expect(allowed: set[str]) -> list[tuple[str, int]]:
    return [(actor, 200 if actor in allowed else 403) for actor in ACTORS]


MANAGE = {
    "team-a": {"master", "admin", "alice"},
    "bob": {"master", "admin", "bob"},
    "carol": {"master", "admin"},
}
READ = {
    "team-a": {"master", "admin", "viewer", "alice"},
    "bob": {"master", "admin", "viewer", "bob"},
    "carol": {"master", "admin", "viewer"},
    "ivy": {"master", "admin", "viewer", "ivy"},
}
GENERATE = {
    "own": {"master", "admin", "alice", "bob"},
    "team-a": {"master", "admin", "alice", "bob"},  # bob: a key of his own in his team
    "team-b": {"master", "admin"},
    "carol": {"master", "admin"},
}
GENERATE_BODY: dict[str, dict[str, str]] = {
    "own": {},
    "team-a": {"team_id": "team-a"},
    "team-b": {"team_id": "team-b"},
    "carol": {"user_id": "carol"},
}


def _cases(table: dict[str, set[str]]) -> list[tuple[str, str, int]]:
    return [
        (target, actor, status)
        for target, allowed in table.items()
        for actor, status in _expect(allowed)
    ]


@pytest.mark.parametrize(("target", "actor", "status"), _cases(GENERATE))
def test_generate(world: World, target: str, actor: str, status: int) -> None:
    response = post(world.gw, "/key/generate", GENERATE_BODY[target], as_key=world.keys[actor])
    if status == 403:
        assert_openai_error(response, 403)
        return
    assert response.status_code == 200, response.text
    created = response.json()
    if actor in ("alice", "bob") and target == "own":
        assert created["user_id"] == actor  # an internal user's key is their own
    assert chat(world.gw, created["key"]) == 200


@pytest.mark.parametrize(("target", "actor", "status"), _cases(MANAGE))
def test_update_block_regenerate_delete(world: World, target: str, actor: str, status: int) -> None:
    as_key = world.keys[actor]
    key = world.new_key(**OWNERS[target])
    steps = [
        ("/key/update", {"key": key, "metadata": {"by": actor}}),
        ("/key/block", {"key": key}),
        ("/key/unblock", {"key": key}),
    ]
    for path, body in steps:
        response = post(world.gw, path, body, as_key=as_key)
        assert response.status_code == status, (path, response.text)
    response = post(world.gw, "/key/regenerate", {"key": key}, as_key=as_key)
    assert response.status_code == status, response.text
    if status == 200:
        key = response.json()["key"]
    response = post(world.gw, "/key/delete", {"keys": [key]}, as_key=as_key)
    assert response.status_code == status, response.text
    assert chat(world.gw, key) == (401 if status == 200 else 200)


@pytest.mark.parametrize(("target", "actor", "status"), _cases(READ))
def test_info(world: World, target: str, actor: str, status: int) -> None:
    key = world.keys[target] if target in world.keys else world.new_key(**OWNERS[target])
    response = get(world.gw, "/key/info", as_key=world.keys[actor], key=key)
    assert response.status_code == status, response.text


def test_internal_user_may_not_move_a_key_elsewhere(world: World) -> None:
    own = generate(world.gw, user_id="bob")["key"]
    for change in ({"user_id": "carol"}, {"team_id": "team-b"}, {"organization_id": "o"}):
        response = post(world.gw, "/key/update", {"key": own, **change}, as_key=world.keys["bob"])
        assert_openai_error(response, 403)
    moved = post(
        world.gw, "/key/update", {"key": own, "team_id": "team-a"}, as_key=world.keys["bob"]
    )
    assert moved.status_code == 200 and moved.json()["team_id"] == "team-a"
    # A team admin may give a team key to a member, not to an outsider.
    assert (
        post(
            world.gw,
            "/key/generate",
            {"team_id": "team-a", "user_id": "bob"},
            as_key=world.keys["alice"],
        ).status_code
        == 200
    )
    assert_openai_error(
        post(
            world.gw,
            "/key/generate",
            {"team_id": "team-a", "user_id": "carol"},
            as_key=world.keys["alice"],
        ),
        403,
    )


def test_list_is_scoped_to_what_the_caller_may_read(world: World) -> None:
    gw, keys = world.gw, world.keys
    everything = get(gw, "/key/list", size=1000).json()["total_count"]
    assert (
        get(gw, "/key/list", as_key=keys["viewer"], size=1000).json()["total_count"] == everything
    )

    team = get(gw, "/key/list", as_key=keys["alice"], team_id="team-a", return_full_object="true")
    assert team.status_code == 200
    assert {k["team_id"] for k in team.json()["keys"]} == {"team-a"}

    own = get(gw, "/key/list", as_key=keys["ivy"], return_full_object="true", size=1000)
    assert own.status_code == 200 and {k["user_id"] for k in own.json()["keys"]} == {"ivy"}
    assert_openai_error(get(gw, "/key/list", as_key=keys["bob"], user_id="carol"), 403)
    assert_openai_error(get(gw, "/key/list", as_key=keys["bob"], team_id="team-b"), 403)
    assert_openai_error(get(gw, "/key/list", as_key=keys["plain"]), 403)


def test_plain_key_still_calls_models(world: World) -> None:
    assert chat(world.gw, world.keys["plain"]) == 200
    assert MODEL
