"""/customer/* and /budget/* over HTTP (SQLite): LiteLLM's shapes, reusable budgets
shared by customers, block/unblock, validation (400/404/409 naming the field) and an
audit entry per change. Who may call them is in test_admin_spend's matrix."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bastion.storage.database import Database
from tests.e2e.helpers import MASTER_KEY, assert_openai_error, auth, running
from tests.support.admin_seed import ADMIN_KEY, seed
from tests.support.gateway import GatewayProcess


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('customers') / 'bastion.db'}"
    seed(url)
    config = {"general_settings": {"master_key": MASTER_KEY, "database_url": url}}
    with running(config) as process:
        yield process, url


@pytest.fixture
def gw(env: tuple[GatewayProcess, str]) -> GatewayProcess:
    return env[0]


def post(gw: GatewayProcess, path: str, body: Any, key: str = MASTER_KEY) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers=auth(key), timeout=10)


def get(gw: GatewayProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers=auth(MASTER_KEY), timeout=10)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error_param(response: httpx.Response, status: int) -> Any:
    return assert_openai_error(response, status)["param"]


# -- budgets ---------------------------------------------------------------------------


def test_budget_lifecycle(gw: GatewayProcess) -> None:
    created = ok(
        post(gw, "/budget/new", {"budget_id": "b-life", "max_budget": 10.5, "soft_budget": 8,
                                  "budget_duration": "30d", "tpm_limit": 1000, "rpm_limit": 10,
                                  "max_parallel_requests": 2})
    )  # fmt: skip
    assert created["budget_id"] == "b-life"
    assert (created["max_budget"], created["soft_budget"]) == (10.5, 8)
    assert (created["tpm_limit"], created["rpm_limit"], created["max_parallel_requests"]) == (
        1000, 10, 2,
    )  # fmt: skip
    assert created["budget_duration"] == "30d" and created["budget_reset_at"]
    updated = ok(post(gw, "/budget/update", {"budget_id": "b-life", "max_budget": 20}))
    assert updated["max_budget"] == 20 and updated["tpm_limit"] == 1000
    assert ok(get(gw, "/budget/info", budget_id="b-life"))[0]["max_budget"] == 20
    assert [b["budget_id"] for b in ok(post(gw, "/budget/info", {"budgets": ["b-life"]}))] == [
        "b-life"
    ]
    assert "b-life" in [b["budget_id"] for b in ok(get(gw, "/budget/list"))]
    assert ok(post(gw, "/budget/delete", {"id": "b-life"}))["budget_id"] == "b-life"
    assert error_param(get(gw, "/budget/info", budget_id="b-life"), 404) == "budget_id"


def test_budget_without_id_gets_one(gw: GatewayProcess) -> None:
    assert ok(post(gw, "/budget/new", {"max_budget": 1}))["budget_id"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/budget/new", {"budget_id": "b-bad", "max_budget": -1}, 400, "max_budget"),
        ("/budget/new", {"budget_id": "b-bad", "budget_duration": "30x"}, 400, None),
        ("/budget/new", {"budget_id": "b-bad", "tpm_limit": "many"}, 400, "tpm_limit"),
        ("/budget/update", {"max_budget": 1}, 400, "budget_id"),
        ("/budget/update", {"budget_id": "nope", "max_budget": 1}, 404, "budget_id"),
        ("/budget/delete", {}, 400, "id"),
        ("/budget/delete", {"id": "nope"}, 404, "budget_id"),
    ],
)
def test_budget_validation(
    gw: GatewayProcess, path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = post(gw, path, body)
    param = error_param(response, status)
    if field is not None:
        assert param == field
    else:
        assert "budget_duration" in response.text


def test_duplicate_budget_is_409(gw: GatewayProcess) -> None:
    ok(post(gw, "/budget/new", {"budget_id": "b-dup"}))
    assert error_param(post(gw, "/budget/new", {"budget_id": "b-dup"}), 409) == "budget_id"


def test_budget_in_use_cannot_be_deleted(gw: GatewayProcess) -> None:
    ok(post(gw, "/budget/new", {"budget_id": "b-used", "max_budget": 5}))
    ok(post(gw, "/customer/new", {"user_id": "c-used", "budget_id": "b-used"}))
    assert_openai_error(post(gw, "/budget/delete", {"id": "b-used"}), 409)
    ok(post(gw, "/customer/delete", {"user_ids": ["c-used"]}))
    ok(post(gw, "/budget/delete", {"id": "b-used"}))


def test_budget_info_needs_an_id(gw: GatewayProcess) -> None:
    assert error_param(get(gw, "/budget/info"), 400) == "budget_id"
    assert error_param(post(gw, "/budget/info", {"budgets": []}), 400) == "budgets"


# -- customers -------------------------------------------------------------------------


def test_customer_with_inline_budget_gets_its_own_budget_row(gw: GatewayProcess) -> None:
    body = ok(
        post(gw, "/customer/new", {"user_id": "c-inline", "alias": "Acme", "max_budget": 3,
                                    "rpm_limit": 5, "allowed_model_region": "eu"})
    )  # fmt: skip
    assert body["user_id"] == "c-inline" and body["alias"] == "Acme"
    assert body["blocked"] is False and body["spend"] == 0
    assert body["allowed_model_region"] == "eu"
    budget = body["litellm_budget_table"]
    assert body["budget_id"] == budget["budget_id"]
    assert (budget["max_budget"], budget["rpm_limit"]) == (3, 5)
    # an update of a budget field updates that row
    updated = ok(post(gw, "/customer/update", {"user_id": "c-inline", "max_budget": 4}))
    assert updated["budget_id"] == body["budget_id"]
    assert updated["litellm_budget_table"]["max_budget"] == 4
    assert updated["alias"] == "Acme"
    info = ok(get(gw, "/customer/info", end_user_id="c-inline"))
    assert info == updated


def test_customers_share_a_reusable_budget(gw: GatewayProcess) -> None:
    ok(post(gw, "/budget/new", {"budget_id": "b-shared", "max_budget": 100}))
    for user_id in ("c-s1", "c-s2"):
        ok(post(gw, "/customer/new", {"user_id": user_id, "budget_id": "b-shared"}))
    ok(post(gw, "/budget/update", {"budget_id": "b-shared", "max_budget": 50}))
    listed = {c["user_id"]: c for c in ok(get(gw, "/customer/list"))}
    for user_id in ("c-s1", "c-s2"):
        assert listed[user_id]["litellm_budget_table"]["max_budget"] == 50


def test_customer_validation(gw: GatewayProcess) -> None:
    both = {"user_id": "c-bad", "budget_id": "b-x", "max_budget": 1}
    assert error_param(post(gw, "/customer/new", both), 400) == "budget_id"
    missing = {"user_id": "c-bad", "budget_id": "no-such-budget"}
    assert error_param(post(gw, "/customer/new", missing), 400) == "budget_id"
    assert error_param(post(gw, "/customer/new", {"alias": "x"}), 400) == "user_id"
    assert error_param(post(gw, "/customer/new", {"user_id": ""}), 400) == "user_id"
    ok(post(gw, "/customer/new", {"user_id": "c-dup"}))
    assert error_param(post(gw, "/customer/new", {"user_id": "c-dup"}), 409) == "user_id"
    assert error_param(post(gw, "/customer/update", {"user_id": "nope"}), 404) == "user_id"
    assert error_param(get(gw, "/customer/info", end_user_id="nope"), 404) == "user_id"
    assert error_param(get(gw, "/customer/info"), 400) == "end_user_id"
    assert error_param(post(gw, "/customer/delete", {"user_ids": []}), 400) == "user_ids"
    assert_openai_error(post(gw, "/customer/new", "not an object"), 400)


def test_block_and_unblock(gw: GatewayProcess) -> None:
    ok(post(gw, "/customer/new", {"user_id": "c-block"}))
    blocked = ok(post(gw, "/customer/block", {"user_ids": ["c-block", "c-fresh"]}))
    assert [(u["user_id"], u["blocked"]) for u in blocked["blocked_users"]] == [
        ("c-block", True),
        ("c-fresh", True),  # blocking creates an unknown end user, as LiteLLM does
    ]
    assert ok(get(gw, "/customer/info", end_user_id="c-fresh"))["blocked"] is True
    unblocked = ok(post(gw, "/customer/unblock", {"user_ids": ["c-block"]}))
    assert unblocked["unblocked_users"][0]["blocked"] is False
    assert ok(get(gw, "/customer/info", end_user_id="c-block"))["blocked"] is False
    assert error_param(post(gw, "/customer/unblock", {"user_ids": ["nope"]}), 404) == "user_ids"


def test_delete_is_all_or_nothing(gw: GatewayProcess) -> None:
    ok(post(gw, "/customer/new", {"user_id": "c-del"}))
    assert error_param(post(gw, "/customer/delete", {"user_ids": ["c-del", "nope"]}), 404) == (
        "user_ids"
    )
    ok(get(gw, "/customer/info", end_user_id="c-del"))
    body = ok(post(gw, "/customer/delete", {"user_ids": ["c-del"]}))
    assert body["deleted_customers"] == 1
    assert_openai_error(get(gw, "/customer/info", end_user_id="c-del"), 404)


def test_spend_of_a_customer_comes_from_requests(gw: GatewayProcess) -> None:
    info = ok(get(gw, "/customer/info", end_user_id="cust-1"))
    assert Decimal(str(info["spend"])) == Decimal("0.12")
    assert info["litellm_budget_table"] is None


def test_changes_are_audited_with_who_made_them(env: tuple[GatewayProcess, str]) -> None:
    gw, url = env
    ok(post(gw, "/customer/new", {"user_id": "c-audit", "max_budget": 2}, key=ADMIN_KEY))
    ok(post(gw, "/customer/update", {"user_id": "c-audit", "alias": "A"}))

    async def entries() -> list[tuple[str, str, str | None]]:
        db = Database.connect(url)
        try:
            async with db.transaction() as store:
                page = await store.audit.list(object_id="c-audit")
                return [(e.action, e.table_name, e.changed_by) for e in page.items]
        finally:
            await db.dispose()

    rows = asyncio.run(entries())
    assert sorted(rows) == [
        ("created", "end_users", "admin-user"),
        ("updated", "end_users", "litellm_proxy_admin"),
    ]
