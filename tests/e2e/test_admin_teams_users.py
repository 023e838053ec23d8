"""Teams, users, memberships and organizations through the management API, end to
end on the real gateway (SQLite here; PostgreSQL in test_admin_tenancy_postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from tests.e2e.admin_tenancy_support import MASTER, Admin, gateway, sqlite_url
from tests.e2e.helpers import USER_MSG
from tests.e2e.test_admin_tenancy_permissions import _seed_team_key
from tests.support.gateway import GatewayProcess


def _database_url(gw: GatewayProcess) -> str:
    assert gw.config_path is not None
    config = yaml.safe_load(gw.config_path.read_text())
    return str(config["general_settings"]["database_url"])


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway(sqlite_url(Path(tmp_path_factory.mktemp("admin-teams")))) as process:
        yield process


@pytest.fixture
def admin(gw: GatewayProcess) -> Iterator[Admin]:
    client = Admin(gw.url, MASTER)
    yield client
    client.close()


def _error(response: object, status: int, *words: str) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message, message


def _chat(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_team_lifecycle(admin: Admin) -> None:
    team = admin.ok(
        "/team/new",
        {
            "team_alias": "lifecycle",
            "models": ["fake-chat"],
            "max_budget": 12.5,
            "budget_duration": "30d",
            "tpm_limit": 1000,
            "metadata": {"cost_center": "42"},
        },
    )
    team_id = team["team_id"]
    assert team["team_alias"] == "lifecycle"
    assert team["max_budget"] == 12.5
    assert team["metadata"] == {"cost_center": "42"}
    assert team["budget_reset_at"] is not None
    assert team["members_with_roles"] == []

    updated = admin.ok("/team/update", {"team_id": team_id, "rpm_limit": 7, "max_budget": 20})
    assert updated["data"]["rpm_limit"] == 7 and updated["data"]["max_budget"] == 20
    assert updated["data"]["tpm_limit"] == 1000  # untouched

    admin.ok("/team/model/add", {"team_id": team_id, "models": ["gpt-x", "fake-chat"]})
    after = admin.ok("/team/model/delete", {"team_id": team_id, "models": ["fake-chat"]})
    assert after["models"] == ["gpt-x"]

    info = admin.ok("/team/info", team_id=team_id)
    assert set(info) >= {"team_id", "team_info", "keys", "team_memberships"}
    assert info["team_info"]["models"] == ["gpt-x"]
    assert any(t["team_id"] == team_id for t in admin.ok("/team/list"))

    assert admin.ok("/team/delete", {"team_ids": [team_id]}) == {"deleted_teams": [team_id]}
    _error(admin.get("/team/info", team_id=team_id), 404, team_id)


def test_team_validation(admin: Admin) -> None:
    admin.ok("/team/new", {"team_alias": "dup-alias"})
    _error(admin.post("/team/new", {"team_alias": "dup-alias"}), 409, "team_alias")
    _error(admin.post("/team/new", {"max_budget": -1}), 400, "max_budget")
    _error(admin.post("/team/new", {"budget_duration": "30x"}), 400, "budget_duration")
    _error(admin.post("/team/new", {"organization_id": "no-such-org"}), 400, "organization_id")
    _error(admin.post("/team/new", {"models": "not-a-list"}), 400, "models")
    _error(admin.post("/team/update", {"team_id": "missing", "rpm_limit": 1}), 404, "missing")
    _error(admin.post("/team/delete", {"team_ids": ["missing"]}), 404, "missing")
    _error(admin.post("/team/delete", {}), 400, "team_ids")
    _error(admin.get("/team/info"), 400, "team_id")
    bad_role = {"team_id": "x", "member": {"role": "owner", "user_id": "u"}}
    _error(admin.post("/team/member_add", bad_role), 400, "role")


def test_user_lifecycle_and_key(gw: GatewayProcess, admin: Admin) -> None:
    user = admin.ok(
        "/user/new",
        {"user_email": "ada@example.com", "user_role": "internal_user", "max_budget": 5},
    )
    user_id = user["user_id"]
    assert user_id and user["user_role"] == "internal_user"
    key = user["key"]
    assert key.startswith("sk-") and len(key) == 25
    assert user["token"] != key and len(user["token"]) == 64

    # The key works at once on the data plane.
    reply = _chat(gw, key).chat.completions.create(model="fake-chat", messages=USER_MSG)
    assert reply.choices[0].message.content

    info = admin.ok("/user/info", user_id=user_id)
    assert info["user_info"]["user_email"] == "ada@example.com"
    assert [k["token"] for k in info["keys"]] == [user["token"]]
    assert key not in str(info)  # never the key itself after creation

    admin.ok("/user/update", {"user_id": user_id, "user_role": "proxy_admin_viewer"})
    listed = admin.ok("/user/list", role="proxy_admin_viewer")
    assert [u["user_id"] for u in listed["users"]] == [user_id]
    assert listed["total"] == 1 and listed["page"] == 1

    no_key = admin.ok("/user/new", {"user_id": "no-key-user", "auto_create_key": False})
    assert no_key["user_id"] == "no-key-user" and no_key["key"] is None

    assert admin.ok("/user/delete", {"user_ids": [user_id]}) == {"deleted_users": [user_id]}
    with pytest.raises(openai.AuthenticationError):
        _chat(gw, key).chat.completions.create(model="fake-chat", messages=USER_MSG)
    _error(admin.get("/user/info", user_id=user_id), 404, user_id)


def test_user_validation(admin: Admin) -> None:
    admin.ok("/user/new", {"user_email": "dup@example.com", "auto_create_key": False})
    _error(admin.post("/user/new", {"user_email": "dup@example.com"}), 409, "user_email")
    _error(
        admin.post("/user/new", {"user_role": "superuser"}),
        400,
        "user_role",
        "proxy_admin",
        "internal_user_viewer",
    )
    _error(admin.post("/user/new", {"max_budget": -3}), 400, "max_budget")
    _error(admin.post("/user/new", {"budget_duration": "30x"}), 400, "budget_duration")
    _error(admin.post("/user/new", {"teams": ["no-such-team"]}), 400, "team_id")
    _error(admin.post("/user/update", {"user_id": "ghost", "max_budget": 1}), 404, "ghost")
    _error(admin.post("/user/delete", {"user_ids": ["ghost"]}), 404, "ghost")
    _error(admin.get("/user/list", role="boss"), 400, "user_role")
    _error(admin.get("/user/list", page="x"), 400, "page")


def test_memberships(admin: Admin) -> None:
    team_id = admin.ok("/team/new", {"team_alias": "members"})["team_id"]
    bob = admin.ok("/user/new", {"user_id": "bob", "auto_create_key": False})["user_id"]
    added = admin.ok(
        "/team/member_add",
        {
            "team_id": team_id,
            "member": [
                {"role": "admin", "user_id": bob},
                {"role": "user", "user_email": "new-person@example.com"},
            ],
            "max_budget_in_team": 3,
        },
    )
    roles = {m["user_email"] or m["user_id"]: m["role"] for m in added["members_with_roles"]}
    assert roles == {"bob": "admin", "new-person@example.com": "user"}
    assert len(added["updated_team_memberships"]) == 2
    created = admin.ok(
        "/user/list", user_ids=",".join(u["user_id"] for u in added["updated_users"])
    )
    assert {u["user_email"] for u in created["users"]} == {None, "new-person@example.com"}

    _error(
        admin.post("/team/member_add", {"team_id": team_id, "member": {"user_id": bob}}),
        400,
        "already",
    )
    _error(
        admin.post("/team/member_add", {"team_id": "nope", "member": {"user_id": bob}}),
        404,
        "nope",
    )
    updated = admin.ok(
        "/team/member_update",
        {"team_id": team_id, "user_id": bob, "role": "user", "max_budget_in_team": 9},
    )
    assert updated["role"] == "user" and updated["max_budget_in_team"] == 9

    info = admin.ok("/team/info", team_id=team_id)
    budgets = {m["user_id"]: m["max_budget_in_team"] for m in info["team_memberships"]}
    assert budgets[bob] == 9
    assert team_id in [t["team_id"] for t in admin.ok("/user/info", user_id=bob)["teams"]]
    assert [t["team_id"] for t in admin.ok("/team/list", user_id=bob)] == [team_id]

    admin.ok("/team/member_delete", {"team_id": team_id, "user_email": "new-person@example.com"})
    left = admin.ok("/team/info", team_id=team_id)["team_info"]["members_with_roles"]
    assert [m["user_id"] for m in left] == [bob]
    _error(
        admin.post("/team/member_delete", {"team_id": team_id, "user_id": "stranger"}),
        404,
        "stranger",
    )
    _error(admin.post("/team/member_delete", {"team_id": team_id}), 400, "user_id")


def test_user_new_joins_teams(admin: Admin) -> None:
    team_id = admin.ok("/team/new", {"team_alias": "joined"})["team_id"]
    user = admin.ok("/user/new", {"user_id": "joiner", "teams": [team_id]})
    assert user["teams"] == [team_id]
    members = admin.ok("/team/info", team_id=team_id)["team_info"]["members_with_roles"]
    assert members == [{"user_id": "joiner", "user_email": None, "role": "user"}]


def test_organizations(admin: Admin) -> None:
    org = admin.ok(
        "/organization/new", {"organization_alias": "acme", "max_budget": 100, "models": ["a"]}
    )
    org_id = org["organization_id"]
    assert org["organization_alias"] == "acme" and org["max_budget"] == 100
    team_id = admin.ok("/team/new", {"team_alias": "acme-team", "organization_id": org_id})[
        "team_id"
    ]
    info = admin.ok("/organization/info", organization_id=org_id)
    assert [t["team_id"] for t in info["teams"]] == [team_id]
    teams = admin.ok("/team/list", organization_id=org_id)
    assert [t["team_id"] for t in teams] == [team_id]
    updated = admin.ok("/organization/update", {"organization_id": org_id, "tpm_limit": 5})
    assert updated["tpm_limit"] == 5 and updated["organization_alias"] == "acme"
    assert org_id in [o["organization_id"] for o in admin.ok("/organization/list")]

    _error(admin.post("/organization/new", {}), 400, "organization_alias")
    _error(
        admin.post("/organization/new", {"organization_alias": "x", "budget_duration": "30x"}),
        400,
        "budget_duration",
    )
    # Teams still belong to it: refused, nothing deleted.
    _error(admin.post("/organization/delete", {"organization_ids": [org_id]}), 409, org_id)
    admin.ok("/team/delete", {"team_ids": [team_id]})
    deleted = admin.ok("/organization/delete", {"organization_ids": [org_id]})
    assert [o["organization_id"] for o in deleted] == [org_id]
    _error(admin.get("/organization/info", organization_id=org_id), 404, org_id)


def test_blocking_and_deleting_a_team_refuses_its_keys_at_once(
    gw: GatewayProcess, admin: Admin
) -> None:
    team_id = admin.ok("/team/new", {"team_alias": "blockable", "models": ["fake-chat"]})["team_id"]
    user = admin.ok("/user/new", {"user_id": "blocked-team-user", "teams": [team_id]})
    # The user's own key (no team) keeps working whatever happens to the team.
    client = _chat(gw, user["key"])
    messages = USER_MSG
    assert client.chat.completions.create(model="fake-chat", messages=messages).choices

    team_key = _seed_team_key(_database_url(gw), team_id)
    admin.ok("/team/unblock", {"team_id": team_id})  # any change reloads the key cache
    team_client = _chat(gw, team_key)
    assert team_client.chat.completions.create(model="fake-chat", messages=messages).choices

    admin.ok("/team/block", {"team_id": team_id})
    with pytest.raises(openai.APIStatusError) as refused:
        team_client.chat.completions.create(model="fake-chat", messages=messages)
    assert refused.value.status_code in (401, 403)
    assert "block" in str(refused.value.message)
    assert admin.ok("/team/info", team_id=team_id)["team_info"]["blocked"] is True

    admin.ok("/team/unblock", {"team_id": team_id})
    assert team_client.chat.completions.create(model="fake-chat", messages=messages).choices

    admin.ok("/team/delete", {"team_ids": [team_id]})
    with pytest.raises(openai.AuthenticationError):
        team_client.chat.completions.create(model="fake-chat", messages=messages)
    assert client.chat.completions.create(model="fake-chat", messages=messages).choices


def test_changes_are_audited(gw: GatewayProcess, admin: Admin) -> None:
    import asyncio

    from bastion.storage.database import Database
    from bastion.storage.urls import normalize_database_url

    team_id = admin.ok("/team/new", {"team_alias": "audited"})["team_id"]
    admin.ok("/team/update", {"team_id": team_id, "rpm_limit": 3})

    async def entries() -> list[tuple[str, object, object]]:
        assert gw.config_path is not None
        import yaml

        url = yaml.safe_load(gw.config_path.read_text())["general_settings"]["database_url"]
        db = Database.connect(normalize_database_url(url))
        try:
            async with db.transaction() as store:
                page = await store.audit.list(table_name="teams", object_id=team_id)
                return [(e.action, e.before_value, e.after_value) for e in page.items]
        finally:
            await db.dispose()

    rows = asyncio.run(entries())
    actions = sorted(action for action, _, _ in rows)
    assert actions == ["created", "updated"]
    update = next(r for r in rows if r[0] == "updated")
    assert isinstance(update[1], dict) and isinstance(update[2], dict)
    assert update[1]["rpm_limit"] is None and update[2]["rpm_limit"] == 3
