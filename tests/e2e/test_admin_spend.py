"""/spend/logs and /global/spend/* over HTTP against seeded spend (SQLite and
PostgreSQL): exact Decimal sums per team, key, model, customer and day, LiteLLM's
shapes, date validation, and who may read what (the permission matrix for every
customer, budget and spend endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresServer
from tests.e2e.helpers import MASTER_KEY, assert_openai_error, auth, running
from tests.support.admin_seed import (
    ADMIN_KEY,
    INTERNAL_KEY,
    PLAIN_KEY,
    TEAM_ADMIN_KEY,
    VIEWER_KEY,
    Seeded,
    seed,
)
from tests.support.gateway import GatewayProcess


def D(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, Seeded]]:
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('spend') / 'bastion.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    try:
        seeded = seed(url)
        config = {"general_settings": {"master_key": MASTER_KEY, "database_url": url}}
        with running(config) as process:
            yield process, seeded
    finally:
        if server is not None:
            server.drop_database(url)


@pytest.fixture
def gw(env: tuple[GatewayProcess, Seeded]) -> GatewayProcess:
    return env[0]


@pytest.fixture
def s(env: tuple[GatewayProcess, Seeded]) -> Seeded:
    return env[1]


def get(gw: GatewayProcess, path: str, key: str = MASTER_KEY, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers=auth(key), timeout=10)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


# -- /global/spend/report ---------------------------------------------------------------


def test_report_by_team_per_day_with_model_and_key(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(get(gw, "/global/spend/report", start_date=str(s.d1), end_date=str(s.d2)))
    assert [r["group_by_day"][:10] for r in rows] == [str(s.d1), str(s.d2)]
    alice, bob, plain = (s.hashes[k] for k in (TEAM_ADMIN_KEY, INTERNAL_KEY, PLAIN_KEY))
    day1 = {t["team_name"]: t for t in rows[0]["teams"]}
    assert set(day1) == {"Alpha"}
    assert D(day1["Alpha"]["total_spend"]) == Decimal("0.12")
    assert [
        (m["model"], m["api_key"], D(m["spend"]), m["total_tokens"])
        for m in day1["Alpha"]["metadata"]
    ] == [("gpt-4o", alice, Decimal("0.1"), 150), ("gpt-4o-mini", alice, Decimal("0.02"), 30)]
    day2 = {t["team_name"]: t for t in rows[1]["teams"]}
    assert {k: D(v["total_spend"]) for k, v in day2.items()} == {
        "Alpha": Decimal("0.000000007"),
        "Beta": Decimal("1.000000001"),
        "Unassigned Team": Decimal("0.3"),
    }
    assert day2["Beta"]["metadata"] == [
        {"model": "claude", "api_key": plain, "spend": 1.000000001, "total_tokens": 15}
    ]
    assert day2["Unassigned Team"]["metadata"][0]["api_key"] == bob


def test_report_by_team_filtered_to_one_team(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(
        get(gw, "/global/spend/report", start_date=str(s.d0), end_date=str(s.today),
            team_id="team-b")
    )  # fmt: skip
    assert [[t["team_name"] for t in r["teams"]] for r in rows] == [["Beta"]]


def test_report_by_customer(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(
        get(gw, "/global/spend/report", start_date=str(s.d1), end_date=str(s.d2),
            group_by="customer")
    )  # fmt: skip
    day1 = {c["customer"]: D(c["total_spend"]) for c in rows[0]["customers"]}
    day2 = {c["customer"]: D(c["total_spend"]) for c in rows[1]["customers"]}
    assert day1 == {"cust-1": Decimal("0.12")}
    assert day2 == {"cust-2": Decimal("0.3"), None: Decimal("1.000000008")}


def test_report_by_api_key_totals_and_models(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(
        get(gw, "/global/spend/report", start_date=str(s.d1), end_date=str(s.d2),
            group_by="api_key")
    )  # fmt: skip
    alice, bob, plain = (s.hashes[k] for k in (TEAM_ADMIN_KEY, INTERNAL_KEY, PLAIN_KEY))
    assert [r["api_key"] for r in rows] == [plain, bob, alice]  # highest spend first
    by_key = {r["api_key"]: r for r in rows}
    a = by_key[alice]
    assert D(a["total_cost"]) == Decimal("0.120000007")
    assert (a["total_input_tokens"], a["total_output_tokens"]) == (121, 61)
    assert [(m["model"], D(m["total_cost"]), m["total_input_tokens"]) for m in
            a["model_details"]] == [
        ("gpt-4o", Decimal("0.100000007"), 101),
        ("gpt-4o-mini", Decimal("0.02"), 20),
    ]  # fmt: skip
    assert D(by_key[bob]["total_cost"]) == Decimal("0.3")  # the 40-day-old row is outside


def test_report_for_one_key_or_one_user(gw: GatewayProcess, s: Seeded) -> None:
    days = {"start_date": str(s.d1), "end_date": str(s.d2)}
    for key in (TEAM_ADMIN_KEY, s.hashes[TEAM_ADMIN_KEY]):  # the raw key or its hash
        rows = ok(get(gw, "/global/spend/report", api_key=key, **days))
        assert [(r["api_key"], D(r["total_cost"])) for r in rows] == [
            (s.hashes[TEAM_ADMIN_KEY], Decimal("0.120000007"))
        ]
    rows = ok(get(gw, "/global/spend/report", internal_user_id="bob", start_date=str(s.d0),
                  end_date=str(s.today)))  # fmt: skip
    assert [(r["api_key"], D(r["total_cost"])) for r in rows] == [
        (s.hashes[INTERNAL_KEY], Decimal("5.3"))
    ]
    assert [(m["model"], m["total_input_tokens"]) for m in rows[0]["model_details"]] == [
        ("gpt-4o", 301)
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "2024-1-01", "end_date": "2024-01-02"}, "start_date"),
        ({"start_date": "2024-01-01", "end_date": "02/01/2024"}, "end_date"),
        ({"start_date": "2024-01-01"}, "end_date"),
        ({"start_date": "2024-01-05", "end_date": "2024-01-02"}, "end_date"),
        ({"start_date": "2024-01-01", "end_date": "2024-01-02", "group_by": "org"}, "group_by"),
    ],
)
def test_report_bad_parameters_are_400_naming_the_field(
    gw: GatewayProcess, params: dict[str, str], field: str
) -> None:
    error = assert_openai_error(get(gw, "/global/spend/report", **params), 400)
    assert error["param"] == field


# -- the 30-day views --------------------------------------------------------------------


def test_global_spend_keys_top_n_with_alias(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(get(gw, "/global/spend/keys"))
    assert [(r["key_alias"], D(r["total_spend"])) for r in rows] == [
        ("plain-key", Decimal("1.000000001")),
        ("bob-key", Decimal("0.3")),
        ("alice-key", Decimal("0.120000007")),
    ]
    assert len(ok(get(gw, "/global/spend/keys", limit=2))) == 2
    assert assert_openai_error(get(gw, "/global/spend/keys", limit=0), 400)["param"] == "limit"


def test_internal_user_sees_only_their_own_keys_and_models(gw: GatewayProcess) -> None:
    rows = ok(get(gw, "/global/spend/keys", TEAM_ADMIN_KEY))
    assert [(r["key_alias"], D(r["total_spend"])) for r in rows] == [
        ("alice-key", Decimal("0.120000007"))
    ]
    models = ok(get(gw, "/global/spend/models", TEAM_ADMIN_KEY))
    assert [(m["model"], D(m["total_spend"])) for m in models] == [
        ("gpt-4o", Decimal("0.100000007")),
        ("gpt-4o-mini", Decimal("0.02")),
    ]


def test_global_spend_models(gw: GatewayProcess) -> None:
    rows = ok(get(gw, "/global/spend/models"))
    assert [(m["model"], D(m["total_spend"])) for m in rows] == [
        ("claude", Decimal("1.000000001")),
        ("gpt-4o", Decimal("0.400000007")),
        ("gpt-4o-mini", Decimal("0.02")),
    ]
    assert [m["model"] for m in ok(get(gw, "/global/spend/models", limit=1))] == ["claude"]


def test_global_spend_teams(gw: GatewayProcess, s: Seeded) -> None:
    body = ok(get(gw, "/global/spend/teams"))
    assert sorted(body["teams"]) == ["Alpha", "Beta"]
    assert [(t["team_id"], D(t["total_spend"])) for t in body["total_spend_per_team"]] == [
        ("Beta", Decimal("1.000000001")),
        ("Alpha", Decimal("0.120000007")),
    ]
    daily = {d["date"]: {k: D(v) for k, v in d.items() if k != "date"} for d in body["daily_spend"]}
    assert daily == {
        str(s.d1): {"Alpha": Decimal("0.12")},
        str(s.d2): {"Alpha": Decimal("0.000000007"), "Beta": Decimal("1.000000001")},
    }


# -- /spend/logs ------------------------------------------------------------------------


def test_spend_logs_by_raw_key_or_hash_newest_first(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(get(gw, "/spend/logs", api_key=TEAM_ADMIN_KEY))
    assert [r["request_id"] for r in rows] == ["r5", "r2", "r1"]
    assert ok(get(gw, "/spend/logs", api_key=s.hashes[TEAM_ADMIN_KEY])) == rows
    first = rows[-1]
    assert first["api_key"] == s.hashes[TEAM_ADMIN_KEY]
    assert (D(first["spend"]), first["total_tokens"], first["model"]) == (
        Decimal("0.1"), 150, "gpt-4o",
    )  # fmt: skip
    assert first["user"] == "alice" and first["team_id"] == "team-a"
    assert first["startTime"].startswith(f"{s.d1}T10:00:00")
    assert TEAM_ADMIN_KEY not in str(rows)


def test_spend_logs_filters(gw: GatewayProcess, s: Seeded) -> None:
    assert [r["request_id"] for r in ok(get(gw, "/spend/logs", request_id="r3"))] == ["r3"]
    assert [r["request_id"] for r in ok(get(gw, "/spend/logs", user_id="bob"))] == ["r3", "r6"]
    rows = ok(get(gw, "/spend/logs", start_date=str(s.d1), end_date=str(s.d2), summarize="false"))
    assert [r["request_id"] for r in rows] == ["r5", "r4", "r3", "r2", "r1"]


def test_spend_logs_daily_summary(gw: GatewayProcess, s: Seeded) -> None:
    rows = ok(get(gw, "/spend/logs", start_date=str(s.d1), end_date=str(s.today)))
    assert [r["startTime"] for r in rows] == [str(s.d1), str(s.d2), str(s.today)]
    assert D(rows[0]["spend"]) == Decimal("0.12")
    assert {k: D(v) for k, v in rows[0]["models"].items()} == {
        "gpt-4o": Decimal("0.1"),
        "gpt-4o-mini": Decimal("0.02"),
    }
    assert D(rows[1]["spend"]) == Decimal("1.300000008")
    assert {k: D(v) for k, v in rows[1]["users"].items()} == {
        "bob": Decimal("0.3"), "": Decimal("1.000000001"), "alice": Decimal("0.000000007"),
    }  # fmt: skip
    assert D(rows[1][s.hashes[PLAIN_KEY]]) == Decimal("1.000000001")
    assert rows[2] == {"startTime": str(s.today), "spend": 0, "users": {}, "models": {}}


def test_spend_logs_bad_date_is_400(gw: GatewayProcess) -> None:
    error = assert_openai_error(get(gw, "/spend/logs", start_date="yesterday"), 400)
    assert error["param"] == "start_date"


def test_internal_user_reads_only_their_own_logs(gw: GatewayProcess) -> None:
    rows = ok(get(gw, "/spend/logs", INTERNAL_KEY))
    assert [r["request_id"] for r in rows] == ["r3", "r6"]
    assert_openai_error(get(gw, "/spend/logs", INTERNAL_KEY, user_id="alice"), 403)
    assert ok(get(gw, "/spend/logs", INTERNAL_KEY, api_key=TEAM_ADMIN_KEY)) == []


# -- who may do what ----------------------------------------------------------------------

CALLERS = {
    "master": MASTER_KEY,
    "proxy_admin": ADMIN_KEY,
    "viewer": VIEWER_KEY,
    "team_admin": TEAM_ADMIN_KEY,
    "internal_user": INTERNAL_KEY,
    "plain_key": PLAIN_KEY,
}
ADMINS = {"master", "proxy_admin"}
READERS = ADMINS | {"viewer"}
USERS = READERS | {"team_admin", "internal_user"}

READS: list[tuple[str, dict[str, str], set[str]]] = [
    ("/customer/list", {}, READERS),
    ("/budget/list", {}, READERS),
    ("/global/spend/report", {"start_date": "2024-01-01", "end_date": "2024-01-02"}, READERS),
    ("/global/spend/teams", {}, READERS),
    ("/global/spend/keys", {}, USERS),
    ("/global/spend/models", {}, USERS),
    ("/spend/logs", {}, USERS),
]


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize(("path", "params", "allowed"), READS, ids=[r[0] for r in READS])
def test_read_permissions(
    gw: GatewayProcess, caller: str, path: str, params: dict[str, str], allowed: set[str]
) -> None:
    response = get(gw, path, CALLERS[caller], **params)
    assert response.status_code == (200 if caller in allowed else 403), response.text


@pytest.mark.parametrize("caller", list(CALLERS))
def test_write_permissions(gw: GatewayProcess, caller: str) -> None:
    key = CALLERS[caller]
    expected = 200 if caller in ADMINS else 403
    writes: list[tuple[str, dict[str, Any]]] = [
        ("/budget/new", {"budget_id": f"perm-{caller}", "max_budget": 1}),
        ("/customer/new", {"user_id": f"perm-{caller}", "budget_id": "perm-shared"}),
        ("/customer/block", {"user_ids": [f"perm-{caller}"]}),
        ("/customer/unblock", {"user_ids": [f"perm-{caller}"]}),
        ("/customer/update", {"user_id": f"perm-{caller}", "alias": "x"}),
        ("/budget/update", {"budget_id": f"perm-{caller}", "max_budget": 2}),
        ("/customer/delete", {"user_ids": [f"perm-{caller}"]}),
        ("/budget/delete", {"id": f"perm-{caller}"}),
    ]
    httpx.post(
        gw.url + "/budget/new",
        json={"budget_id": "perm-shared"},
        headers=auth(MASTER_KEY),
        timeout=10,
    )  # fmt: skip  (409 after the first)
    for path, body in writes:
        response = httpx.post(gw.url + path, json=body, headers=auth(key), timeout=10)
        assert response.status_code == expected, (path, response.text)
