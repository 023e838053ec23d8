"""Who may do what on /team, /user and /organization: every endpoint against every kind
of caller (master key, proxy_admin, proxy_admin_viewer, a team admin, an internal user,
a team key with no user), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bastion.services.admin.key_material import new_key_material
from bastion.storage.database import Database
from bastion.storage.models import VirtualKey
from bastion.storage.urls import normalize_database_url
from tests.conftest import PostgresServer
from tests.e2e.admin_tenancy_support import MASTER, Admin, gateway, sqlite_url

ACTORS = ("master", "proxy_admin", "viewer", "team_admin", "internal_user", "team_key")
ADMINS = {"master", "proxy_admin"}
READERS = ADMINS | {"viewer"}
TEAM_MANAGERS = ADMINS | {"team_admin"}
TEAM_READERS = READERS | {"team_admin", "internal_user"}


@dataclass
class World:
    clients: dict[str, Admin]
    team: str  # the team admin and internal user belong to it
    other_team: str  # nobody but admins has anything to do with it
    org: str
    team_admin_id: str
    internal_user_id: str

    @property
    def master(self) -> Admin:
        return self.clients["master"]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _seed_team_key(database_url: str, team_id: str) -> str:
    """A key of the team with no user (made in the database: /key/* is another area)."""
    material = new_key_material()

    async def insert() -> None:
        db = Database.connect(normalize_database_url(database_url))
        try:
            async with db.transaction() as store:
                await store.keys.create(
                    VirtualKey(token=material.token, key_name=material.key_name, team_id=team_id)
                )
        finally:
            await db.dispose()

    asyncio.run(insert())
    return material.key


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = sqlite_url(Path(tmp_path_factory.mktemp("admin-matrix")))
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    try:
        with gateway(url) as gw:
            master = Admin(gw.url, MASTER)
            org = master.ok("/organization/new", {"organization_alias": "matrix-org"})
            team = master.ok(
                "/team/new", {"team_alias": "matrix", "organization_id": org["organization_id"]}
            )
            other = master.ok("/team/new", {"team_alias": "matrix-other"})
            keys = {"master": MASTER}
            for name, role in (
                ("proxy_admin", "proxy_admin"),
                ("viewer", "proxy_admin_viewer"),
                ("team_admin", "internal_user"),
                ("internal_user", "internal_user"),
            ):
                keys[name] = master.ok(
                    "/user/new", {"user_id": f"matrix-{name}", "user_role": role}
                )["key"]
            master.ok(
                "/team/member_add",
                {
                    "team_id": team["team_id"],
                    "member": [
                        {"role": "admin", "user_id": "matrix-team_admin"},
                        {"role": "user", "user_id": "matrix-internal_user"},
                    ],
                },
            )
            keys["team_key"] = _seed_team_key(url, team["team_id"])
            master.ok("/team/unblock", {"team_id": other["team_id"]})  # reloads the key cache
            clients = {name: Admin(gw.url, key) for name, key in keys.items()}
            yield World(
                clients,
                team["team_id"],
                other["team_id"],
                org["organization_id"],
                "matrix-team_admin",
                "matrix-internal_user",
            )
            for client in clients.values():
                client.close()
            master.close()
    finally:
        if server is not None:
            server.drop_database(url)


Call = Callable[[World, str], httpx.Response]


def _new_member(w: World, actor: str) -> httpx.Response:
    return w.clients[actor].post(
        "/team/member_add", {"team_id": w.team, "member": {"user_id": w.fresh(actor)}}
    )


def _delete_member(w: World, actor: str) -> httpx.Response:
    user_id = w.fresh("leaver")
    w.master.ok("/team/member_add", {"team_id": w.team, "member": {"user_id": user_id}})
    return w.clients[actor].post("/team/member_delete", {"team_id": w.team, "user_id": user_id})


def _delete_team(w: World, actor: str) -> httpx.Response:
    team_id = w.master.ok("/team/new", {})["team_id"]
    return w.clients[actor].post("/team/delete", {"team_ids": [team_id]})


def _delete_user(w: World, actor: str) -> httpx.Response:
    user_id = w.master.ok("/user/new", {"auto_create_key": False})["user_id"]
    return w.clients[actor].post("/user/delete", {"user_ids": [user_id]})


def _delete_org(w: World, actor: str) -> httpx.Response:
    org = w.master.ok("/organization/new", {"organization_alias": "doomed"})
    return w.clients[actor].post(
        "/organization/delete", {"organization_ids": [org["organization_id"]]}
    )


CASES: dict[str, tuple[Call, set[str]]] = {
    "team/new": (lambda w, a: w.clients[a].post("/team/new", {"team_alias": w.fresh(a)}), ADMINS),
    "team/update": (
        lambda w, a: w.clients[a].post("/team/update", {"team_id": w.team, "metadata": {"by": a}}),
        ADMINS,
    ),
    "team/block": (
        lambda w, a: w.clients[a].post("/team/unblock", {"team_id": w.other_team}),
        ADMINS,
    ),
    "team/delete": (_delete_team, ADMINS),
    "team/info own": (lambda w, a: w.clients[a].get("/team/info", team_id=w.team), TEAM_READERS),
    "team/info other": (
        lambda w, a: w.clients[a].get("/team/info", team_id=w.other_team),
        READERS,
    ),
    "team/list": (lambda w, a: w.clients[a].get("/team/list"), TEAM_READERS),
    "team/member_add": (_new_member, TEAM_MANAGERS),
    "team/member_update": (
        lambda w, a: w.clients[a].post(
            "/team/member_update",
            {"team_id": w.team, "user_id": w.internal_user_id, "max_budget_in_team": 2},
        ),
        TEAM_MANAGERS,
    ),
    "team/member_delete": (_delete_member, TEAM_MANAGERS),
    "team/model/add own": (
        lambda w, a: w.clients[a].post("/team/model/add", {"team_id": w.team, "models": ["m"]}),
        TEAM_MANAGERS,
    ),
    "team/model/delete own": (
        lambda w, a: w.clients[a].post("/team/model/delete", {"team_id": w.team, "models": ["m"]}),
        TEAM_MANAGERS,
    ),
    "team/model/add other": (
        lambda w, a: w.clients[a].post(
            "/team/model/add", {"team_id": w.other_team, "models": ["m"]}
        ),
        ADMINS,
    ),
    "user/new": (
        lambda w, a: w.clients[a].post("/user/new", {"user_role": "proxy_admin"}),
        ADMINS,
    ),
    "user/update": (
        lambda w, a: w.clients[a].post(
            "/user/update", {"user_id": w.internal_user_id, "metadata": {"by": a}}
        ),
        ADMINS,
    ),
    "user/delete": (_delete_user, ADMINS),
    "user/info internal_user": (
        lambda w, a: w.clients[a].get("/user/info", user_id=w.internal_user_id),
        READERS | {"internal_user"},
    ),
    "user/list": (lambda w, a: w.clients[a].get("/user/list"), READERS),
    "organization/new": (
        lambda w, a: w.clients[a].post("/organization/new", {"organization_alias": a}),
        ADMINS,
    ),
    "organization/update": (
        lambda w, a: w.clients[a].post(
            "/organization/update", {"organization_id": w.org, "metadata": {"by": a}}
        ),
        ADMINS,
    ),
    "organization/delete": (_delete_org, ADMINS),
    "organization/info": (
        lambda w, a: w.clients[a].get("/organization/info", organization_id=w.org),
        TEAM_READERS,
    ),
    "organization/list": (lambda w, a: w.clients[a].get("/organization/list"), TEAM_READERS),
}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("case", list(CASES))
def test_permission_matrix(world: World, case: str, actor: str) -> None:
    call, allowed = CASES[case]
    response = call(world, actor)
    expected = 200 if actor in allowed else 403
    assert response.status_code == expected, (case, actor, response.text)
    if expected == 403:
        assert response.json()["error"]["type"] == "permission_error"


def test_non_admins_see_only_their_own(world: World) -> None:
    for actor in ("team_admin", "internal_user"):
        teams = world.clients[actor].ok("/team/list")
        assert [t["team_id"] for t in teams] == [world.team]
        orgs = world.clients[actor].ok("/organization/list")
        assert [o["organization_id"] for o in orgs] == [world.org]
        me = world.clients[actor].ok("/user/info")
        assert me["user_id"] == f"matrix-{actor}"
        assert [t["team_id"] for t in me["teams"]] == [world.team]
    response = world.clients["internal_user"].get("/team/list", user_id=world.team_admin_id)
    assert response.status_code == 403
    viewer = world.clients["viewer"].ok("/team/list")
    assert {world.team, world.other_team} <= {t["team_id"] for t in viewer}
