"""Budgets through a running gateway: a team budget crossed mid-burst, per-model key
budgets, the global max_budget, and budget alerts posted to a webhook."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from tests.support.gated_upstream import COMPLETION_TOKENS, PROMPT_TOKENS, GatedUpstream
from tests.support.gateway import GatewayProcess

MASTER = "sk-master-budget-limits"
IN_PRICE, OUT_PRICE = Decimal("0.001"), Decimal("0.002")
CALL_COST = IN_PRICE * PROMPT_TOKENS + OUT_PRICE * COMPLETION_TOKENS  # $0.02 a call


def priced(name: str, model: str, **params: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": model,
            "input_cost_per_token": float(IN_PRICE),
            "output_cost_per_token": float(OUT_PRICE),
            **params,
        },
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[GatedUpstream]:
    with GatedUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateway(upstream: GatedUpstream) -> Iterator[GatewayProcess]:
    config = {
        "model_list": [
            priced("gated", "openai/gpt-4o", api_base=upstream.base_url, api_key="sk-up"),
            priced("priced", "fake/priced"),
            priced("other", "fake/other"),
        ],
        "general_settings": {"master_key": MASTER, "proxy_batch_write_at": 0.2},
    }
    with GatewayProcess(config) as gw:
        yield gw


def admin(gw: GatewayProcess, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = httpx.post(
        f"{gw.url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER}"}
    )
    assert response.status_code == status, response.text
    return response.json()


def client(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=120)


def test_team_budget_crossed_mid_burst_overshoots_by_at_most_the_calls_in_flight(
    gateway: GatewayProcess, upstream: GatedUpstream
) -> None:
    """40 calls on one team's key against a $0.05 team budget, $0.02 a call.

    The upstream holds every answer. Wave 1 (20 concurrent calls) is admitted while
    the team has spent nothing; answers are then let go one by one. After k = 3
    answers the team has spent $0.06 >= $0.05: the budget is crossed with 17 calls
    of wave 1 still in flight. Wave 2 (20 more concurrent calls) starts after the
    crossing, while those 17 are still held. The bound:

        final spend  <=  spend at the crossing  +  calls in flight then * cost
                     =   3 * $0.02 + 17 * $0.02 = $0.40

    and every call that starts after the crossing is refused with budget_exceeded.
    """
    budget = Decimal("0.05")
    admin(gateway, "/team/new", {"team_id": "burst", "team_alias": "burst", "max_budget": 0.05})
    key = admin(gateway, "/key/generate", {"team_id": "burst", "key_alias": "burst-key"})["key"]
    api = client(gateway, key)
    results: queue.Queue[tuple[str, Any]] = queue.Queue()

    def call(wave: str) -> None:
        try:
            api.chat.completions.create(model="gated", messages=[{"role": "user", "content": "hi"}])
            results.put((wave, "ok"))
        except openai.APIStatusError as error:
            results.put((wave, error))

    def burst(wave: str, n: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=call, args=(wave,)) for _ in range(n)]
        for thread in threads:
            thread.start()
        return threads

    wave1 = burst("wave1", 20)
    upstream.wait_arrived(20)  # all 20 admitted: nothing was spent yet
    k = 0
    while k * CALL_COST < budget:  # let answers go one at a time until the budget is crossed
        upstream.release()
        assert results.get(timeout=60) == ("wave1", "ok")
        k += 1
    spend_at_crossing = k * CALL_COST
    in_flight = 20 - k
    assert (k, in_flight) == (3, 17)
    assert spend_at_crossing - budget < CALL_COST  # crossed by the last answer only

    wave2 = burst("wave2", 20)
    refused = [results.get(timeout=60) for _ in range(20)]  # wave 1 is still held
    for wave, outcome in refused:
        assert wave == "wave2"
        assert isinstance(outcome, openai.UnprocessableEntityError), outcome
        body = outcome.body
        assert isinstance(body, dict) and body.get("type") == "budget_exceeded", body
        assert "budget exceeded for team burst" in str(outcome)
    upstream.release(in_flight)  # calls admitted before the crossing still complete
    finished = [results.get(timeout=60) for _ in range(in_flight)]
    assert finished == [("wave1", "ok")] * in_flight
    for thread in wave1 + wave2:
        thread.join(timeout=60)
    assert upstream.arrived == 20 and upstream.answered == 20

    with pytest.raises(openai.UnprocessableEntityError):  # and every later call too
        api.chat.completions.create(model="gated", messages=[{"role": "user", "content": "x"}])
    bound = spend_at_crossing + in_flight * CALL_COST
    spent = wait_for_team_spend(gateway, "burst", bound)
    assert spent == 20 * CALL_COST == bound  # the overshoot is exactly the calls in flight
    assert spent - budget <= in_flight * CALL_COST + (spend_at_crossing - budget)


def wait_for_team_spend(gw: GatewayProcess, team_id: str, expected: Decimal) -> Decimal:
    """The team's spend in the database once the spend writer has caught up."""
    deadline = time.monotonic() + 30
    spent = Decimal(-1)
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{gw.url}/team/info",
            params={"team_id": team_id},
            headers={"Authorization": f"Bearer {MASTER}"},
        )
        assert response.status_code == 200, response.text
        spent = Decimal(str(response.json()["team_info"]["spend"]))
        if spent >= expected:
            return spent
        time.sleep(0.1)
    return spent


def test_model_max_budget_refuses_that_model_only(gateway: GatewayProcess) -> None:
    created = admin(
        gateway,
        "/key/generate",
        {
            "key_alias": "model-budget",
            "model_max_budget": {"priced": {"budget_limit": "0.000001", "time_period": "1d"}},
        },
    )
    assert created["model_max_budget"] == {
        "priced": {"budget_limit": 0.000001, "time_period": "1d"}
    }
    api = client(gateway, created["key"])
    api.chat.completions.create(model="priced", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        api.chat.completions.create(model="priced", messages=[{"role": "user", "content": "b"}])
    assert "budget exceeded for key model-budget on model priced" in str(refused.value)
    assert "resets at" in str(refused.value)
    api.chat.completions.create(model="other", messages=[{"role": "user", "content": "c"}])

    # Raised on /key/update: the model is callable again.
    admin(
        gateway,
        "/key/update",
        {"key": created["key"], "model_max_budget": {"priced": {"budget_limit": 100}}},
    )
    api.chat.completions.create(model="priced", messages=[{"role": "user", "content": "d"}])


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"priced": {"budget_limit": -1, "time_period": "1d"}}, "0 or more"),
        ({"priced": {"budget_limit": 1, "time_period": "30x"}}, "time_period"),
        ({"priced": {"time_period": "1d"}}, "budget_limit"),
    ],
)
def test_bad_model_max_budget_is_refused(
    gateway: GatewayProcess, value: dict[str, Any], says: str
) -> None:
    body = admin(gateway, "/key/generate", {"model_max_budget": value}, status=400)
    assert "model_max_budget" in json.dumps(body) and says in json.dumps(body)


class Receiver:
    """A local webhook endpoint that records every JSON body posted to it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                receiver.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, event: str, group: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["event"] == event and p["event_group"] == group]

    def wait_for(self, event: str, group: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.events(event, group):
            time.sleep(0.05)
        return self.events(event, group)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()


@pytest.fixture(scope="module")
def capped(receiver: Receiver) -> Iterator[GatewayProcess]:
    """A gateway with a $0.20 daily global budget and webhook budget alerts."""
    config = {
        "model_list": [priced("priced", "fake/priced")],
        "litellm_settings": {"max_budget": 0.2, "budget_duration": "1d"},
        "general_settings": {
            "master_key": MASTER,
            "proxy_batch_write_at": 0.2,
            "alerting": ["webhook"],
            "alert_types": ["budget_alerts"],
        },
    }
    with GatewayProcess(config, env={"WEBHOOK_URL": receiver.url}) as gw:
        yield gw


def test_soft_budget_alerts_once_and_the_global_budget_stops_everyone(
    capped: GatewayProcess, receiver: Receiver
) -> None:
    key = admin(capped, "/key/generate", {"key_alias": "soft", "soft_budget": 0.000001})["key"]
    api = client(capped, key)
    refused: openai.UnprocessableEntityError | None = None
    calls = 0
    for calls in range(1, 60):  # noqa: B007 - counted for the assertions below
        try:
            api.chat.completions.create(model="priced", messages=[{"role": "user", "content": "x"}])
        except openai.UnprocessableEntityError as error:
            refused = error
            break
    assert refused is not None, "the global max_budget never stopped the calls"
    assert calls >= 3  # the soft budget, reached on the second call, never blocked
    assert "budget exceeded for the proxy (litellm_settings.max_budget)" in str(refused)
    with pytest.raises(openai.UnprocessableEntityError, match="the proxy"):
        client(capped, MASTER).chat.completions.create(  # the master key is capped too
            model="priced", messages=[{"role": "user", "content": "x"}]
        )

    soft = receiver.wait_for("soft_budget_crossed", "key")
    crossed = receiver.wait_for("budget_crossed", "proxy")
    # Deduplicated before it is queued: the gateway logged each alert once (on the request
    # path, before answering), however many calls went over.
    log = capped.log()
    assert log.count("budget alert: soft budget crossed: key soft") == 1
    assert log.count("budget alert: budget crossed: the proxy") == 1  # refused twice
    assert len(receiver.events("soft_budget_crossed", "key")) == 1
    assert len(receiver.events("budget_crossed", "proxy")) == 1
    assert soft[0]["token"] and soft[0]["max_budget"] == 0.000001
    assert crossed[0]["max_budget"] == 0.2 and crossed[0]["spend"] >= 0.2
    assert "the proxy" in crossed[0]["event_message"]
    assert key not in json.dumps(receiver.posts)  # the raw key never leaves the gateway
