"""Streams and the process lifecycle: client disconnects, SIGTERM draining, several workers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import MASTER_KEY, USER_MSG, MockPool, auth, running, sync_client
from tests.mocks.openai_upstream import MockOpenAIUpstream, slow_stream
from tests.support.gateway import GatewayProcess


def _config(up: MockOpenAIUpstream) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "gpt",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_base": up.openai_base,
                    "api_key": "sk-upstream",
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }


STREAM_BODY = {"model": "gpt", "messages": USER_MSG, "stream": True}


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(name="life")
    with running(_config(up)) as gw:
        yield Env(gw, up)


def test_client_disconnect_cancels_the_upstream_stream(env: Env) -> None:
    up = env.up
    up.set_default(slow_stream(interval_s=0.05, chunks=200))  # 10 s if read to the end
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", f"{env.gw.url}/v1/chat/completions", headers=auth(), json=STREAM_BODY
        ) as resp,
    ):
        assert resp.status_code == 200
        events = 0
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events += 1
            if events >= 3:
                break
    # Leaving the `with` closed the connection mid-stream.
    started = time.monotonic()
    assert up.wait_until(lambda: up.disconnected_streams == 1, timeout=3), up.streams
    elapsed = time.monotonic() - started
    record = up.streams[-1]
    assert record.chunks_sent < 100, record
    assert up.completed_streams == 0
    # The gateway is fine afterwards.
    up.clear_faults()
    resp = sync_client(env.gw).chat.completions.create(model="gpt", messages=USER_MSG)
    assert resp.choices[0].message.content == "[life] Mock reply to: hello there"
    print(f"upstream cancelled {elapsed:.3f}s after the client left")


def test_sigterm_drains_in_flight_stream_then_exits_zero(mocks: MockPool) -> None:
    up = mocks.new(name="drain")
    chunks = 120  # about 6 s: long enough to still be running under a loaded CI machine
    up.set_default(slow_stream(interval_s=0.05, chunks=chunks))
    with GatewayProcess(_config(up)) as gw:
        result: dict[str, Any] = {}

        def consume() -> None:
            try:
                with (
                    httpx.Client(timeout=20) as client,
                    client.stream(
                        "POST", f"{gw.url}/v1/chat/completions", headers=auth(), json=STREAM_BODY
                    ) as resp,
                ):
                    result["status"] = resp.status_code
                    result["lines"] = [line for line in resp.iter_lines() if line]
            except Exception as exc:  # reported by the assertions below
                result["error"] = exc

        reader = threading.Thread(target=consume)
        reader.start()
        assert up.wait_until(lambda: any(s.chunks_sent >= 3 for s in up.streams), timeout=5)
        assert gw.process is not None
        gw.terminate()
        # New connections are refused while the stream is still being drained.
        deadline = time.monotonic() + 2
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                httpx.get(f"{gw.url}/health/liveliness", timeout=0.5)
                time.sleep(0.02)
            except httpx.ConnectError:
                refused = True
        assert refused, "the gateway kept accepting connections after SIGTERM"
        assert gw.process.poll() is None, "exited before the in-flight stream finished"
        assert up.active_streams == 1
        reader.join(timeout=15)
        assert not reader.is_alive()
        assert "error" not in result, result
        assert result["status"] == 200
        assert result["lines"][-1] == "data: [DONE]"
        content = "".join(re.findall(r'"content":"([^"]*)"', "\n".join(result["lines"])))
        assert content == " ".join(f"tok{i}" for i in range(chunks))
        assert gw.process.wait(timeout=10) == 0
        assert up.wait_until(lambda: up.completed_streams == 1, timeout=3)


def test_two_workers_serve_and_exit_on_sigterm(mocks: MockPool) -> None:
    up = mocks.new(name="workers")
    with GatewayProcess(_config(up), args=["--workers", "2"], startup_timeout=30) as gw:
        # Two worker processes serve (spawned by the parent uvicorn supervisor).
        assert gw.process is not None
        assert len(_worker_pids(gw.process.pid)) == 2
        client = sync_client(gw)
        for i in range(6):
            resp = client.chat.completions.create(
                model="gpt", messages=[{"role": "user", "content": f"q{i}"}]
            )
            assert resp.choices[0].message.content == f"[workers] Mock reply to: q{i}"
        stream = client.chat.completions.create(model="gpt", messages=USER_MSG, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        gw.terminate()
        assert gw.process.wait(timeout=15) == 0


def _worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
