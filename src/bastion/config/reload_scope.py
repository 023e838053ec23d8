"""Which settings a config reload applies, and which wait for the next restart.

A reload (SIGHUP, ``bastion reload``, ``POST /config/reload``) applies the model
list and credentials, every ``router_settings`` entry but the Redis address, the
router settings LiteLLM also reads from ``litellm_settings``, prices, the master
key, the global parallel-request limit and the health-check settings. Anything
else that changed is listed by :func:`restart_only_changes` (names only, never
values: some are secrets) and keeps its startup value until a restart.
"""

from __future__ import annotations

from typing import Any

from bastion.config import known_keys
from bastion.config.model import ProxyConfig

# Sections whose every key a reload applies, except those listed.
_ALL_BUT: dict[str, frozenset[str]] = {
    "router_settings": frozenset({"redis_host", "redis_port", "redis_password", "redis_url"}),
}

# Sections of which a reload applies only these keys.
_ONLY: dict[str, frozenset[str]] = {
    "litellm_settings": frozenset(
        {
            # read by the router (LiteLLM accepts them here too)
            "fallbacks",
            "default_fallbacks",
            "context_window_fallbacks",
            "content_policy_fallbacks",
            "num_retries",
            "retry_policy",
            "allowed_fails",
            "cooldown_time",
            "disable_cooldowns",
            "model_group_alias",
            # read when the deployments are built
            "request_timeout",
            "drop_params",
            # prices
            "model_cost_map_path",
            "include_cost_in_streaming_usage",
        }
    ),
    "general_settings": frozenset(
        {
            "master_key",
            "global_max_parallel_requests",
            "rate_limit_fail_closed",
            "background_health_checks",
            "health_check_interval",
            "health_check_timeout",
        }
    ),
}

SECTIONS = ("router_settings", "litellm_settings", "general_settings")

# Settings this version accepts without acting on: a change to them is not news.
_INERT: dict[str, frozenset[str]] = {
    "router_settings": known_keys.ROUTER_SETTINGS,
    "litellm_settings": known_keys.LITELLM_SETTINGS - known_keys.LITELLM_SETTINGS_ROUTER_ALIASES,
    "general_settings": known_keys.GENERAL_SETTINGS - known_keys.GENERAL_SETTINGS_ACTED_ON,
}


def restart_only_changes(old: ProxyConfig, new: ProxyConfig) -> list[str]:
    """``section.key`` of every changed setting a reload does not apply, in file order.

    ``model_list``, ``credential_list``, ``include`` and ``environment_variables``
    are applied as a whole (what the last two bring shows up in the sections).
    """
    changed: list[str] = []
    for section in SECTIONS:
        before = _section(old, section)
        after = _section(new, section)
        inert = _INERT[section] | known_keys.NOT_YET_ACTED_ON.get(section, frozenset())
        for key in dict.fromkeys([*before, *after]):
            if before.get(key) == after.get(key) or reloadable(section, key) or key in inert:
                continue
            changed.append(f"{section}.{key}")
    return changed


def reloadable(section: str, key: str) -> bool:
    """Whether a reload applies ``section.key``."""
    if section in _ALL_BUT:
        return key not in _ALL_BUT[section]
    return key in _ONLY.get(section, frozenset())


def _section(config: ProxyConfig, name: str) -> dict[str, Any]:
    section = getattr(config, name)
    # Unset fields count as their defaults: removing "cooldown_time: 5" changes nothing.
    dumped: dict[str, Any] = section.model_dump()
    return dumped
