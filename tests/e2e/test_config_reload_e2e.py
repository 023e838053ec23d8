"""Config reload against a running ``bastion serve``: SIGHUP (through ``bastion reload``)
while requests flow, a broken file refused, ``POST /config/reload``, and every
worker of ``--workers 2`` reloading."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.helpers import MASTER_KEY, MockPool, auth, running, sync_client
from tests.mocks.openai_upstream import MockOpenAIUpstream, slow_stream, status
from tests.support.gateway import GatewayProcess

WAIT_S = 20.0
RELOADED = re.compile(r"config reloaded from .* \((.+?)\) in process (\d+)")


def config(upstream: MockOpenAIUpstream, *, fallback: str, extra_model: bool) -> dict[str, Any]:
    def model(name: str, upstream_model: str) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{upstream_model}",
                "api_base": upstream.openai_base,
                "api_key": "sk-up",
            },
        }

    models = [model("alpha", "m-alpha"), model("beta", "m-beta"), model("gamma", "m-gamma")]
    if extra_model:
        models.append(model("delta", "m-delta"))
    return {
        "model_list": models,
        "router_settings": {"num_retries": 0, "fallbacks": [{"alpha": [fallback]}]},
        "general_settings": {"master_key": MASTER_KEY},
    }


def write(gw: GatewayProcess, data: dict[str, Any] | str) -> None:
    assert gw.config_path is not None
    gw.config_path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def reloads(gw: GatewayProcess, trigger: str = "SIGHUP") -> list[str]:
    """Process ids that logged a successful reload triggered by ``trigger``."""
    return [pid for how, pid in RELOADED.findall(gw.log()) if how == trigger]


def bastion_reload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "reload", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def chat(gw: GatewayProcess, model: str) -> httpx.Response:
    # A new connection per call: with several workers, calls land on all of them.
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers=auth(),
        timeout=20,
    )


@pytest.fixture(scope="module")
def upstream(mocks: MockPool) -> MockOpenAIUpstream:
    return mocks.new(api_key="sk-up")


@pytest.fixture
def gw(upstream: MockOpenAIUpstream, tmp_path: Path) -> Iterator[GatewayProcess]:
    pid_file = tmp_path / "bastion.pid"
    with running(
        config(upstream, fallback="beta", extra_model=False), args=["--pidfile", str(pid_file)]
    ) as process:
        eventually(pid_file.exists, "the pid file is written")
        yield process
    assert not pid_file.exists(), "the pid file is removed at exit"


class Traffic:
    """Short requests in a loop on another thread, each outcome recorded in order."""

    def __init__(self, gw: GatewayProcess) -> None:
        self.gw = gw
        self.outcomes: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.gw.url, headers=auth(), timeout=20) as client:
            while not self._stop.is_set():
                for model in ("alpha", "beta"):
                    try:
                        response = client.post(
                            "/v1/chat/completions",
                            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
                        )
                        self.outcomes.append(response.status_code)
                    except httpx.HTTPError as exc:
                        self.outcomes.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_sighup_reloads_while_requests_and_a_stream_are_in_flight(
    gw: GatewayProcess, upstream: MockOpenAIUpstream, tmp_path: Path
) -> None:
    client = sync_client(gw)
    # A stream on alpha that is still running when the config changes under it.
    upstream.enqueue(slow_stream(0.05, 200), model="m-alpha")
    stream = client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "long"}], stream=True
    )
    chunks = iter(stream)
    first = next(chunks)
    with Traffic(gw) as traffic:
        eventually(lambda: len(traffic.outcomes) >= 10, "short requests flow")
        write(gw, config(upstream, fallback="gamma", extra_model=True))
        done = bastion_reload("--pidfile", str(tmp_path / "bastion.pid"))
        assert done.returncode == 0, done.stderr
        assert "sent SIGHUP" in done.stdout
        eventually(lambda: len(reloads(gw)) == 1, "the gateway logs the reload")
        # The stream began before the reload and is still being served.
        assert upstream.active_streams == 1
        served_at_reload = len(traffic.outcomes)
        eventually(lambda: len(traffic.outcomes) >= served_at_reload + 10, "requests flow after it")
    text = (first.choices[0].delta.content or "") + "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text.split() == [f"tok{i}" for i in range(200)]
    assert upstream.completed_streams == 1
    assert set(traffic.outcomes) == {200}, [o for o in traffic.outcomes if o != 200][:5]

    # The new model is served, and alpha now falls back to gamma (it was beta).
    answer = client.chat.completions.create(
        model="delta", messages=[{"role": "user", "content": "new"}]
    )
    assert answer.choices[0].message.content
    assert upstream.count("/chat/completions", model="m-delta") == 1
    upstream.enqueue(status(500), model="m-alpha")
    beta_calls = upstream.count("/chat/completions", model="m-beta")
    fell_back = client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "fall"}]
    )
    assert fell_back.choices[0].message.content
    assert upstream.count("/chat/completions", model="m-gamma") == 1
    assert upstream.count("/chat/completions", model="m-beta") == beta_calls
    assert "ERROR" not in gw.log()


def test_a_broken_file_is_refused_and_the_old_config_keeps_serving(
    gw: GatewayProcess, upstream: MockOpenAIUpstream
) -> None:
    write(gw, "model_list:\n  - model_name: broken\n    litellm_params: {modle: openai/x}\n")
    assert gw.process is not None
    with Traffic(gw) as traffic:
        eventually(lambda: len(traffic.outcomes) >= 4, "short requests flow")
        gw.process.send_signal(signal.SIGHUP)
        eventually(lambda: "refused; still serving the previous config" in gw.log(), "refusal")
        served_at_refusal = len(traffic.outcomes)
        eventually(lambda: len(traffic.outcomes) >= served_at_refusal + 4, "requests flow")
    assert set(traffic.outcomes) == {200}
    log = gw.log()
    assert "did you mean 'model'" in log and "model_list[0].litellm_params.model" in log
    assert chat(gw, "alpha").status_code == 200
    assert chat(gw, "broken").status_code == 404
    readiness = httpx.get(f"{gw.url}/health/readiness", timeout=10)
    assert readiness.status_code == 200 and readiness.json()["status"] == "healthy"

    # The same refusal through the management API: a 422 naming every problem.
    refused = httpx.post(f"{gw.url}/config/reload", headers=auth(), timeout=20)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_config"
    assert "did you mean 'model'" in error["message"]
    assert "previous config is still served" in error["message"]

    # Fixed: the API reloads it and says what is served now.
    write(gw, config(upstream, fallback="gamma", extra_model=True))
    assert httpx.post(f"{gw.url}/config/reload", timeout=20).status_code == 401
    done = httpx.post(f"{gw.url}/config/reload", headers=auth(), timeout=20)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "reloaded" and body["model_groups"] == 4
    assert body["problems"] == [] and body["restart_required"] == []
    assert chat(gw, "delta").status_code == 200


def test_every_worker_reloads_with_two_workers(
    upstream: MockOpenAIUpstream, tmp_path: Path
) -> None:
    with running(
        config(upstream, fallback="beta", extra_model=False),
        args=["--workers", "2"],
    ) as gw:
        eventually(
            lambda: gw.log().count("Application startup complete") >= 2, "both workers start"
        )
        assert chat(gw, "delta").status_code == 404
        write(gw, config(upstream, fallback="gamma", extra_model=True))
        assert gw.process is not None
        done = bastion_reload("--pid", str(gw.process.pid))
        assert done.returncode == 0, done.stderr
        eventually(lambda: len(set(reloads(gw))) == 2, "both workers log a reload")
        assert str(gw.process.pid) not in reloads(gw)  # the workers, not the supervisor
        assert all(chat(gw, "delta").status_code == 200 for _ in range(20))

        # Through the API, one worker reloads and has the other one reload too.
        write(gw, config(upstream, fallback="beta", extra_model=False))
        signalled_before = len(reloads(gw))
        answer = httpx.post(f"{gw.url}/config/reload", headers=auth(), timeout=20)
        assert answer.status_code == 200, answer.text
        assert answer.json()["other_workers"]
        eventually(lambda: len(reloads(gw)) == signalled_before + 2, "the supervisor signals both")
        eventually(
            lambda: all(chat(gw, "delta").status_code == 404 for _ in range(20)),
            "delta is gone from both workers",
        )
        assert "ERROR" not in gw.log()
