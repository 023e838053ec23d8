"""The gateways under test: how to start each one, and a sanity probe of its answers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from processes import http_post

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
BASTION_CMD = (
    f"{REPO}/.venv/bin/bastion serve --config {{config}} --host 127.0.0.1 --port {{port}} "
    "--workers 1"
)
LITELLM_CMD = "{venv}/bin/litellm --config {config} --host 127.0.0.1 --port {port} --num_workers 1"
DEFAULT_LITELLM_VENV = "/tmp/bench-litellm-venv"


@dataclass
class Target:
    """A gateway command line; ``{config}`` and ``{port}`` are filled in at start."""

    name: str
    cmd_template: str
    ready_path: str = "/health/liveliness"
    ready_timeout_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def command(self, config: Path, port: int) -> list[str]:
        return shlex.split(self.cmd_template.format(config=config, port=port))


def bastion_target(cmd_template: str | None, name: str | None) -> Target:
    if cmd_template:
        return Target(name or "gateway", cmd_template)
    return Target(name or "bastion", BASTION_CMD)


def litellm_target(log_path: Path) -> Target:
    """Create/reuse LiteLLM's venv (bench/litellm_venv.sh); raises RuntimeError if impossible."""
    venv = os.environ.get("BENCH_LITELLM_VENV", DEFAULT_LITELLM_VENV)
    print(f"preparing LiteLLM venv in {venv} (first time: a few minutes) ...", flush=True)
    with log_path.open("w") as log:
        proc = subprocess.run(
            [str(BENCH_DIR / "litellm_venv.sh")],
            env={**os.environ, "BENCH_LITELLM_VENV": venv},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=1800,
            check=False,
        )
    notes = [
        line.removeprefix("[litellm-venv] ")
        for line in log_path.read_text().splitlines()
        if line.startswith("[litellm-venv]")
    ]
    for line in notes:
        print(f"  {line}")
    if proc.returncode != 0:
        raise RuntimeError(f"bench/litellm_venv.sh failed (exit {proc.returncode}); see {log_path}")
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price map at start
        "LITELLM_LOG": "ERROR",
        "DISABLE_ADMIN_UI": "True",
    }
    version = _installed_version(Path(venv))
    return Target(
        "litellm",
        LITELLM_CMD.replace("{venv}", venv),
        ready_timeout_s=120.0,
        env=env,
        note=f"litellm {version}" + ("" if version == "1.109.1" else " (1.109.1 not installable)"),
    )


def _installed_version(venv: Path) -> str:
    code = "from importlib.metadata import version; print(version('litellm'))"
    out = subprocess.run(
        [str(venv / "bin/python"), "-c", code], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "?"


PROBE_BODY = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
}


def probe(port: int, key: str, stream: bool) -> str | None:
    """One real request through the target; None if the answer looks right, else why not."""
    body = {**PROBE_BODY, "stream": True} if stream else PROBE_BODY
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    try:
        status, resp_headers, data = http_post(
            port, "/v1/chat/completions", json.dumps(body).encode(), headers
        )
    except OSError as exc:
        return f"request failed: {exc}"
    text = data.decode(errors="replace")
    if status != 200:
        return f"HTTP {status}: {text[:300]}"
    if stream:
        if "chat.completion.chunk" not in text or "data: [DONE]" not in text:
            return f"not an OpenAI SSE stream: {text[:300]!r}"
        if "text/event-stream" not in resp_headers.get("content-type", ""):
            return f"stream content-type is {resp_headers.get('content-type')!r}"
        return None
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"not a chat.completion: {text[:300]}"
    return None if content else f"empty content: {text[:300]}"
