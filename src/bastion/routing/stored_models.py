"""Deployments for models stored in the database (``/model/new``), and for config
models whose ``litellm_credential_name`` names a credential stored there.

Pure: the specs and credentials come in as plain data (the service reads them), a
list of deployments and a list of problems come out. One model that cannot be
built (its credential was deleted, its provider is unknown) is reported and left
out; it never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.config.model import ModelEntry, ProxyConfig
from bastion.core.deployment import Deployment
from bastion.providers.registry import ProviderRegistry, UnknownProviderError
from bastion.routing.deployments import deployment_id, make_deployment

Credentials = Mapping[str, Mapping[str, Any]]


class ModelSpecError(ValueError):
    """A spec that cannot become a deployment; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclass(frozen=True)
class ModelSpec:
    """One model as stored: public name, litellm_params (secrets in the clear) and
    model_info; ``stored`` marks a database model (``db_model`` in /model/info)."""

    ident: str
    model_name: str
    params: dict[str, Any]
    model_info: dict[str, Any] = field(default_factory=dict)
    stored: bool = True

    @classmethod
    def of_config(cls, entry: ModelEntry) -> ModelSpec:
        return cls(
            ident=deployment_id(entry),
            model_name=entry.model_name,
            params=entry.litellm_params.model_dump(exclude_none=True),
            model_info=entry.model_info.model_dump(),
            stored=False,
        )


def with_credential(params: Mapping[str, Any], credentials: Credentials) -> dict[str, Any]:
    """``params`` with the values of its ``litellm_credential_name`` filled in (the
    model's own values win)."""
    out = dict(params)
    name = out.get("litellm_credential_name")
    if not name:
        return out
    values = credentials.get(str(name))
    if values is None:
        known = ", ".join(sorted(credentials)[:10]) or "none"
        raise ModelSpecError(
            "litellm_params.litellm_credential_name",
            f"no credential named '{name}' (known: {known}); create it with POST /credentials "
            "or add it to credential_list",
        )
    for key, value in values.items():
        if value is not None:
            out.setdefault(key, value)
    return out


def build_spec(
    spec: ModelSpec, credentials: Credentials, registry: ProviderRegistry, config: ProxyConfig
) -> Deployment:
    """The deployment for ``spec``; ModelSpecError says which field is wrong."""
    if "*" in spec.model_name:
        raise ModelSpecError("model_name", "wildcard names are served from the config file only")
    params = with_credential(spec.params, credentials)
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise ModelSpecError("litellm_params.model", "required: the provider/model to call")
    info = {k: v for k, v in spec.model_info.items() if v is not None}
    info["id"] = spec.ident
    if spec.stored:
        info["db_model"] = True
    try:
        return make_deployment(spec.model_name, params, info, spec.ident, registry, config)
    except UnknownProviderError as exc:
        raise ModelSpecError("litellm_params.model", str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelSpecError("litellm_params", str(exc) or type(exc).__name__) from None


def build_all(
    specs: Iterable[ModelSpec],
    credentials: Credentials,
    registry: ProviderRegistry,
    config: ProxyConfig,
    taken_ids: set[str],
) -> tuple[list[Deployment], list[str]]:
    """Deployments for every spec that builds; a line per spec that does not."""
    deployments: list[Deployment] = []
    problems: list[str] = []
    seen = set(taken_ids)
    for spec in specs:
        what = f"model {spec.ident!r} ({spec.model_name})"
        if spec.ident in seen:
            problems.append(f"{what}: id already used by another model; not served")
            continue
        try:
            deployments.append(build_spec(spec, credentials, registry, config))
        except ModelSpecError as exc:
            problems.append(f"{what}: {exc}; not served")
            continue
        seen.add(spec.ident)
    return deployments, problems
