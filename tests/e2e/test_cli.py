"""The ``bastion`` command: config check, serve with a broken file, serve with no config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.e2e.helpers import MockPool
from tests.support.gateway import GatewayProcess

GOOD = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}
      api_key: sk-cli-provider-key-1234
  - model_name: gpt-4o
    litellm_params:
      model: azure/prod-gpt4o
      api_base: {base}
      api_key: azure-cli-key
      api_version: "2024-10-21"
  - model_name: embedder
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {base}
      api_key: sk-cli-provider-key-1234
    model_info:
      mode: embedding
router_settings:
  num_retries: 3
  fallbacks:
    - gpt-4o: [embedder]
general_settings:
  master_key: sk-cli-master
"""

TYPOS = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
  - model_name: second
    litellm_params:
      model: openai/gpt-4o-mini
      api_bse: http://127.0.0.1:9/v1
  - model_name: third
    litellm_params:
      model: opneai/gpt-4o
router_settings:
  num_retires: 2
"""

BAD_YAML = "model_list:\n  - model_name: x\n    litellm_params: [unclosed\n"


def _bastion(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_check_good_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "good.yaml", GOOD.format(base="http://127.0.0.1:9/v1"))
    result = _bastion("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{path}: OK" in out
    assert "model groups (2)" in out
    assert "  gpt-4o\n" in out and "  embedder\n" in out
    assert "openai/gpt-4o at http://127.0.0.1:9/v1" in out
    assert "azure/prod-gpt4o" in out
    assert "num_retries 3" in out
    assert "fallbacks: gpt-4o -> embedder" in out
    assert "auth: master key set" in out
    assert "sk-cli-provider-key-1234" not in out and "sk-cli-master" not in out
    assert "Traceback" not in result.stderr


def test_config_check_with_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "bastion"
    assert script.exists(), "the `bastion` console script is not installed"
    path = _write(tmp_path, "good.yaml", GOOD.format(base="http://127.0.0.1:9/v1"))
    result = subprocess.run(
        [str(script), "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "model groups (2)" in result.stdout


def test_config_check_reports_every_typo_with_path_and_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "typos.yaml", TYPOS)
    result = _bastion("config", "check", str(path))
    assert result.returncode == 1
    err = result.stderr
    assert str(path) in err
    assert "router_settings.num_retires" in err
    assert "did you mean 'num_retries'" in err
    assert "model_list[1].litellm_params.api_bse" in err
    assert "did you mean 'api_base'" in err
    assert "Traceback" not in err and "Traceback" not in result.stdout


def test_config_check_unknown_provider_names_the_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "provider.yaml",
        TYPOS.replace("  num_retires: 2\n", "").replace(
            "      api_bse: http://127.0.0.1:9/v1\n", ""
        ),
    )
    result = _bastion("config", "check", str(path))
    assert result.returncode == 1
    assert "model_list[2].litellm_params.model" in result.stderr
    assert "opneai" in result.stderr and "did you mean 'openai/'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.yaml", BAD_YAML, "not valid YAML"),
        (
            "missing-model.yaml",
            "model_list:\n  - model_name: x\n    litellm_params: {}\n",
            "model_list[0].litellm_params.model",
        ),
    ],
)
def test_config_check_broken_files(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = _write(tmp_path, name, text)
    result = _bastion("config", "check", str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_missing_file(tmp_path: Path) -> None:
    result = _bastion("config", "check", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_broken_config_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "typos.yaml", TYPOS)
    started = time.monotonic()
    result = _bastion("serve", "--config", str(path), "--port", "9")
    assert result.returncode == 1
    assert time.monotonic() - started < 15
    err = result.stderr + result.stdout
    assert "invalid configuration" in err and str(path) in err
    assert "did you mean 'num_retries'" in err
    assert "Traceback" not in err
    # LiteLLM's spelling of the command line works too.
    result = _bastion("--config", str(path), "--port", "9")
    assert result.returncode == 1
    assert "did you mean 'num_retries'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_config_serves_the_fake_model_fast(mocks: MockPool) -> None:
    gw = GatewayProcess(None, env={"BASTION_CONFIG": "", "CONFIG_FILE_PATH": ""})
    started = time.monotonic()
    with gw:
        ready = time.monotonic() - started
        print(f"\n/health/liveliness answered {ready:.3f}s after process start")
        # The target is 1.5 s; CI machines are noisy, so the assertion is generous.
        assert ready < 5.0
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="anything", max_retries=0)
        assert [m.id for m in client.models.list()] == ["fake-chat", "fake-embedding"]
        resp = client.chat.completions.create(
            model="fake-chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert resp.choices[0].message.content == "Hello from Bastion's fake provider. You said: hi"
        stream = client.chat.completions.create(
            model="fake-chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hello from Bastion's fake provider. You said: hi"
        emb = client.embeddings.create(model="fake-embedding", input="x", encoding_format="float")
        assert len(emb.data[0].embedding) > 0
        assert "NO MASTER KEY" in gw.log()
        assert "embedded default config" in gw.log()
