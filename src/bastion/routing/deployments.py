"""Turning ``model_list`` entries into Deployments, with config errors that name the path."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from bastion.config.known_keys import LITELLM_PARAMS
from bastion.config.model import ModelEntry, ProxyConfig
from bastion.core.deployment import Deployment
from bastion.core.errors import ConfigError
from bastion.dialects.openai_params import REQUEST_PARAMS
from bastion.providers.registry import ProviderRegistry, UnknownProviderError

# litellm_params that configure the deployment itself; everything else is a default
# request parameter (``temperature: 0.2``) or a provider-specific setting.
_DEPLOYMENT_FIELDS = frozenset(
    {
        "model",
        "custom_llm_provider",
        "api_key",
        "api_base",
        "api_version",
        "organization",
        "azure_ad_token",
        "litellm_credential_name",
        "rpm",
        "tpm",
        "weight",
        "timeout",
        "stream_timeout",
        "max_retries",
        "extra_headers",
        "headers",
        "drop_params",
        "mock_response",
        "input_cost_per_token",
        "output_cost_per_token",
        "order",
        "tags",
        "model_info",
        "base_model",
        "region_name",
        "tenant_id",
        "client_id",
        "client_secret",
        "use_in_pass_through",
        "use_litellm_proxy",
        "merge_reasoning_content_in_choices",
        "configurable_clientside_auth_params",
        "budget_duration",
        "max_budget",
        "cache_creation_input_token_cost",
        "cache_read_input_token_cost",
        "input_cost_per_second",
        "output_cost_per_second",
        "api_type",
    }
)
_PROVIDER_SETTING_PREFIXES = ("aws_", "vertex_", "azure_", "watsonx_")


def deployment_id(entry: ModelEntry) -> str:
    """LiteLLM-style stable id: a hash of the group name and its litellm_params."""
    if entry.model_info.id:
        return entry.model_info.id
    material = orjson.dumps(
        {"model_name": entry.model_name, "litellm_params": entry.litellm_params.model_dump()},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(material).hexdigest()


def build_deployments(
    config: ProxyConfig,
    registry: ProviderRegistry,
    source: str = "<config>",
    warnings: list[str] | None = None,
    *,
    deferred: list[ModelEntry] | None = None,
) -> list[Deployment]:
    """Every deployment of ``model_list``; problems raise ConfigError, notes go to warnings.

    With ``deferred`` (models stored in the database are on), an entry whose
    ``litellm_credential_name`` is not in ``credential_list`` may name a credential
    stored in the database: it is put in ``deferred`` and built when those are loaded.
    """
    problems: list[str] = []
    credentials = {c.credential_name: c.credential_values for c in config.credential_list}
    seen_ids: dict[str, int] = {}
    deployments: list[Deployment] = []
    for index, entry in enumerate(config.model_list):
        path = f"model_list[{index}]"
        params = entry.litellm_params.model_dump(exclude_none=True)
        credential_name = params.get("litellm_credential_name")
        if credential_name:
            if credential_name not in credentials and deferred is not None:
                deferred.append(entry)
                continue
            if credential_name not in credentials:
                problems.append(
                    f"{path}.litellm_params.litellm_credential_name: no credential named "
                    f"'{credential_name}' in credential_list" + _known(list(credentials))
                )
                continue
            for name, value in credentials[credential_name].items():
                if value is not None:
                    params.setdefault(name, value)
        ident = deployment_id(entry)
        if ident in seen_ids:
            problems.append(
                f"{path}.model_info.id: '{ident}' is already used by model_list[{seen_ids[ident]}]"
            )
            continue
        seen_ids[ident] = index
        for name in unused_params(params):
            if warnings is not None:
                warnings.append(
                    f"{path}.litellm_params.{name}: not a setting or request field Bastion "
                    "knows, so it is not sent upstream (put provider-specific request fields "
                    "under extra_body)"
                )
        try:
            deployments.append(
                make_deployment(
                    entry.model_name,
                    params,
                    entry.model_info.model_dump(),
                    ident,
                    registry,
                    config,
                    wildcard_template="*" in entry.model_name,
                )
            )
        except UnknownProviderError as exc:
            problems.append(f"{path}.litellm_params.model: {exc}")
        except ValueError as exc:
            problems.append(f"{path}.litellm_params: {exc}")
    groups = {d.model_name for d in deployments} | {e.model_name for e in deferred or ()}
    problems.extend(_check_fallbacks(config, groups))
    if problems:
        raise ConfigError(source, problems)
    return deployments


def make_deployment(
    model_name: str,
    params: dict[str, Any],
    model_info: dict[str, Any],
    ident: str,
    registry: ProviderRegistry,
    config: ProxyConfig,
    *,
    wildcard_template: bool = False,
) -> Deployment:
    model = str(params["model"])
    if wildcard_template and model == "*" and not params.get("custom_llm_provider"):
        # LiteLLM's "proxy every model" entry: the provider is resolved per requested name
        # when the wildcard is expanded; the template itself is never called.
        provider, upstream_model = registry.fake, model
    else:
        provider, upstream_model = registry.resolve(model, params.get("custom_llm_provider"))
    router = config.router_settings
    timeout = params.get("timeout") or router.timeout or config.litellm_settings.request_timeout
    drop = params.get("drop_params")
    deployment = Deployment(
        id=ident,
        model_name=model_name,
        provider_name=provider.name,
        upstream_model=upstream_model,
        provider=provider,
        api_base=params.get("api_base"),
        api_key=params.get("api_key"),
        api_version=params.get("api_version"),
        timeout=timeout,
        stream_timeout=params.get("stream_timeout") or router.stream_timeout or timeout,
        rpm=params.get("rpm"),
        tpm=params.get("tpm"),
        weight=params.get("weight"),
        mock_response=params.get("mock_response"),
        drop_params=config.litellm_settings.drop_params if drop is None else drop,
        extra_headers={**(params.get("headers") or {}), **(params.get("extra_headers") or {})},
        default_params=request_defaults(params),
        params=params,
        model_info={k: v for k, v in model_info.items() if v is not None},
    )
    provider.configure(deployment)
    return deployment


def request_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """The litellm_params that are request fields: defaults the client's body overrides."""
    defaults = {k: v for k, v in params.items() if k in REQUEST_PARAMS and k != "model"}
    extra_body = params.get("extra_body")
    if isinstance(extra_body, dict):
        defaults.update(extra_body)
    return defaults


def unused_params(params: dict[str, Any]) -> list[str]:
    """litellm_params that are neither settings nor request fields: they go nowhere."""
    return [
        k
        for k in params
        if k not in _DEPLOYMENT_FIELDS
        and k not in LITELLM_PARAMS
        and k not in REQUEST_PARAMS
        and k != "extra_body"
        and not k.startswith(_PROVIDER_SETTING_PREFIXES)
        and "_cost" not in k  # prices (bastion.policy.pricing), never sent upstream
    ]


def _check_fallbacks(config: ProxyConfig, groups: set[str]) -> list[str]:
    problems: list[str] = []
    router = config.router_settings
    aliases = set(router.model_group_alias)
    wildcard = any("*" in g for g in groups)
    known = groups | aliases

    def check(name: str, where: str) -> None:
        if name not in known and not wildcard:
            problems.append(f"{where}: no model group named '{name}'" + _known(sorted(known)))

    for setting in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        for i, rule in enumerate(getattr(router, setting)):
            for group, targets in rule.items():
                check(group, f"router_settings.{setting}[{i}]")
                for target in targets:
                    check(target, f"router_settings.{setting}[{i}].{group}")
    for i, target in enumerate(router.default_fallbacks):
        check(target, f"router_settings.default_fallbacks[{i}]")
    for alias, target in router.model_group_alias.items():
        name = target.get("model") if isinstance(target, dict) else target
        if isinstance(name, str) and name not in groups and not wildcard:
            problems.append(
                f"router_settings.model_group_alias.{alias}: no model group named '{name}'"
                + _known(sorted(groups))
            )
    return problems


def _known(names: list[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return f" (known: {shown})"
