"""The composition root: configuration in, a wired ASGI application out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from bastion.cache.service import ResponseCache
from bastion.cache.setup import build_response_cache
from bastion.config.loader import LoadedConfig, load_config_file, load_config_text
from bastion.config.master_key import master_key_of
from bastion.config.model import ModelEntry
from bastion.core.deployment import Deployment
from bastion.core.dialect import Dialect
from bastion.dialects.anthropic_bridge import AnthropicBridge
from bastion.interfaces.http.app import BastionApp, Handler, LazyApp
from bastion.interfaces.http.count_tokens import CountTokensEndpoint
from bastion.interfaces.http.info import InfoEndpoints
from bastion.interfaces.http.llm import LLMEndpoints
from bastion.limits.limiter import RateLimiter
from bastion.limits.setup import build_rate_limiter
from bastion.policy.auth import Authenticator
from bastion.policy.budgets import BudgetGuard
from bastion.policy.pricing import PriceBook
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry
from bastion.reload import ConfigReloader, ignore_reload_signal
from bastion.routing.config_table import config_model_table
from bastion.routing.deployments import build_deployments
from bastion.routing.model_table import ModelTable
from bastion.routing.router import Router
from bastion.routing.setup import build_router
from bastion.services.alerts import Alerter
from bastion.services.budget_config import alerter, window_budgets
from bastion.services.gateway import GatewayService
from bastion.services.health import HealthChecker
from bastion.services.metering import Meter
from bastion.services.model_catalog import ModelCatalog, database_loaders, store_model_in_db
from bastion.services.shared_state import SharedState
from bastion.services.spend_bodies import SpendBodies
from bastion.services.spend_writer import DEFAULT_INTERVAL_S
from bastion.services.tenancy import Tenancy, database_target
from bastion.services.tenant_policy import TenantPolicy
from bastion.services.token_count import TokenCountService

logger = logging.getLogger("bastion")

CONFIG_ENV = "BASTION_CONFIG"
LOG_LEVEL_ENV = "BASTION_LOG_LEVEL"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEFAULT_MAX_BODY_MB = 100.0
SPEND_SPILL_ENV = "BASTION_SPEND_SPILL_PATH"
DEFAULT_SPEND_SPILL = "bastion-spend-spill.jsonl"


def load_default_config() -> LoadedConfig:
    text = resources.files("bastion").joinpath("default_config.yaml").read_text("utf-8")
    return load_config_text(text, source="<embedded default config>")


def load_config(path: str | None) -> LoadedConfig:
    return load_config_file(path) if path else load_default_config()


@dataclass
class Runtime:
    loaded: LoadedConfig
    http: UpstreamHTTP
    registry: ProviderRegistry
    deployments: list[Deployment]
    table: ModelTable
    router: Router
    gateway: GatewayService
    auth: Authenticator
    health: HealthChecker
    tenancy: Tenancy
    policy: TenantPolicy
    limits: RateLimiter | None = None
    models: ModelCatalog | None = None
    alerts: Alerter | None = None
    cache: ResponseCache | None = None
    shared: SharedState | None = None  # budgets and routing state on Redis
    reloader: ConfigReloader | None = None

    async def start(self) -> None:
        await self.http.start()
        if self.limits is not None:
            await self.limits.start()
        if self.shared is not None:
            await self.shared.start()
        if self.cache is not None:
            await self.cache.start()
        await self.tenancy.start()
        if self.alerts is not None:
            await self.alerts.start()
        if self.models is not None:
            await self.models.start()
        self.health.start_background()
        if self.reloader is not None:
            self.reloader.listen()
        if self.auth.open_access:
            logger.warning(
                "\n%s\n NO MASTER KEY IS SET: this gateway serves ANYONE who can reach it.\n"
                " Set general_settings.master_key or LITELLM_MASTER_KEY to require a key.\n%s",
                "!" * 72,
                "!" * 72,
            )
        logger.info(
            "serving %d model groups (%d deployments) from %s",
            len(self.table.groups),
            len(self.deployments),
            self.loaded.source,
        )

    async def stop(self) -> None:
        if self.reloader is not None:
            self.reloader.stop_listening()
        if self.models is not None:
            await self.models.stop()
        await self.health.stop()
        await self.tenancy.stop()
        if self.cache is not None:
            await self.cache.stop()
        if self.alerts is not None:  # before the limiter closes the Redis link it claims on
            await self.alerts.stop()
        if self.shared is not None:
            await self.shared.stop()
        if self.limits is not None:
            await self.limits.stop()
        await self.http.close()


def build_runtime(loaded: LoadedConfig) -> Runtime:
    config = loaded.config
    http = UpstreamHTTP()
    registry = ProviderRegistry(http)
    stored_models = store_model_in_db(config)
    deferred: list[ModelEntry] = []
    deployments = build_deployments(
        config,
        registry,
        loaded.source,
        loaded.warnings,
        deferred=deferred if stored_models else None,
    )
    for entry in deferred:
        loaded.warnings.append(
            f"model {entry.model_name}: litellm_credential_name "
            f"'{entry.litellm_params.litellm_credential_name}' is not in credential_list; it is "
            "looked up among the credentials stored in the database"
        )

    table = config_model_table(config, registry, deployments)
    prices = PriceBook.from_config(config)
    limits = build_rate_limiter(
        config, deployments, source=loaded.source, dynamic_deployments=bool(stored_models)
    )
    shared = SharedState.of(limits)  # with Redis: routing state and budgets across replicas
    router = build_router(
        config, table, prices, loaded.warnings, store=shared.routing_store() if shared else None
    )
    gateway = GatewayService(router, registry.fake, bridges={Dialect.ANTHROPIC: AnthropicBridge()})
    general = config.general_settings
    health = HealthChecker(
        deployments,
        registry.fake,
        timeout=general.health_check_timeout,
        background_interval=general.health_check_interval
        if general.background_health_checks
        else None,
    )
    master_key = master_key_of(config)
    general_extra = general.model_extra or {}
    windows = window_budgets(config, loaded.warnings)
    tenancy = Tenancy.create(
        database_target(general.database_url),
        master_key,
        batch_interval=float(general_extra.get("proxy_batch_write_at") or DEFAULT_INTERVAL_S),
        spill_path=Path(os.environ.get(SPEND_SPILL_ENV, DEFAULT_SPEND_SPILL)),
        spend_logs=not general.disable_spend_logs,
        retention_period=general.maximum_spend_logs_retention_period,
        retention_interval=general.maximum_spend_logs_retention_interval,
        windows=windows,
    )
    load_models, models_version = database_loaders(tenancy.database)
    models = ModelCatalog(
        config,
        registry,
        table,
        deployments,
        deferred,
        enabled=stored_models,
        load=load_models,
        version=models_version,
        on_change=lambda current: setattr(health, "deployments", current),
    )
    for unpriced in prices.unpriced(deployments):
        loaded.warnings.append(f"no price for {unpriced}: its calls are charged $0")
    end_user_budget = (config.litellm_settings.model_extra or {}).get("max_end_user_budget")
    alerts = alerter(general_extra, loaded.warnings, limits)  # with Redis: one sender per alert
    budgets = BudgetGuard(
        tenancy.ledger,
        status=int(general_extra.get("budget_exceeded_status_code") or 422),
        default_end_user_budget=(
            Decimal(str(end_user_budget)) if end_user_budget is not None else None
        ),
        alerts=alerts.budget,
    )
    keep_bodies = (
        general.store_prompts_in_spend_logs
        and not general.disable_spend_logs
        and not config.litellm_settings.turn_off_message_logging
    )
    tenant_policy = TenantPolicy(
        table,
        tenancy.keys,
        budgets,
        Meter(prices, tenancy.ledger, tenancy.writer),
        bodies=SpendBodies.from_environment() if keep_bodies else None,
        cost_in_stream_usage=config.litellm_settings.include_cost_in_streaming_usage,
        windows=windows,
    )
    if router.feedback.load:
        tenant_policy.on_usage = router.feedback.used
    if shared is not None:
        shared.share_budgets(budgets, tenant_policy.meter)
    return Runtime(
        loaded=loaded,
        http=http,
        registry=registry,
        deployments=deployments,
        table=table,
        router=router,
        gateway=gateway,
        auth=Authenticator(master_key, tenancy.keys),
        health=health,
        tenancy=tenancy,
        policy=tenant_policy,
        limits=limits,
        shared=shared,
        alerts=alerts,
        models=models,
        cache=build_response_cache(
            config, table, loaded.warnings, source=loaded.source, limits=limits
        ),
    )


def create_app(loaded: LoadedConfig) -> BastionApp:
    runtime = build_runtime(loaded)
    runtime.reloader = ConfigReloader(runtime, check=build_runtime)
    ignore_reload_signal()  # until the running runtime listens for it
    max_mb = runtime.loaded.config.general_settings.max_request_size_mb or DEFAULT_MAX_BODY_MB
    llm = LLMEndpoints(
        runtime.gateway,
        runtime.auth,
        int(max_mb * 1_048_576),
        runtime.policy,
        runtime.limits,
        runtime.cache,
    )
    info = InfoEndpoints(
        runtime.table,
        runtime.auth,
        runtime.health,
        runtime.tenancy,
        limits=runtime.limits,
        cache=runtime.cache,
        shared=runtime.shared,
    )
    counter = TokenCountService(runtime.router)
    tokens = CountTokensEndpoint(counter, runtime.auth, int(max_mb * 1_048_576))

    def build_control_plane() -> Handler:
        # Imported on the first management call: the data plane starts without it.
        from bastion.interfaces.http.admin.app import build_admin_app
        from bastion.interfaces.http.admin.context import AdminContext

        return build_admin_app(
            AdminContext(
                config=runtime.loaded.config,
                database=runtime.tenancy.database,
                auth=runtime.auth,
                refresh_keys=runtime.tenancy.keys.refresh,
                clock=lambda: datetime.now(UTC),
                models=runtime.models,
                reload_config=runtime.reloader.reload_everywhere if runtime.reloader else None,
            )
        )

    admin = LazyApp(build_control_plane)
    return BastionApp(llm, info, runtime, count_tokens=tokens.handle, control_plane=admin)


def configure_logging() -> None:
    """Plain log lines at BASTION_LOG_LEVEL, in the serving process and every worker."""
    level = os.environ.get(LOG_LEVEL_ENV, "info").upper()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)


def create_app_from_env() -> BastionApp:
    """Factory for worker processes: the config path comes from BASTION_CONFIG."""
    configure_logging()
    return create_app(load_config(os.environ.get(CONFIG_ENV) or None))
