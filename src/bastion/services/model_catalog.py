"""The models this worker serves: the config file's, plus those stored in the database.

With ``store_model_in_db`` on, every worker polls a cheap fingerprint of the stored
models and credentials (``refresh_interval``, 2 s); when it changes, the worker
reads them, builds their deployments off the request path and swaps them into the
one :class:`ModelTable` every part of the data plane reads (``ModelTable.adopt``).
A request already routed keeps its deployment. The worker that handled a change
refreshes before answering, so its next request sees it; the others within the
interval. Requests never read the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.config.model import ModelEntry, ProxyConfig
from bastion.core.deployment import Deployment
from bastion.core.periodic import Periodic
from bastion.providers.registry import ProviderRegistry
from bastion.routing.model_table import ModelTable
from bastion.routing.stored_models import ModelSpec, build_all, build_spec

if TYPE_CHECKING:
    from bastion.storage.database import Database
    from bastion.storage.repositories import StoredModel

logger = logging.getLogger("bastion.models")

DEFAULT_REFRESH_INTERVAL_S = 2.0
STORE_MODEL_IN_DB_ENV = "STORE_MODEL_IN_DB"
_TRUE = frozenset({"true", "1", "yes", "on"})


def store_model_in_db(config: ProxyConfig, env: Mapping[str, str] | None = None) -> bool:
    """``general_settings.store_model_in_db`` or ``STORE_MODEL_IN_DB=True`` (LiteLLM's)."""
    value = (config.general_settings.model_extra or {}).get("store_model_in_db")
    if value is None:
        value = (os.environ if env is None else env).get(STORE_MODEL_IN_DB_ENV)
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


@dataclass(frozen=True)
class CatalogSnapshot:
    """Stored models (secrets decrypted) and credentials, read in one transaction."""

    version: str
    models: list[ModelSpec]
    credentials: dict[str, dict[str, Any]]
    unreadable: list[str] = field(default_factory=list)


SnapshotLoader = Callable[[], Awaitable[CatalogSnapshot]]
VersionLoader = Callable[[], Awaitable[str]]


class ModelCatalog:
    def __init__(
        self,
        config: ProxyConfig,
        registry: ProviderRegistry,
        table: ModelTable,
        config_deployments: list[Deployment],
        deferred: list[ModelEntry],
        *,
        enabled: bool,
        load: SnapshotLoader | None = None,
        version: VersionLoader | None = None,
        on_change: Callable[[list[Deployment]], None] | None = None,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL_S,
    ) -> None:
        self.registry = registry
        self.table = table
        self.enabled = enabled
        self._use_config(config, config_deployments, deferred)
        self.refresh_interval = refresh_interval
        self._load = load
        self._version_of = version
        self._on_change = on_change
        self._version: str | None = None
        self._snapshot: CatalogSnapshot | None = None
        self._lock = asyncio.Lock()
        self._poller = Periodic(
            self.refresh,
            lambda: self.refresh_interval,
            failure="could not reload stored models (serving the last ones)",
            logger=logger,
        )
        self.problems: list[str] = []

    def _use_config(
        self, config: ProxyConfig, config_deployments: list[Deployment], deferred: list[ModelEntry]
    ) -> None:
        self.config = config
        self.config_deployments = list(config_deployments)
        self.deferred = [ModelSpec.of_config(entry) for entry in deferred]
        self.config_ids = {d.id for d in config_deployments} | {s.ident for s in self.deferred}
        self.config_credentials = {
            c.credential_name: dict(c.credential_values) for c in config.credential_list
        }

    def replace_config(
        self, config: ProxyConfig, config_deployments: list[Deployment], deferred: list[ModelEntry]
    ) -> None:
        """Serve a reloaded config file's models, with the stored ones on top (when on).

        The caller has already swapped the table to the config's models and aliases;
        the stored models read last are rebuilt against the new config (its credentials)
        and swapped in at once, synchronously: no request sees the table without them.
        """
        self._use_config(config, config_deployments, deferred)
        if self.enabled and self._snapshot is not None:
            self.apply(self._snapshot)

    # -- checks for the management API ---------------------------------------------------------

    def credentials(self, stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Config credentials plus ``stored`` ones (names never clash: POST refuses it)."""
        return {**self.config_credentials, **stored}

    def check(self, spec: ModelSpec, stored_credentials: Mapping[str, Mapping[str, Any]]) -> None:
        """Raise ModelSpecError if ``spec`` would not become a deployment."""
        build_spec(spec, self.credentials(stored_credentials), self.registry, self.config)

    def deployment(self, ident: str) -> Deployment | None:
        return next((d for d in self.table.all_deployments if d.id == ident), None)

    # -- loading ---------------------------------------------------------------------------------

    def apply(self, snapshot: CatalogSnapshot) -> None:
        """Build the stored models' deployments and swap them in (synchronously)."""
        credentials = self.credentials(snapshot.credentials)
        extra, problems = build_all(
            [*self.deferred, *snapshot.models],
            credentials,
            self.registry,
            self.config,
            {d.id for d in self.config_deployments},
        )
        problems += [
            f"stored {what}: cannot decrypt its secrets with this salt key; not served"
            for what in snapshot.unreadable
        ]
        for line in problems:
            if line not in self.problems:
                logger.warning("%s", line)
        self.problems = problems
        deployments = [*self.config_deployments, *extra]
        self.table.adopt(self.table.with_deployments(deployments))
        self._version = snapshot.version
        self._snapshot = snapshot
        if self._on_change is not None:
            self._on_change(deployments)

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload when the stored models changed (or always, with ``force``); True when
        something new was swapped in."""
        if not self.enabled or self._load is None:
            return False
        async with self._lock:
            unchanged = (
                not force
                and self._version_of is not None
                and self._version is not None
                and await self._version_of() == self._version
            )
            if unchanged:
                return False
            snapshot = await self._load()
            if snapshot.version == self._version and not force:
                return False
            self.apply(snapshot)
            return True

    async def start(self) -> None:
        if not self.enabled:
            return
        try:
            await self.refresh(force=True)
        except Exception as exc:  # serve the config models; stored ones arrive with the DB
            logger.error("could not load stored models from the database: %s", exc)
        self._poller.start()
        served = len(self.table.all_deployments) - len(self.config_deployments)
        logger.info("store_model_in_db: %d models from the database", served)

    async def stop(self) -> None:
        await self._poller.stop()


def database_loaders(database: Database) -> tuple[SnapshotLoader, VersionLoader]:
    """Read the stored models and credentials (and their fingerprint) from ``database``."""
    # Imported here: the repositories load on first use, not at startup.
    from bastion.storage.repositories.catalog import catalog_version

    async def load() -> CatalogSnapshot:
        async with database.transaction() as store:
            version = await catalog_version(store.session)
            models, bad_models = await store.models.readable()
            credentials, bad_credentials = await store.credentials.readable()
        return CatalogSnapshot(
            version=version,
            models=[spec_of(m) for m in models],
            credentials={c.credential_name: c.credential_values for c in credentials},
            unreadable=[
                *(f"model {i}" for i in bad_models),
                *(f"credential {n}" for n in bad_credentials),
            ],
        )

    async def version() -> str:
        async with database.transaction() as store:
            return await catalog_version(store.session)

    return load, version


def spec_of(model: StoredModel) -> ModelSpec:
    info = {k: v for k, v in model.model_info.items() if k not in ("id", "db_model")}
    return ModelSpec(model.model_id, model.model_name, dict(model.litellm_params), info)
