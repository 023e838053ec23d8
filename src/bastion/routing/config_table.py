"""The model table of a config: its deployments, ``model_group_alias`` and wildcards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.config.model import ProxyConfig
from bastion.core.deployment import Deployment
from bastion.core.errors import NotFoundError
from bastion.providers.registry import ProviderRegistry, UnknownProviderError
from bastion.routing.deployments import make_deployment
from bastion.routing.model_table import ModelTable


def config_model_table(
    config: ProxyConfig, registry: ProviderRegistry, deployments: list[Deployment]
) -> ModelTable:
    return ModelTable(deployments, model_group_aliases(config), wildcard_factory(config, registry))


def model_group_aliases(config: ProxyConfig) -> dict[str, str | dict[str, Any]]:
    """``router_settings.model_group_alias`` over ``litellm_settings.model_group_alias``."""
    extra = config.litellm_settings.model_extra or {}
    return {
        **(extra.get("model_group_alias") or {}),
        **config.router_settings.model_group_alias,
    }


def wildcard_factory(
    config: ProxyConfig, registry: ProviderRegistry
) -> Callable[[Deployment, str], Deployment]:
    """Builds the deployment for a concrete name a wildcard deployment matched."""

    def wildcard_deployment(template: Deployment, matched: str) -> Deployment:
        params = dict(template.params)
        pattern = str(params["model"])
        name = template.model_name.replace("*", matched, 1)
        params["model"] = pattern.replace("*", matched, 1) if "*" in pattern else pattern
        try:
            return make_deployment(
                name, params, template.model_info, f"{template.id}:{matched}", registry, config
            )
        except (UnknownProviderError, ValueError) as exc:
            raise NotFoundError(f"model '{name}': {exc}", param="model") from None

    return wildcard_deployment
