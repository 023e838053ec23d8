"""Spend on the data plane: cost headers, spend in the database, budgets that stop calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.gateway import GatewayProcess

MASTER = "sk-master-spend"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    db = tmp_path_factory.mktemp("spend") / "bastion.db"
    config = {
        "model_list": [
            {
                "model_name": "priced",
                "litellm_params": {
                    "model": "fake/priced",
                    "input_cost_per_token": 0.001,
                    "output_cost_per_token": 0.002,
                },
            },
            {"model_name": "other", "litellm_params": {"model": "fake/other"}},
        ],
        "general_settings": {
            "master_key": MASTER,
            "database_url": f"sqlite:///{db}",
            "proxy_batch_write_at": 0.2,
        },
    }
    with GatewayProcess(
        config, env={"BASTION_SPEND_SPILL_PATH": str(Path(db).parent / "spill")}
    ) as gw:
        yield gw


def admin(gateway: GatewayProcess, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(
        f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER}"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_costs_are_reported_recorded_and_budgets_stop_spending(gateway: GatewayProcess) -> None:
    user = admin(
        gateway, "/user/new", {"user_id": "spender", "max_budget": 0.2, "models": ["priced"]}
    )
    key = str(user["key"])
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    first = client.chat.completions.with_raw_response.create(
        model="priced", messages=[{"role": "user", "content": "hello"}]
    )
    completion = first.parse()
    assert completion.usage is not None
    expected = Decimal("0.001") * completion.usage.prompt_tokens + Decimal("0.002") * (
        completion.usage.completion_tokens
    )
    assert Decimal(first.headers["x-litellm-response-cost"]) == expected
    assert Decimal(first.headers["x-litellm-key-spend"]) == expected

    with pytest.raises(openai.AuthenticationError) as denied:
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}])
    assert "may not call model 'other'" in str(denied.value)

    # A stream is charged from its final usage even though the client did not ask for it.
    chunks = list(
        client.chat.completions.create(
            model="priced", messages=[{"role": "user", "content": "stream please"}], stream=True
        )
    )
    assert all(chunk.usage is None for chunk in chunks)  # the injected usage chunk is removed

    for _ in range(50):
        try:
            client.chat.completions.create(
                model="priced", messages=[{"role": "user", "content": "more"}]
            )
        except openai.UnprocessableEntityError as error:
            assert "budget exceeded for user spender" in str(error)
            break
    else:
        pytest.fail("the user's max_budget never stopped the calls")

    deadline = time.monotonic() + 5
    rows: list[dict[str, object]] = []
    spent = Decimal(0)
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{gateway.url}/spend/logs",
            params={"user_id": "spender"},
            headers={"Authorization": f"Bearer {MASTER}"},
        )
        assert response.status_code == 200, response.text
        rows = response.json()
        spent = sum((Decimal(str(r["spend"])) for r in rows), Decimal(0))
        if len(rows) >= 3 and spent >= Decimal("0.2"):
            break  # every batch up to the refusal has been written
        time.sleep(0.1)
    assert len(rows) >= 3
    assert spent >= Decimal("0.2")
    streamed = [r for r in rows if Decimal(str(r["spend"])) > 0]
    assert len(streamed) == len(rows)  # every call, the stream included, has a cost
