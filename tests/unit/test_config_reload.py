"""Config reload in one runtime: what is swapped, what is refused, what waits for a restart.

The runtime is the real one (``build_runtime``), fake providers only; the reload is
the same call SIGHUP and ``POST /config/reload`` make.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.app import Runtime, build_runtime
from bastion.config.loader import load_config_file, load_config_text
from bastion.config.reload_scope import restart_only_changes
from bastion.core.errors import BastionError
from bastion.interfaces.cli.main import main
from bastion.policy.auth import PrincipalKind
from bastion.reload import ConfigReloader
from bastion.routing.stored_models import ModelSpec
from bastion.services.model_catalog import CatalogSnapshot

V1 = """
model_list:
  - model_name: alpha
    litellm_params: {model: fake/alpha, input_cost_per_token: 0.001, output_cost_per_token: 0.002}
  - model_name: beta
    litellm_params: {model: fake/beta}
router_settings:
  num_retries: 1
  fallbacks: [{alpha: [beta]}]
  model_group_alias: {a: alpha}
general_settings:
  master_key: sk-old-master
"""

V2 = """
model_list:
  - model_name: alpha
    litellm_params: {model: fake/alpha, input_cost_per_token: 0.005, output_cost_per_token: 0.002}
  - model_name: beta
    litellm_params: {model: fake/beta}
  - model_name: gamma
    litellm_params: {model: fake/gamma, rpm: 10}
router_settings:
  num_retries: 0
  fallbacks: [{alpha: [gamma]}]
  model_group_alias: {g: gamma}
  redis_host: 127.0.0.1
litellm_settings:
  cache: true
general_settings:
  master_key: sk-new-master
  database_url: sqlite:///elsewhere.db
  global_max_parallel_requests: 7
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BASTION_DB_PATH", str(tmp_path / "bastion.db"))
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    monkeypatch.delenv("LITELLM_SALT_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(V1)
    return path


@pytest.fixture
def runtime(config_file: Path) -> Runtime:
    runtime = build_runtime(load_config_file(config_file))
    runtime.reloader = ConfigReloader(runtime, check=build_runtime)
    return runtime


def reloader(runtime: Runtime) -> ConfigReloader:
    assert runtime.reloader is not None
    return runtime.reloader


def test_a_reload_swaps_models_aliases_fallbacks_retries_prices_and_the_master_key(
    runtime: Runtime, config_file: Path
) -> None:
    table, router = runtime.table, runtime.router
    alpha_before = table.lookup("alpha")
    assert alpha_before is not None
    price_before = runtime.policy.meter.prices.price_for(alpha_before[0])
    assert table.lookup("gamma") is None
    assert router.fallback_chain("alpha") == ["beta"]

    config_file.write_text(V2)
    outcome = reloader(runtime).reload("test")

    assert outcome.ok, outcome.problems
    # The same objects every endpoint holds now serve the new config.
    assert runtime.table is table and runtime.router is router
    gamma = table.lookup("gamma")
    assert gamma is not None and gamma[0].rpm == 10
    assert table.lookup("g") == gamma and table.lookup("a") is None
    assert router.fallback_chain("alpha") == ["gamma"]
    assert router.policy.num_retries == 0
    alpha_after = table.lookup("alpha")
    assert alpha_after is not None
    price_after = runtime.policy.meter.prices.price_for(alpha_after[0])
    assert price_before is not None and price_after is not None
    assert price_after.rates.input > price_before.rates.input
    assert runtime.auth.authenticate("sk-new-master").kind is PrincipalKind.MASTER
    with pytest.raises(BastionError):  # no longer the master key: looked up as a virtual key
        runtime.auth.authenticate("sk-old-master")
    assert runtime.limits is not None
    assert runtime.limits.global_max_parallel == 7
    assert runtime.limits.deployment_limits  # gamma has an rpm
    assert {d.model_name for d in runtime.health.deployments} == {"alpha", "beta", "gamma"}
    # A request that looked up its group before keeps the deployments it was given.
    assert alpha_before is not alpha_after and alpha_before[0].model_name == "alpha"
    # Settings that need a restart are named, not applied.
    assert outcome.restart_required == [
        "router_settings.redis_host",
        "litellm_settings.cache",
        "general_settings.database_url",
    ]
    assert runtime.loaded.config.general_settings.database_url == "sqlite:///elsewhere.db"
    # No salt key: the master key change warns about secrets stored with the old one.
    assert any("LITELLM_SALT_KEY" in w for w in outcome.warnings)
    assert "sk-new-master" not in " ".join(outcome.warnings + outcome.restart_required)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model_list: [\n  - {model_name: x\n", "not valid YAML"),
        (
            "model_list:\n  - model_name: x\n    litellm_params: {modle: fake/x}\n",
            "did you mean 'model'",
        ),
        (
            "model_list:\n  - model_name: x\n    litellm_params: {model: fake/x}\n"
            "router_settings: {fallbacks: [{x: [nowhere]}]}\n",
            "nowhere",
        ),
        ("general_settings: {global_max_parallel_requests: -1}\n", "global_max_parallel"),
    ],
)
def test_a_broken_file_is_refused_with_its_problems_and_the_old_config_kept(
    runtime: Runtime, config_file: Path, text: str, problem: str
) -> None:
    config_file.write_text(text)
    outcome = reloader(runtime).reload("test")
    assert not outcome.ok
    assert any(problem in p for p in outcome.problems), outcome.problems
    assert outcome.as_json()["status"] == "refused"
    assert runtime.table.lookup("alpha") is not None
    assert runtime.router.fallback_chain("alpha") == ["beta"]
    assert runtime.auth.authenticate("sk-old-master").kind is PrincipalKind.MASTER


def test_a_removed_master_key_never_opens_the_gateway(runtime: Runtime, config_file: Path) -> None:
    config_file.write_text(V1.replace("  master_key: sk-old-master\n", "  {}\n"))
    outcome = reloader(runtime).reload("test")
    assert outcome.ok, outcome.problems
    assert not runtime.auth.open_access
    assert runtime.auth.authenticate("sk-old-master").kind is PrincipalKind.MASTER
    assert any("master_key: removed" in r for r in outcome.restart_required)


def test_without_a_config_file_there_is_nothing_to_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_DB_PATH", str(tmp_path / "bastion.db"))
    runtime = build_runtime(load_config_text("model_list: []\n", source="<embedded>"))
    outcome = ConfigReloader(runtime, check=build_runtime).reload("test")
    assert not outcome.ok and "--config FILE" in outcome.problems[0]


def test_stored_models_stay_served_on_top_of_the_reloaded_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_DB_PATH", str(tmp_path / "bastion.db"))
    path = tmp_path / "config.yaml"
    stored_on = "general_settings: {store_model_in_db: true}\n"
    path.write_text(
        "model_list:\n  - {model_name: cfg, litellm_params: {model: fake/c}}\n" + stored_on
    )
    runtime = build_runtime(load_config_file(path))
    assert runtime.models is not None
    runtime.models.apply(
        CatalogSnapshot("v1", [ModelSpec("stored-1", "from-db", {"model": "fake/db"})], {})
    )
    assert runtime.table.lookup("from-db") is not None

    path.write_text(
        "model_list:\n  - {model_name: cfg2, litellm_params: {model: fake/c2}}\n" + stored_on
    )
    outcome = ConfigReloader(runtime, check=build_runtime).reload("test")

    assert outcome.ok, outcome.problems
    assert runtime.table.lookup("from-db") is not None
    assert runtime.table.lookup("cfg2") is not None and runtime.table.lookup("cfg") is None
    assert runtime.models.config_ids == {d.id for d in runtime.deployments}


def test_restart_only_changes_name_settings_not_values() -> None:
    old = load_config_text(V1).config
    new = load_config_text(
        V1 + "  database_url: postgresql://u:hunter2@db/x\n  proxy_batch_write_at: 30\n"
    ).config
    assert restart_only_changes(old, new) == [
        "general_settings.database_url",
        "general_settings.proxy_batch_write_at",
    ]
    # Reloadable settings and settings Bastion does not act on are not listed.
    same = load_config_text(V1.replace("num_retries: 1", "num_retries: 3")).config
    assert restart_only_changes(old, same) == []


def test_reload_cli_needs_a_target_and_refuses_what_is_not_a_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BASTION_PIDFILE", raising=False)
    assert main(["reload"]) == 2
    assert main(["reload", "--pidfile", str(tmp_path / "missing.pid")]) == 1
    assert "no such pid file" in capsys.readouterr().err
    (tmp_path / "bad.pid").write_text("not a pid\n")
    assert main(["reload", "--pidfile", str(tmp_path / "bad.pid")]) == 1
    # A live process that is not a gateway gets no signal (SIGHUP would end it).
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "other.pid").write_text(f"{sleeper.pid}\n")
        assert main(["reload", "--pidfile", str(tmp_path / "other.pid")]) == 1
        assert "not a running bastion gateway" in capsys.readouterr().err
        assert sleeper.poll() is None
    finally:
        sleeper.send_signal(signal.SIGTERM)
        sleeper.wait()
    assert os.environ.get("BASTION_PIDFILE") is None
