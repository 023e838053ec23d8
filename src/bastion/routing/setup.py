"""Building the router from ``router_settings`` (and the ``litellm_settings`` aliases)."""

from __future__ import annotations

from typing import Any

from bastion.config.model import ProxyConfig
from bastion.core.deployment import Deployment
from bastion.policy.pricing import PriceBook
from bastion.routing.context_window import ContextWindows
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.model_table import ModelTable
from bastion.routing.retry_policy import (
    ALLOWED_FAILS,
    RETRIES,
    policy_field_names,
    unknown_policy_keys,
)
from bastion.routing.router import Router, RouterPolicy
from bastion.routing.state_store import DeploymentStateStore, InMemoryStateStore
from bastion.routing.strategies import UNPRICED_COST_PER_TOKEN, build_strategy

DEFAULT_NUM_RETRIES = 2
STRATEGY_ARGS = frozenset({"ttl", "lowest_latency_buffer"})


def build_router(
    config: ProxyConfig,
    table: ModelTable,
    prices: PriceBook | None = None,
    warnings: list[str] | None = None,
    store: DeploymentStateStore | None = None,
) -> Router:
    """The router for a config; settings it cannot use are noted in ``warnings``."""
    notes: list[str] = warnings if warnings is not None else []
    router_settings = config.router_settings
    extra = config.litellm_settings.model_extra or {}

    def router_value(name: str) -> Any:
        """router_settings wins; LiteLLM also reads these from litellm_settings."""
        if name in router_settings.model_fields_set or name not in extra:
            return getattr(router_settings, name)
        return extra[name]

    store = store or InMemoryStateStore()
    cooldowns = CooldownTracker(
        allowed_fails=int(router_value("allowed_fails")),
        cooldown_time=float(router_value("cooldown_time")),
        disabled=bool(router_value("disable_cooldowns")),
        allowed_fails_policy=router_settings.allowed_fails_policy,
        store=store,
    )
    num_retries = router_settings.num_retries
    if num_retries is None:
        num_retries = config.litellm_settings.num_retries
    policy = RouterPolicy(
        num_retries=DEFAULT_NUM_RETRIES if num_retries is None else num_retries,
        max_fallbacks=router_settings.max_fallbacks,
        retry_after=router_settings.retry_after,
        fallbacks=_rules(extra.get("fallbacks"), router_settings.fallbacks),
        default_fallbacks=router_settings.default_fallbacks
        or list(extra.get("default_fallbacks") or []),
        context_window_fallbacks=_rules(
            extra.get("context_window_fallbacks"), router_settings.context_window_fallbacks
        ),
        content_policy_fallbacks=_rules(
            extra.get("content_policy_fallbacks"), router_settings.content_policy_fallbacks
        ),
        retry_policy=_mapping(router_value("retry_policy"), "retry_policy", notes),
        model_group_retry_policy=_group_policies(router_value("model_group_retry_policy"), notes),
        enable_pre_call_checks=bool(router_settings.enable_pre_call_checks),
    )

    def cost_of(deployment: Deployment) -> float:
        price = prices.price_for(deployment) if prices is not None else None
        if price is None:
            return UNPRICED_COST_PER_TOKEN
        return float(price.rates.input + price.rates.output)

    policies = [
        ("retry_policy", policy.retry_policy, RETRIES),
        ("allowed_fails_policy", router_settings.allowed_fails_policy, ALLOWED_FAILS),
    ]
    policies += [
        (f"model_group_retry_policy.{group}", counts, RETRIES)
        for group, counts in policy.model_group_retry_policy.items()
    ]
    for section, value, suffix in policies:
        for key in unknown_policy_keys(value, suffix):
            notes.append(
                f"router_settings.{section}.{key}: not a field LiteLLM's policy has, ignored "
                f"(known: {', '.join(sorted(policy_field_names(suffix)))})"
            )
    strategy = build_strategy(
        router_settings.routing_strategy,
        store,
        args=_strategy_args(router_settings.routing_strategy_args, notes),
        cost_of=cost_of,
    )
    windows = ContextWindows(prices.context_window if prices is not None else None)
    return Router(table, policy, cooldowns, strategy=strategy, context_windows=windows)


def _strategy_args(args: dict[str, Any] | None, notes: list[str]) -> dict[str, float]:
    """The numeric ``routing_strategy_args`` Bastion reads; others are noted and dropped."""
    kept: dict[str, float] = {}
    for name, value in (args or {}).items():
        where = f"router_settings.routing_strategy_args.{name}"
        if name not in STRATEGY_ARGS:
            notes.append(f"{where}: not used by Bastion's strategies, ignored")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            notes.append(f"{where}: must be a non-negative number, ignored")
        else:
            kept[name] = float(value)
    return kept


def _mapping(value: Any, name: str, notes: list[str]) -> dict[str, int | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        notes.append(f"{name}: must be a mapping of LiteLLM policy fields to counts, ignored")
        return None
    kept: dict[str, int | None] = {}
    for key, count in value.items():
        if count is None or (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            kept[str(key)] = count
        else:
            notes.append(f"{name}.{key}: must be a non-negative integer, ignored")
    return kept


def _group_policies(value: Any, notes: list[str]) -> dict[str, dict[str, int | None]]:
    """``model_group_retry_policy``: ``{model group: retry_policy}``."""
    name = "model_group_retry_policy"
    if value is None:
        return {}
    if not isinstance(value, dict):
        notes.append(f"{name}: must be a mapping of model groups to retry policies, ignored")
        return {}
    kept: dict[str, dict[str, int | None]] = {}
    for group, policy in value.items():
        counts = _mapping(policy, f"{name}.{group}", notes)
        if counts is not None:
            kept[str(group)] = counts
    return kept


def _rules(*sources: Any) -> dict[str, list[str]]:
    """``[{group: [fallback, …]}, …]`` lists merged into one mapping (later wins)."""
    merged: dict[str, list[str]] = {}
    for rules in sources:
        for rule in rules or ():
            if not isinstance(rule, dict):
                continue
            for group, targets in rule.items():
                if isinstance(targets, str):
                    targets = [targets]
                if isinstance(targets, list):
                    merged[str(group)] = [str(t) for t in targets]
    return merged
