"""Reloading the config file in a running gateway, without dropping a request.

Triggers: SIGHUP (each worker listens; with ``--workers N`` the supervisor forwards
it, see interfaces/cli/supervisor.py), ``bastion reload`` (sends SIGHUP) and
``POST /config/reload``. A reload

1. reads and validates the file with the same checks as ``bastion config check``
   (the whole runtime is built once, to be thrown away); on any problem it logs
   every one, keeps the running config and returns them;
2. builds the new deployments, model table and router on this worker's live
   provider registry and routing state store, off the request path;
3. swaps them in synchronously (one event-loop step): the model table is adopted
   as stored models are (``ModelTable.adopt``), with the stored models rebuilt on
   top; the router adopts the new settings (its cooldowns and strategy state carry
   over); prices, the master key, the global parallel-request limit and the
   health-check settings follow.

A request already routed keeps the deployment object it was given, so in-flight
calls and streams finish where they started. Settings that only take effect at a
restart (config/reload_scope.py) are named in a warning and keep their value.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.config.loader import LoadedConfig, load_config_file
from bastion.config.master_key import master_key_of
from bastion.config.model import ModelEntry
from bastion.config.reload_scope import restart_only_changes
from bastion.core.deployment import Deployment
from bastion.core.errors import ConfigError
from bastion.policy.pricing import PriceBook
from bastion.routing.config_table import config_model_table
from bastion.routing.deployments import build_deployments
from bastion.routing.model_table import ModelTable
from bastion.routing.router import Router
from bastion.routing.setup import build_router
from bastion.storage.crypto import SALT_KEY_ENV

if TYPE_CHECKING:
    from bastion.app import Runtime

logger = logging.getLogger("bastion.config")

RELOAD_SIGNAL = signal.SIGHUP
# Set by ``bastion serve --workers N``: the supervisor that forwards SIGHUP to every worker.
SUPERVISOR_ENV = "BASTION_SUPERVISOR_PID"


@dataclass
class ReloadOutcome:
    ok: bool
    source: str
    trigger: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    model_groups: int = 0
    deployments: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "reloaded" if self.ok else "refused",
            "config_file": self.source,
            "pid": os.getpid(),
            "problems": self.problems,
            "warnings": self.warnings,
            "restart_required": self.restart_required,
            "model_groups": self.model_groups,
            "deployments": self.deployments,
        }


@dataclass
class _Plan:
    loaded: LoadedConfig
    deployments: list[Deployment]
    deferred: list[ModelEntry]
    table: ModelTable
    prices: PriceBook
    router: Router


class ConfigReloader:
    """Re-reads ``runtime``'s config file and swaps what it configures into ``runtime``.

    ``check`` is ``bastion config check``'s validation (the composition root's
    ``build_runtime``): any ConfigError or ValueError it raises refuses the file.
    """

    def __init__(self, runtime: Runtime, *, check: Callable[[LoadedConfig], object]) -> None:
        self.runtime = runtime
        self._check = check
        source = runtime.loaded.source
        self.path: str | None = source if os.path.isfile(source) else None
        self._fingerprint = _fingerprint(self.path)
        self.last: ReloadOutcome | None = None
        self._listening = False

    # -- triggers ---------------------------------------------------------------------------

    def listen(self) -> None:
        """Reload on SIGHUP from now on (called in the running event loop, at startup)."""
        try:
            asyncio.get_running_loop().add_signal_handler(RELOAD_SIGNAL, self._on_signal)
        except (ValueError, RuntimeError, NotImplementedError):
            # Not the main thread (an embedding test harness): POST /config/reload still works.
            logger.debug("SIGHUP is not available here; reload with POST /config/reload")
            return
        self._listening = True
        if self.path is not None and _fingerprint(self.path) != self._fingerprint:
            # A SIGHUP sent while this worker was starting was ignored: catch up.
            self.reload("the file changed while this worker started")

    def stop_listening(self) -> None:
        if not self._listening:
            return
        self._listening = False
        asyncio.get_running_loop().remove_signal_handler(RELOAD_SIGNAL)
        ignore_reload_signal()  # during shutdown a SIGHUP must not kill the process

    def _on_signal(self) -> None:
        self.reload("SIGHUP")

    def reload_everywhere(self) -> dict[str, Any]:
        """Reload here; when it worked and other workers exist, have them reload too."""
        outcome = self.reload("POST /config/reload")
        answer = outcome.as_json()
        supervisor = _supervisor_pid()
        if outcome.ok and supervisor is not None:
            os.kill(supervisor, RELOAD_SIGNAL)
            answer["other_workers"] = "asked to reload (through the supervisor)"
        return answer

    # -- the reload -------------------------------------------------------------------------

    def reload(self, trigger: str) -> ReloadOutcome:
        """Read, check and apply the config file; never raises."""
        if self.path is None:
            return self._refused(
                trigger,
                self.runtime.loaded.source,
                [
                    "this gateway was started without a config file (it serves the embedded "
                    "default config): there is no file to reload. Start it with --config FILE."
                ],
            )
        fingerprint = _fingerprint(self.path)
        try:
            loaded = load_config_file(self.path)
            self._check(loaded)
            plan = self._build(loaded)
        except ConfigError as exc:
            return self._refused(trigger, self.path, exc.problems)
        except ValueError as exc:  # e.g. an unusable database_url, as `config check` reports it
            return self._refused(trigger, self.path, [str(exc)])
        except Exception as exc:
            logger.exception("config reload (%s) failed unexpectedly", trigger)
            return self._refused(trigger, self.path, [f"unexpected {type(exc).__name__}"])
        previous = self.runtime.loaded
        restart = restart_only_changes(previous.config, loaded.config)
        key_restart, key_warnings = _master_key_notes(previous, loaded)
        self._swap(plan)
        self._fingerprint = fingerprint
        outcome = ReloadOutcome(
            ok=True,
            source=self.path,
            trigger=trigger,
            warnings=[w for w in loaded.warnings if w not in previous.warnings] + key_warnings,
            restart_required=restart + key_restart,
            model_groups=len(self.runtime.table.groups),
            deployments=len(self.runtime.table.all_deployments),
        )
        self._log(outcome)
        self.last = outcome
        return outcome

    def _build(self, loaded: LoadedConfig) -> _Plan:
        """Everything the new config needs, built on the live registry; nothing swapped yet."""
        runtime = self.runtime
        config = loaded.config
        notes: list[str] = []  # the check above already collected these in loaded.warnings
        stored = runtime.models is not None and runtime.models.enabled
        deferred: list[ModelEntry] = []
        deployments = build_deployments(
            config,
            runtime.registry,
            loaded.source,
            notes,
            deferred=deferred if stored else None,
        )
        prices = PriceBook.from_config(config)
        router = build_router(
            config, runtime.table, prices, notes, store=runtime.router.cooldowns.store
        )
        return _Plan(
            loaded=loaded,
            deployments=deployments,
            deferred=deferred,
            table=config_model_table(config, runtime.registry, deployments),
            prices=prices,
            router=router,
        )

    def _swap(self, plan: _Plan) -> None:
        """Synchronous: no request on the event loop sees half of it."""
        runtime = self.runtime
        config = plan.loaded.config
        runtime.table.adopt(plan.table)
        if runtime.models is not None:  # stored models rebuilt on top, against the new config
            runtime.models.replace_config(config, plan.deployments, plan.deferred)
        runtime.router.adopt(plan.router)
        feedback = runtime.router.feedback
        runtime.policy.on_usage = feedback.used if feedback.load else None
        runtime.policy.meter.prices = plan.prices
        runtime.policy.cost_in_stream_usage = (
            config.litellm_settings.include_cost_in_streaming_usage
        )
        master_key = master_key_of(config)
        if master_key is not None:
            runtime.auth.replace_master_key(master_key)
        general = config.general_settings
        extra = general.model_extra or {}
        if runtime.limits is not None:
            limits = runtime.limits
            limits.global_max_parallel = extra.get("global_max_parallel_requests")
            limits.fail_closed = bool(extra.get("rate_limit_fail_closed", False))
            limits.deployment_limits = bool(runtime.models and runtime.models.enabled) or any(
                d.rpm is not None or d.tpm is not None for d in runtime.table.all_deployments
            )
        runtime.health.reconfigure(
            list(runtime.table.all_deployments),
            timeout=general.health_check_timeout,
            background_interval=(
                general.health_check_interval if general.background_health_checks else None
            ),
        )
        runtime.deployments = plan.deployments
        runtime.loaded = plan.loaded

    # -- reporting --------------------------------------------------------------------------

    def _refused(self, trigger: str, source: str, problems: list[str]) -> ReloadOutcome:
        outcome = ReloadOutcome(ok=False, source=source, trigger=trigger, problems=problems)
        logger.error(
            "config reload (%s) in process %d refused; still serving the previous config. %s:\n%s",
            trigger,
            os.getpid(),
            source,
            "\n".join(f"  - {p}" for p in problems),
        )
        self.last = outcome
        return outcome

    def _log(self, outcome: ReloadOutcome) -> None:
        logger.info(
            "config reloaded from %s (%s) in process %d: %d model groups (%d deployments)",
            outcome.source,
            outcome.trigger,
            os.getpid(),
            outcome.model_groups,
            outcome.deployments,
        )
        for name in outcome.restart_required:
            logger.warning("config reload: %s: takes effect at the next restart", name)
        for warning in outcome.warnings:
            logger.warning("%s", warning)


def _master_key_notes(previous: LoadedConfig, loaded: LoadedConfig) -> tuple[list[str], list[str]]:
    """(restart-only, warnings) about a changed master key."""
    before, after = master_key_of(previous.config), master_key_of(loaded.config)
    if before is None or before == after:
        return [], []
    if after is None:
        return [
            "general_settings.master_key: removed, but a reload never opens a gateway: the "
            "current master key stays in force until a restart"
        ], []
    if os.environ.get(SALT_KEY_ENV):
        return [], []
    return [], [
        "general_settings.master_key: changed and in force now, but secrets stored in the "
        f"database stay encrypted with the previous one ({SALT_KEY_ENV} is not set): set "
        f"{SALT_KEY_ENV} to the previous master key before the next restart"
    ]


def ignore_reload_signal() -> None:
    """Ignore SIGHUP until the event loop listens (its default action ends the process)."""
    with contextlib.suppress(ValueError):  # not the main thread: not a server process
        signal.signal(RELOAD_SIGNAL, signal.SIG_IGN)


def _supervisor_pid() -> int | None:
    value = os.environ.get(SUPERVISOR_ENV, "")
    if not value.isdigit() or int(value) != os.getppid():
        return None
    return int(value)


def _fingerprint(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
