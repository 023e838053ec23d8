"""The cost ledger: a fixed set of calls replayed through a running gateway — streamed
and not, OpenAI and Anthropic clients, OpenAI, Anthropic and Gemini upstreams with
cached, cache-creation and reasoning tokens, two teams, several users and keys — and
every key, team and user total checked against hand-computed values, on SQLite and
PostgreSQL. The same gateway stores message bodies (store_prompts_in_spend_logs) and
puts the cost in each stream's usage (include_cost_in_streaming_usage); a second one,
with the defaults, stores no bodies and leaves the usage alone.

Per-token prices are set in the config so that each call's cost is obvious:

=========  ====================================================  ==========================
model      usage (fixed by the mock upstream)                     cost (USD)
=========  ====================================================  ==========================
gpt        1000 prompt (400 cached), 500 completion (200          600*0.002 + 400*0.0005
           reasoning)                                             + 300*0.008 + 200*0.01
                                                                  = 1.20+0.20+2.40+2.00 = 5.80
claude     100 input, 2000 cache read, 1000 cache write,          100*0.003 + 2000*0.0003
           300 output                                             + 1000*0.00375 + 300*0.015
                                                                  = 0.30+0.60+3.75+4.50 = 9.15
gemini     800 prompt (200 cached), 150 candidates + 250          600*0.001 + 200*0.00025
           thoughts                                               + 400*0.004
                                                                  = 0.60+0.05+1.60 = 2.25
=========  ====================================================  ==========================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import PostgresServer
from tests.e2e.helpers import MASTER_KEY, auth, running
from tests.mocks.fixed_usage_upstream import ANSWER, FixedUsageUpstream
from tests.support.gateway import GatewayProcess

UPSTREAM_KEY = "sk-upstream-ledger"
USAGE: dict[str, dict[str, Any]] = {
    "gpt-ledger": {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 400},
        "completion_tokens_details": {"reasoning_tokens": 200},
    },
    "claude-ledger": {
        "input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 1000,
        "output_tokens": 300,
    },
    "gemini-ledger": {
        "promptTokenCount": 800,
        "cachedContentTokenCount": 200,
        "candidatesTokenCount": 150,
        "thoughtsTokenCount": 250,
        "totalTokenCount": 1200,
    },
}
GPT, CLAUDE, GEMINI = Decimal("5.80"), Decimal("9.15"), Decimal("2.25")
COST = {"gpt": GPT, "claude": CLAUDE, "gemini": GEMINI}
TOKENS = {  # (prompt_tokens, completion_tokens) as the ledger rows record them
    "gpt": (1000, 500),
    "claude": (3100, 300),
    "gemini": (800, 400),
}


def models(base: str) -> list[dict[str, Any]]:
    return [
        {
            "model_name": "gpt",
            "litellm_params": {
                "model": "openai/gpt-ledger",
                "api_base": f"{base}/v1",
                "api_key": UPSTREAM_KEY,
                "input_cost_per_token": 0.002,
                "output_cost_per_token": 0.008,
                "cache_read_input_token_cost": 0.0005,
                "output_cost_per_reasoning_token": 0.01,
            },
        },
        {
            "model_name": "claude",
            "litellm_params": {
                "model": "anthropic/claude-ledger",
                "api_base": base,
                "api_key": UPSTREAM_KEY,
                "input_cost_per_token": 0.003,
                "output_cost_per_token": 0.015,
                "cache_read_input_token_cost": 0.0003,
                "cache_creation_input_token_cost": 0.00375,
            },
        },
        {
            "model_name": "gemini",
            "litellm_params": {
                "model": "gemini/gemini-ledger",
                "api_base": base,
                "api_key": UPSTREAM_KEY,
                "input_cost_per_token": 0.001,
                "output_cost_per_token": 0.004,
                "cache_read_input_token_cost": 0.00025,
            },
        },
    ]


@dataclass(frozen=True)
class Call:
    key: str  # alias of the key making the call
    model: str
    client: str  # "openai" or "anthropic" (the dialect the client speaks)
    stream: bool
    include_usage: bool = False


# key alias -> (team, user); "svc" is a team key that belongs to no user.
KEYS = {
    "alice-1": ("red", "alice"),
    "alice-2": ("red", "alice"),
    "bob": ("red", "bob"),
    "carol": ("blue", "carol"),
    "svc": ("blue", None),
}
CALLS = [
    Call("alice-1", "gpt", "openai", stream=False),
    Call("alice-1", "gpt", "openai", stream=True, include_usage=True),
    Call("alice-1", "claude", "anthropic", stream=False),
    Call("alice-2", "claude", "anthropic", stream=True),
    Call("alice-2", "gemini", "openai", stream=False),
    Call("bob", "gemini", "openai", stream=True),
    Call("bob", "claude", "openai", stream=False),  # translated to Anthropic and back
    Call("carol", "gpt", "openai", stream=True),  # usage chunk asked for on its behalf
    Call("carol", "claude", "openai", stream=True, include_usage=True),
    Call("svc", "gemini", "openai", stream=True, include_usage=True),
    Call("svc", "gpt", "openai", stream=False),
    Call("carol", "gemini", "openai", stream=False),
]
# Hand-computed totals: calls per key are listed above.
KEY_TOTALS = {
    "alice-1": Decimal("20.75"),  # gpt + gpt + claude = 5.80 + 5.80 + 9.15
    "alice-2": Decimal("11.40"),  # claude + gemini = 9.15 + 2.25
    "bob": Decimal("11.40"),  # gemini + claude
    "carol": Decimal("17.20"),  # gpt + claude + gemini = 5.80 + 9.15 + 2.25
    "svc": Decimal("8.05"),  # gemini + gpt
}
USER_TOTALS = {"alice": Decimal("32.15"), "bob": Decimal("11.40"), "carol": Decimal("17.20")}
TEAM_TOTALS = {"red": Decimal("43.55"), "blue": Decimal("25.25")}
GRAND_TOTAL = Decimal("68.80")


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def admin(gw: GatewayProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(gw.url + path, json=body, headers=auth(MASTER_KEY), timeout=10)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def read(gw: GatewayProcess, path: str, **params: Any) -> Any:
    response = httpx.get(gw.url + path, params=params, headers=auth(MASTER_KEY), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FixedUsageUpstream]:
    with FixedUsageUpstream(USAGE) as up:
        yield up


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FixedUsageUpstream,
) -> Iterator[GatewayProcess]:
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'bastion.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    config = {
        "model_list": models(upstream.base_url),
        "general_settings": {
            "master_key": MASTER_KEY,
            "database_url": url,
            "proxy_batch_write_at": 0.2,
            "store_prompts_in_spend_logs": True,
            "maximum_spend_logs_retention_period": "30d",
        },
        "litellm_settings": {"include_cost_in_streaming_usage": True},
    }
    try:
        with running(config) as gw:
            yield gw
    finally:
        if server is not None:
            server.drop_database(url)


def make_tenants(gw: GatewayProcess) -> dict[str, str]:
    """Two teams, three users, five keys; returns each key by its alias."""
    for team in TEAM_TOTALS:
        admin(gw, "/team/new", {"team_id": team, "team_alias": team})
    for user in USER_TOTALS:
        admin(gw, "/user/new", {"user_id": user, "auto_create_key": False})
    for team, user in sorted({(t, u) for t, u in KEYS.values() if u is not None}):
        member = {"role": "user", "user_id": user}
        admin(gw, "/team/member_add", {"team_id": team, "member": member})
    keys = {}
    for alias, (team, user) in KEYS.items():
        body: dict[str, Any] = {"key_alias": alias, "team_id": team}
        if user is not None:
            body["user_id"] = user
        keys[alias] = str(admin(gw, "/key/generate", body)["key"])
    return keys


def replay(gw: GatewayProcess, key: str, call: Call) -> tuple[str, Any, str]:
    """Makes one call; returns its request id, the usage the client saw (if any) and the
    answer text."""
    messages = [{"role": "user", "content": f"ledger call for {call.key}"}]
    if call.client == "anthropic":
        client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        if not call.stream:
            raw = client.messages.with_raw_response.create(
                model=call.model, max_tokens=64, messages=messages
            )
            message = raw.parse()
            return raw.headers["x-litellm-call-id"], message.usage.model_dump(), ANSWER
        with client.messages.with_streaming_response.create(
            model=call.model, max_tokens=64, messages=messages, stream=True
        ) as response:
            request_id = response.headers["x-litellm-call-id"]
            text, usage = "", None
            for event in response.parse():
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
                if event.type == "message_delta":
                    usage = event.usage.model_dump()
            return request_id, usage, text
    oa = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    if not call.stream:
        raw_chat = oa.chat.completions.with_raw_response.create(
            model=call.model,
            messages=messages,  # type: ignore[arg-type]
        )
        completion = raw_chat.parse()
        assert completion.usage is not None
        return (
            raw_chat.headers["x-litellm-call-id"],
            completion.usage.model_dump(),
            completion.choices[0].message.content or "",
        )
    extra: dict[str, Any] = {}
    if call.include_usage:
        extra["stream_options"] = {"include_usage": True}
    with oa.chat.completions.with_streaming_response.create(
        model=call.model,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        **extra,
    ) as stream_response:
        request_id = stream_response.headers["x-litellm-call-id"]
        text, seen = "", None
        for chunk in stream_response.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                seen = chunk.usage.model_dump()
        return request_id, seen, text


def wait_for_rows(gw: GatewayProcess, count: int) -> list[dict[str, Any]]:
    """Polls /spend/logs until the writer has written ``count`` rows (bounded)."""
    deadline = time.monotonic() + 20
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = read(gw, "/spend/logs")
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    pytest.fail(f"the spend writer wrote {len(rows)} of {count} rows within 20 s")


def test_every_key_team_and_user_total_is_exact(gateway: GatewayProcess) -> None:
    keys = make_tenants(gateway)
    made: dict[str, Call] = {}
    for call in CALLS:
        request_id, usage, text = replay(gateway, keys[call.key], call)
        assert text == ANSWER
        made[request_id] = call
        if call.stream and (call.client == "anthropic" or call.include_usage):
            # include_cost_in_streaming_usage: the final usage carries the call's cost.
            assert usage is not None and "cost" in usage, (call, usage)
            assert D(usage["cost"]) == COST[call.model], (call, usage)
        if call.stream and call.client == "openai" and not call.include_usage:
            assert usage is None  # the chunk asked for on the client's behalf is removed
    assert len(made) == len(CALLS)

    rows = {row["request_id"]: row for row in wait_for_rows(gateway, len(CALLS))}
    assert set(rows) == set(made)
    for request_id, call in made.items():
        row = rows[request_id]
        assert D(row["spend"]) == COST[call.model], (call, row)
        assert (row["prompt_tokens"], row["completion_tokens"]) == TOKENS[call.model], call
        team, user = KEYS[call.key]
        assert (row["team_id"], row["user"] or None) == (team, user)
    assert sum((D(r["spend"]) for r in rows.values()), Decimal(0)) == GRAND_TOTAL

    for alias, expected in KEY_TOTALS.items():
        info = read(gateway, "/key/info", key=keys[alias])["info"]
        assert D(info["spend"]) == expected, alias
        by_key = read(gateway, "/spend/logs", api_key=keys[alias])
        assert sum((D(r["spend"]) for r in by_key), Decimal(0)) == expected, alias
    for team, expected in TEAM_TOTALS.items():
        info = read(gateway, "/team/info", team_id=team)["team_info"]
        assert D(info["spend"]) == expected, team
    for user, expected in USER_TOTALS.items():
        info = read(gateway, "/user/info", user_id=user)["user_info"]
        assert D(info["spend"]) == expected, user
        by_user = read(gateway, "/spend/logs", user_id=user)
        assert sum((D(r["spend"]) for r in by_user), Decimal(0)) == expected, user

    # store_prompts_in_spend_logs: each row keeps the request's messages and the answer.
    for request_id, call in made.items():
        row = rows[request_id]
        assert row["messages"] == [{"role": "user", "content": f"ledger call for {call.key}"}]
        if call.stream:
            assert row["response"] == {"stream": True, "content": ANSWER}, call
        else:
            assert ANSWER in str(row["response"]), call


@pytest.fixture(scope="module")
def default_gateway(upstream: FixedUsageUpstream) -> Iterator[GatewayProcess]:
    config = {
        "model_list": models(upstream.base_url),
        "general_settings": {"master_key": MASTER_KEY, "proxy_batch_write_at": 0.2},
    }
    with running(config) as gw:
        yield gw


def test_by_default_no_bodies_are_stored_and_stream_usage_has_no_cost(
    default_gateway: GatewayProcess,
) -> None:
    made = {}
    for call in (
        Call("x", "gpt", "openai", stream=True, include_usage=True),
        Call("x", "claude", "anthropic", stream=True),
        Call("x", "gemini", "openai", stream=False),
    ):
        request_id, usage, text = replay(default_gateway, MASTER_KEY, call)
        assert text == ANSWER
        assert usage is not None and "cost" not in usage, usage
        made[request_id] = call
    rows = {r["request_id"]: r for r in wait_for_rows(default_gateway, len(made))}
    for request_id, call in made.items():
        assert D(rows[request_id]["spend"]) == COST[call.model]
        assert rows[request_id]["messages"] == {} and rows[request_id]["response"] == {}


def test_the_gateway_deletes_expired_spend_logs_and_keeps_the_totals(
    upstream: FixedUsageUpstream,
) -> None:
    config = {
        "model_list": models(upstream.base_url),
        "general_settings": {
            "master_key": MASTER_KEY,
            "proxy_batch_write_at": 0.2,
            "maximum_spend_logs_retention_period": "1s",
            "maximum_spend_logs_retention_interval": "1s",
        },
    }
    with running(config) as gw:
        key = str(admin(gw, "/key/generate", {"key_alias": "short-lived"})["key"])
        replay(gw, key, Call("short-lived", "gpt", "openai", stream=False))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            spent = D(read(gw, "/key/info", key=key)["info"]["spend"])
            if spent == GPT and read(gw, "/spend/logs") == []:
                break  # written, then deleted by the retention job
            time.sleep(0.2)
        else:
            pytest.fail("the retention job did not delete the expired spend-log row in 20 s")
        assert "spend-log retention: deleted 1 rows" in gw.log()
        # The daily totals (what /global/spend/* reports) outlive the deleted rows.
        by_model = {r["model"]: D(r["total_spend"]) for r in read(gw, "/global/spend/models")}
        assert by_model == {"gpt": GPT}
