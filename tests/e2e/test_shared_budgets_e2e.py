"""Budgets across two gateway processes sharing Redis and a database.

The spend writer is set to write only every 60 s, so the database (and the auth
snapshot each gateway reloads from it) cannot carry one gateway's spend to the
other during the test: only the shared totals on Redis can.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from redis.asyncio import Redis

from tests.e2e.helpers import wait_until_known
from tests.e2e.test_budget_limits import CALL_COST, priced
from tests.support.gated_upstream import GatedUpstream
from tests.support.gateway import GatewayProcess

MASTER = "sk-master-shared-budgets"


@pytest.fixture
def upstream() -> Iterator[GatedUpstream]:
    with GatedUpstream() as up:
        yield up


@pytest.fixture
def two_gateways(
    upstream: GatedUpstream, redis_prefix: str, tmp_path: Path
) -> Iterator[list[GatewayProcess]]:
    config = {
        "model_list": [
            priced("gated", "openai/gpt-4o", api_base=upstream.base_url, api_key="sk-up"),
        ],
        "router_settings": {"redis_host": "127.0.0.1", "redis_port": 6379},
        "general_settings": {
            "master_key": MASTER,
            "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
            "rate_limit_redis_prefix": redis_prefix,
            "proxy_batch_write_at": 60,
        },
    }
    with GatewayProcess(config) as first, GatewayProcess(config) as second:
        yield [first, second]


def admin(gw: GatewayProcess, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{gw.url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER}"}, timeout=20
    )
    assert response.status_code == 200, response.text
    return response.json()


def team_total(redis_url: str, prefix: str, team_id: str) -> Decimal:
    async def read() -> Decimal:
        async with Redis.from_url(redis_url) as redis:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}spend:team:{team_id}:*")]
            values = await redis.mget(keys) if keys else []
            return sum((Decimal(v.decode()) for v in values if v), Decimal(0))

    return asyncio.run(read())


def test_a_team_budget_crossed_across_two_gateways_stops_within_the_calls_in_flight(
    two_gateways: list[GatewayProcess], upstream: GatedUpstream, redis_url: str, redis_prefix: str
) -> None:
    """20 calls held upstream, 10 through each gateway, against a $0.05 team budget at
    $0.02 a call. Answers are let go one by one until the team has spent $0.06 (3
    answers, on either gateway). Then 20 more calls, 10 through each gateway, start:
    every one is refused, on the gateway that spent nothing too, while the 17 calls
    admitted before the crossing are still in flight (and then complete)."""
    first, second = two_gateways
    for gw in two_gateways:
        ready = httpx.get(f"{gw.url}/health/readiness").json()
        assert ready["rate_limits"]["backend"] == "redis", ready
    budget = Decimal("0.05")
    admin(first, "/team/new", {"team_id": "spread", "team_alias": "spread", "max_budget": 0.05})
    key = admin(first, "/key/generate", {"team_id": "spread", "key_alias": "spread-key"})["key"]
    wait_until_known(second, key)
    apis = [
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=120)
        for gw in two_gateways
    ]
    results: queue.Queue[tuple[str, int, Any]] = queue.Queue()

    def call(wave: str, gateway: int) -> None:
        try:
            apis[gateway].chat.completions.create(
                model="gated", messages=[{"role": "user", "content": "hi"}]
            )
            results.put((wave, gateway, "ok"))
        except openai.APIStatusError as error:
            results.put((wave, gateway, error))

    def burst(wave: str, n: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=call, args=(wave, i % 2)) for i in range(n)]
        for thread in threads:
            thread.start()
        return threads

    wave1 = burst("wave1", 20)
    upstream.wait_arrived(20)  # all 20 admitted on both gateways: nothing spent yet
    k = 0
    answered_on: set[int] = set()
    while k * CALL_COST < budget:
        upstream.release()
        wave, gateway, outcome = results.get(timeout=60)
        assert (wave, outcome) == ("wave1", "ok")
        answered_on.add(gateway)
        k += 1
    in_flight = 20 - k
    assert (k, in_flight) == (3, 17)
    # The spend is added to Redis just after each answer: wait until all 3 are in.
    deadline = time.monotonic() + 10
    while team_total(redis_url, redis_prefix, "spread") < k * CALL_COST:
        assert time.monotonic() < deadline, "the answers' spend never reached Redis"
        time.sleep(0.02)

    wave2 = burst("wave2", 20)
    refused = [results.get(timeout=60) for _ in range(20)]  # wave 1 is still held
    assert {gateway for _, gateway, _ in refused} == {0, 1}
    for wave, _, outcome in refused:
        assert wave == "wave2"
        assert isinstance(outcome, openai.UnprocessableEntityError), outcome
        body = outcome.body
        assert isinstance(body, dict) and body.get("type") == "budget_exceeded", body
        assert "budget exceeded for team spread" in str(outcome)
    assert upstream.arrived == 20  # no refused call reached the upstream

    upstream.release(in_flight)  # calls admitted before the crossing still complete
    finished = [results.get(timeout=60) for _ in range(in_flight)]
    assert [(w, o) for w, _, o in finished] == [("wave1", "ok")] * in_flight
    for thread in wave1 + wave2:
        thread.join(timeout=60)
    assert upstream.answered == 20

    for api in apis:  # every later call is refused on both gateways
        with pytest.raises(openai.UnprocessableEntityError):
            api.chat.completions.create(model="gated", messages=[{"role": "user", "content": "x"}])
    # The shared total is exact: the overshoot is the calls that were in flight.
    deadline = time.monotonic() + 10
    while team_total(redis_url, redis_prefix, "spread") < 20 * CALL_COST:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert team_total(redis_url, redis_prefix, "spread") == 20 * CALL_COST
