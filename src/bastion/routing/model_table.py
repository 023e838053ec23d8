"""Which deployments serve a requested model name: groups, aliases and wildcards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.core.deployment import Deployment

MAX_WILDCARD_CACHE = 2048


@dataclass(slots=True)
class _Wildcard:
    prefix: str
    template: Deployment


class ModelTable:
    """Model groups by public name.

    ``model_name: "openai/*"`` with ``model: "openai/*"`` serves any ``openai/…``
    name; ``model_name: "*"`` serves every name not otherwise configured. The
    deployment for a wildcard match is built once per concrete name and kept.
    """

    def __init__(
        self,
        deployments: list[Deployment],
        aliases: dict[str, str | dict[str, Any]] | None = None,
        wildcard_factory: Callable[[Deployment, str], Deployment] | None = None,
    ) -> None:
        self._alias_config = aliases
        self.groups: dict[str, list[Deployment]] = {}
        self._wildcards: list[_Wildcard] = []
        for deployment in deployments:
            if "*" in deployment.model_name:
                prefix = deployment.model_name.split("*", 1)[0]
                self._wildcards.append(_Wildcard(prefix, deployment))
            else:
                self.groups.setdefault(deployment.model_name, []).append(deployment)
        # Longest prefix first, so "openai/gpt-4*" beats "openai/*" beats "*".
        self._wildcards.sort(key=lambda w: len(w.prefix), reverse=True)
        self.aliases: dict[str, str] = {}
        self.hidden_aliases: set[str] = set()
        for alias, target in (aliases or {}).items():
            if isinstance(target, dict):
                self.aliases[alias] = str(target.get("model", ""))
                if target.get("hidden"):
                    self.hidden_aliases.add(alias)
            else:
                self.aliases[alias] = target
        self._wildcard_factory = wildcard_factory
        self._wildcard_cache: dict[str, list[Deployment]] = {}
        self.all_deployments = list(deployments)

    def with_deployments(self, deployments: list[Deployment]) -> ModelTable:
        """A new table of ``deployments`` with this table's aliases and wildcard factory."""
        return ModelTable(deployments, self._alias_config, self._wildcard_factory)

    def adopt(self, other: ModelTable) -> None:
        """Serve ``other``'s deployments and aliases from now on (stored models or the
        config file changed).

        Every holder of this table sees the change at once; the swap is synchronous, so
        no request on the event loop sees half of it. Groups are new lists: a request
        that already looked one up keeps its deployments.
        """
        (
            self.groups,
            self._wildcards,
            self.aliases,
            self.hidden_aliases,
            self._wildcard_cache,
            self.all_deployments,
            self._alias_config,
            self._wildcard_factory,
        ) = (
            other.groups,
            other._wildcards,
            other.aliases,
            other.hidden_aliases,
            other._wildcard_cache,
            other.all_deployments,
            other._alias_config,
            other._wildcard_factory,
        )

    def lookup(self, name: str) -> list[Deployment] | None:
        group = self.groups.get(name)
        if group is not None:
            return group
        target = self.aliases.get(name)
        if target is not None:
            return self.groups.get(target) or self._wildcard_lookup(target)
        return self._wildcard_lookup(name)

    def public_names(self) -> list[str]:
        names = list(self.groups)
        names.extend(a for a in self.aliases if a not in self.hidden_aliases)
        names.extend(w.template.model_name for w in self._wildcards)
        return list(dict.fromkeys(names))

    def _wildcard_lookup(self, name: str) -> list[Deployment] | None:
        cached = self._wildcard_cache.get(name)
        if cached is not None:
            return cached
        matches = [w for w in self._wildcards if name.startswith(w.prefix)]
        if not matches or self._wildcard_factory is None:
            return None
        best = len(matches[0].prefix)
        group = []
        for wildcard in matches:
            if len(wildcard.prefix) != best:
                break
            group.append(self._wildcard_factory(wildcard.template, name[len(wildcard.prefix) :]))
        if len(self._wildcard_cache) >= MAX_WILDCARD_CACHE:
            self._wildcard_cache.clear()
        self._wildcard_cache[name] = group
        return group
