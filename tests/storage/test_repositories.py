"""Every repository operation on SQLite and PostgreSQL, with typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bastion.core.errors import InvalidRequestError
from bastion.policy.durations import DurationError
from bastion.storage import (
    Database,
    DuplicateError,
    InUseError,
    MissingReferenceError,
    NotFoundError,
    hash_key,
    key_display_name,
)
from bastion.storage.models import (
    Budget,
    EndUser,
    Organization,
    Team,
    User,
    VirtualKey,
)
from bastion.storage.repositories import audit_snapshot
from tests.storage.conftest import FakeClock


def key(secret: str = "sk-test-0001", **fields: object) -> VirtualKey:
    return VirtualKey(token=hash_key(secret), key_name=key_display_name(secret), **fields)


async def test_organization_crud(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as s:
        org = await s.organizations.create(
            Organization(organization_alias="acme", max_budget=Decimal("100.5"), models=["gpt-4o"])
        )
    assert org.organization_id and org.spend == Decimal(0)
    clock.advance(minutes=5)
    async with db.transaction() as s:
        got = await s.organizations.get(org.organization_id)
        assert got.models == ["gpt-4o"] and got.max_budget == Decimal("100.5")
        assert got.created_at == datetime(2025, 3, 12, 15, 30, tzinfo=UTC)
        updated = await s.organizations.update(
            org.organization_id, {"metadata": {"cost_center": "42"}, "budget_duration": "1mo"}
        )
        assert updated.metadata_ == {"cost_center": "42"}
        assert updated.budget_reset_at == datetime(2025, 4, 1, tzinfo=UTC)
        assert updated.updated_at == clock.now
    async with db.transaction() as s:
        await s.organizations.delete(org.organization_id)
        with pytest.raises(NotFoundError) as info:
            await s.organizations.get(org.organization_id)
    assert info.value.status == 404 and org.organization_id in info.value.message


async def test_team_crud_filters_and_pagination(db: Database) -> None:
    async with db.transaction() as s:
        org = await s.organizations.create(Organization(organization_alias="acme"))
        for i in range(5):
            await s.teams.create(
                Team(
                    team_id=f"t{i}",
                    team_alias=f"team-{i}",
                    organization_id=org.organization_id if i % 2 == 0 else None,
                    max_budget=Decimal(10),
                    budget_duration="7d",
                    tpm_limit=1000,
                )
            )
    async with db.transaction() as s:
        page = await s.teams.list(page=1, size=2)
        assert (
            page.total == 5 and page.pages == 3 and [t.team_id for t in page.items] == ["t0", "t1"]
        )
        last = await s.teams.list(page=3, size=2)
        assert [t.team_id for t in last.items] == ["t4"]
        in_org = await s.teams.list(organization_id=org.organization_id)
        assert [t.team_id for t in in_org.items] == ["t0", "t2", "t4"]
        team = await s.teams.find_by_alias("team-3")
        assert team is not None and team.team_id == "t3"
        assert team.budget_reset_at == datetime(2025, 3, 17, tzinfo=UTC)  # next Monday
        team = await s.teams.add_models("t3", ["gpt-4o", "claude"])
        team = await s.teams.add_models("t3", ["claude", "gemini"])
        assert team.models == ["gpt-4o", "claude", "gemini"]
        team = await s.teams.remove_models("t3", ["claude"])
        assert team.models == ["gpt-4o", "gemini"]
        team = await s.teams.update("t3", {"blocked": True})
        assert team.blocked is True
        with pytest.raises(InvalidRequestError, match="page must be 1 or more"):
            await s.teams.list(page=0)
        with pytest.raises(InvalidRequestError, match="unknown field 'colour'"):
            await s.teams.list(colour="red")


async def test_duplicates_are_typed_errors(db: Database) -> None:
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="t1", team_alias="search"))
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.teams.create(Team(team_id="t2", team_alias="search"))
    assert info.value.field == "team_alias" and info.value.status == 409
    assert "'search'" in info.value.message
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.teams.create(Team(team_id="t1"))
    assert info.value.field == "team_id"
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="t3", team_alias="other"))
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.teams.update("t3", {"team_alias": "search"})
    assert info.value.field == "team_alias"
    async with db.transaction() as s:
        await s.users.create(User(user_id="u1", user_email="a@example.com"))
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.users.create(User(user_id="u2", user_email="a@example.com"))
    assert info.value.field == "user_email"
    async with db.transaction() as s:
        await s.keys.create(key("sk-one", key_alias="ci"))
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.keys.create(key("sk-two", key_alias="ci"))
    assert info.value.field == "key_alias"
    with pytest.raises(DuplicateError) as info:
        async with db.transaction() as s:
            await s.keys.create(key("sk-one"))
    # The hash of a key is never echoed: the field is reported as "key".
    assert info.value.field == "key" and hash_key("sk-one") not in info.value.message
    # A failed transaction left nothing behind.
    async with db.transaction() as s:
        assert (await s.teams.list()).total == 2


async def test_missing_references_and_in_use(db: Database) -> None:
    with pytest.raises(MissingReferenceError) as info:
        async with db.transaction() as s:
            await s.keys.create(key(team_id="no-such-team"))
    assert info.value.field == "team_id" and info.value.status == 400
    assert "team_id 'no-such-team' does not exist" in info.value.message
    with pytest.raises(MissingReferenceError, match="organization_id"):
        async with db.transaction() as s:
            await s.teams.create(Team(team_id="t", organization_id="nope"))
    async with db.transaction() as s:
        org = await s.organizations.create(Organization(organization_id="o1"))
        await s.teams.create(Team(team_id="t", organization_id=org.organization_id))
        budget = await s.budgets.create(Budget(budget_id="b1", max_budget=Decimal(5)))
        await s.end_users.create(EndUser(user_id="cust", budget_id=budget.budget_id))
    with pytest.raises(InUseError) as in_use:
        async with db.transaction() as s:
            await s.organizations.delete("o1")
    assert in_use.value.status == 409
    with pytest.raises(InUseError):
        async with db.transaction() as s:
            await s.budgets.delete("b1")
    with pytest.raises(MissingReferenceError, match="budget_id"):
        async with db.transaction() as s:
            await s.end_users.update("cust", {"budget_id": "b2"})


async def test_bad_values_are_refused(db: Database) -> None:
    async with db.transaction() as s:
        with pytest.raises(InvalidRequestError, match="max_budget must not be negative"):
            await s.teams.create(Team(max_budget=Decimal(-1)))
        with pytest.raises(DurationError, match="invalid budget_duration '30x'"):
            await s.keys.create(key(budget_duration="30x"))
        with pytest.raises(InvalidRequestError, match="invalid user_role 'god'"):
            await s.users.create(User(user_id="u", user_role="god"))
        with pytest.raises(InvalidRequestError, match="rpm_limit must not be negative"):
            await s.users.create(User(user_id="u", rpm_limit=-5))
        with pytest.raises(InvalidRequestError, match="created_at cannot be changed"):
            await s.teams.update("x", {"created_at": datetime.now(UTC)})


async def test_users_and_memberships(db: Database) -> None:
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="t1", team_member_budget=Decimal(5)))
        await s.teams.create(Team(team_id="t2"))
        await s.users.create(
            User(user_id="ann", user_email="Ann@Example.com", user_role="proxy_admin")
        )
        await s.users.create(User(user_id="bob"))
        m = await s.members.add(
            "t1", "ann", "admin", max_budget_in_team=Decimal("2.5"), budget_duration="1d"
        )
        assert m.budget_reset_at == datetime(2025, 3, 13, tzinfo=UTC)
        await s.members.add("t1", "bob")
        await s.members.add("t2", "bob")
        with pytest.raises(DuplicateError, match="team member"):
            await s.members.add("t1", "bob")
        with pytest.raises(MissingReferenceError, match="user_id 'zed'"):
            await s.members.add("t1", "zed")
        with pytest.raises(InvalidRequestError, match="invalid team member role 'owner'"):
            await s.members.add("t2", "ann", "owner")
    async with db.transaction() as s:
        assert (await s.users.find_by_email("Ann@Example.com")) is not None
        admins = await s.users.search(user_role="proxy_admin")
        assert [u.user_id for u in admins.items] == ["ann"]
        assert [u.user_id for u in (await s.users.search(email_contains="example")).items] == [
            "ann"
        ]
        members = await s.members.list(team_id="t1")
        assert {(m.user_id, m.role) for m in members.items} == {("ann", "admin"), ("bob", "user")}
        assert [t.team_id for t in await s.teams.teams_of_user("bob")] == ["t1", "t2"]
        m = await s.members.update("t1", "bob", {"role": "admin", "max_budget_in_team": Decimal(1)})
        assert m.role == "admin"
        await s.members.remove("t1", "bob")
        with pytest.raises(NotFoundError):
            await s.members.get("t1", "bob")
    # Deleting a user removes their memberships and keys (as LiteLLM does).
    async with db.transaction() as s:
        await s.keys.create(key("sk-bob", user_id="bob"))
        await s.users.delete("bob")
    async with db.transaction() as s:
        assert (await s.members.list(user_id="bob")).total == 0
        assert await s.keys.find(hash_key("sk-bob")) is None


async def test_keys(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="t1"))
        await s.teams.create(Team(team_id="t2"))
        created = await s.keys.create(
            key(
                "sk-abcdefghijklmnopqrstuv",
                key_alias="prod",
                team_id="t1",
                models=["gpt-4o"],
                aliases={"fast": "gpt-4o-mini"},
                model_max_budget={"gpt-4o": {"budget_limit": "1.0", "time_period": "1d"}},
                tags=["prod"],
                max_budget=Decimal("0.000000001"),
                expires=clock.now + timedelta(days=30),
            )
        )
        assert created.key_name == "sk-...stuv"
        await s.keys.create(key("sk-2", team_id="t1"))
        await s.keys.create(key("sk-3", team_id="t2"))
    async with db.transaction() as s:
        prod = await s.keys.find_by_alias("prod")
        assert prod is not None and prod.max_budget == Decimal("0.000000001")
        assert prod.expires == clock.now + timedelta(days=30)
        assert prod.model_max_budget["gpt-4o"]["time_period"] == "1d"
        assert (await s.keys.search(team_id="t1")).total == 2
        moved = await s.keys.move_to_team(hash_key("sk-2"), "t2")
        assert moved.team_id == "t2"
        assert (await s.keys.set_blocked(hash_key("sk-3"), True)).blocked
        valid_later = await s.keys.search(include_expired_before=clock.now + timedelta(days=31))
        assert hash_key("sk-abcdefghijklmnopqrstuv") not in {k.token for k in valid_later.items}
    with pytest.raises(NotFoundError) as info:
        async with db.transaction() as s:
            await s.keys.delete_many([hash_key("sk-2"), hash_key("sk-missing")])
    assert info.value.param == "key"
    async with db.transaction() as s:
        deleted = await s.keys.delete_many([hash_key("sk-2")], aliases=["prod"])
        assert len(deleted) == 2
        assert (await s.keys.list()).total == 1
    # Deleting a team deletes its keys.
    async with db.transaction() as s:
        await s.teams.delete("t2")
        assert (await s.keys.list()).total == 0


async def test_key_regeneration_with_grace_period(db: Database, clock: FakeClock) -> None:
    old, new = hash_key("sk-old"), hash_key("sk-new")
    async with db.transaction() as s:
        await s.keys.create(key("sk-old", key_alias="ci", spend=Decimal("1.25")))
    async with db.transaction() as s:
        row = await s.keys.regenerate(
            old, new, new_key_name="sk-...-new", grace_until=clock.now + timedelta(hours=1)
        )
        assert row.token == new and row.key_alias == "ci" and row.spend == Decimal("1.25")
        assert await s.keys.find(old) is None
        [prev] = await s.keys.previous_tokens(new)
        assert prev.token == old and prev.valid_until == clock.now + timedelta(hours=1)
        with pytest.raises(DuplicateError):
            await s.keys.regenerate(new, old)
    # A second regeneration carries the earlier grace entry along to the newest hash.
    newest = hash_key("sk-newest")
    async with db.transaction() as s:
        await s.keys.regenerate(new, newest)
        assert {p.token for p in await s.keys.previous_tokens(newest)} == {old}
    clock.advance(hours=2)
    async with db.transaction() as s:
        assert await s.keys.purge_previous_tokens(clock.now) == 1
        assert await s.keys.previous_tokens(newest) == []


async def test_end_users_and_budgets(db: Database) -> None:
    async with db.transaction() as s:
        b = await s.budgets.create(
            Budget(max_budget=Decimal(10), budget_duration="1mo", rpm_limit=5, tpm_limit=100)
        )
        assert b.budget_reset_at == datetime(2025, 4, 1, tzinfo=UTC)
        await s.end_users.create(EndUser(user_id="c1", alias="Customer", budget_id=b.budget_id))
        await s.end_users.create(EndUser(user_id="c2", allowed_model_region="eu"))
        blocked = await s.end_users.set_blocked(["c1", "c2"], True)
        assert all(u.blocked for u in blocked)
        assert (await s.end_users.list(budget_id=b.budget_id)).total == 1
        updated = await s.budgets.update(b.budget_id, {"max_budget": Decimal(20)})
        assert updated.max_budget == Decimal(20)
        with pytest.raises(NotFoundError):
            await s.end_users.set_blocked(["c3"], False)


async def test_stored_models_encrypt_secrets_at_rest(db: Database) -> None:
    params = {
        "model": "openai/gpt-4o",
        "api_key": "sk-provider-secret",
        "api_base": "https://example.test/v1",
        "aws_secret_access_key": "AWSSECRET",
        "vertex_credentials": {"private_key": "PEM"},
        "litellm_credential_name": "shared",
    }
    async with db.transaction() as s:
        stored = await s.models.create("gpt-4o", params, {"mode": "chat"}, created_by="admin")
    assert stored.litellm_params == params
    assert stored.model_info == {"mode": "chat", "id": stored.model_id}
    async with db.engine.connect() as conn:
        raw = str((await conn.execute(sa.text("SELECT litellm_params FROM db_models"))).scalar())
    for secret in ("sk-provider-secret", "AWSSECRET", "PEM"):
        assert secret not in raw
    assert "https://example.test/v1" in raw and "shared" in raw
    async with db.transaction() as s:
        again = await s.models.update(
            stored.model_id, litellm_params={"api_key": "sk-rotated", "api_base": None}
        )
        assert (
            again.litellm_params["api_key"] == "sk-rotated"
            and "api_base" not in again.litellm_params
        )
        assert [m.model_name for m in (await s.models.list(model_name="gpt-4o")).items] == [
            "gpt-4o"
        ]
        assert len(await s.models.all()) == 1
        await s.models.delete(stored.model_id)
        with pytest.raises(NotFoundError):
            await s.models.get(stored.model_id)


async def test_credentials_encrypted_at_rest(db: Database) -> None:
    async with db.transaction() as s:
        cred = await s.credentials.create(
            "azure-prod", {"api_key": "azure-secret", "api_base": "https://x"}, {"owner": "ops"}
        )
        assert cred.credential_values["api_key"] == "azure-secret"
        with pytest.raises(DuplicateError, match="credential_name"):
            await s.credentials.create("azure-prod", {})
    async with db.engine.connect() as conn:
        raw = str(
            (await conn.execute(sa.text("SELECT credential_values FROM credentials"))).scalar()
        )
    assert "azure-secret" not in raw and "https://x" not in raw
    async with db.transaction() as s:
        cred = await s.credentials.update("azure-prod", credential_values={"api_key": "new"})
        assert cred.credential_values == {"api_key": "new"} and cred.credential_info == {
            "owner": "ops"
        }
        assert [c.credential_name for c in (await s.credentials.list()).items] == ["azure-prod"]
        await s.credentials.delete("azure-prod")
        with pytest.raises(NotFoundError):
            await s.credentials.get("azure-prod")


async def test_audit_log(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as s:
        team = await s.teams.create(Team(team_id="t1", max_budget=Decimal("1.5")))
        await s.audit.record(
            action="created",
            table_name="teams",
            object_id="t1",
            changed_by="admin",
            after=audit_snapshot(team),
        )
        k = await s.keys.create(key("sk-audit"))
        snap = audit_snapshot(k)
        assert snap is not None and "token" not in snap and snap["spend"] == "0"
        clock.advance(days=40)
        await s.audit.record(
            action="deleted",
            table_name="teams",
            object_id="t1",
            changed_by="ann",
            before=audit_snapshot(team),
        )
    async with db.transaction() as s:
        entries = await s.audit.list(table_name="teams", object_id="t1")
        assert [e.action for e in entries.items] == ["deleted", "created"]
        assert entries.items[1].after_value["max_budget"] == "1.5"
        assert (await s.audit.list(changed_by="ann")).total == 1
        assert await s.audit.delete_older_than(clock.now - timedelta(days=30)) == 1
        assert (await s.audit.list()).total == 1


async def test_integrity_errors_from_the_database_are_typed(db: Database) -> None:
    """The race the pre-checks cannot close: the row vanished between check and insert."""
    from bastion.storage.repositories.teams import TeamRepository

    class Unchecked(TeamRepository):
        references = {}

    with pytest.raises(InvalidRequestError) as info:
        async with db.transaction() as s:
            await Unchecked(s.teams.ctx).create(Team(team_id="t", organization_id="gone"))
    if db.dialect == "postgresql":  # PostgreSQL names the constraint, so the field is known
        assert isinstance(info.value, MissingReferenceError)
        assert info.value.field == "organization_id" and info.value.value == "gone"
    else:
        assert "refers to a record that does not exist" in info.value.message
