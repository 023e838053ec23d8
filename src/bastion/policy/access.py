"""Which models a virtual key may call: its own list, its team's, and access groups."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bastion.core.errors import AuthenticationError
from bastion.policy.auth import Principal, PrincipalKind

ALL_MODELS = frozenset({"*", "all-proxy-models", "all-team-models"})


def aliased_model(principal: Principal, requested: str) -> str:
    """The model group a key's ``aliases`` (or its team's model aliases) map the name to."""
    if principal.kind is not PrincipalKind.KEY or principal.key is None:
        return requested
    target = principal.key.aliases.get(requested)
    if target is None and principal.team is not None:
        target = principal.team.model_aliases.get(requested)
    return target if isinstance(target, str) and target else requested


def check_model_access(
    principal: Principal, model: str, access_groups: Callable[[str], Iterable[str]]
) -> None:
    """Raises AuthenticationError (401, as LiteLLM) naming the model and who refuses it."""
    if principal.kind is not PrincipalKind.KEY or principal.key is None:
        return
    key = principal.key
    name = key.key_alias or key.key_name or "this key"
    if not _allowed(key.models, model, access_groups):
        raise AuthenticationError(
            f"key {name} may not call model '{model}'; it may call: {_shown(key.models)}",
            code="model_access_denied",
            param="model",
        )
    team = principal.team
    if team is not None and not _allowed(team.models, model, access_groups):
        raise AuthenticationError(
            f"team {team.team_alias or team.team_id} may not call model '{model}'; "
            f"it may call: {_shown(team.models)}",
            code="model_access_denied",
            param="model",
        )
    user = principal.user
    if team is None and user is not None and not _allowed(user.models, model, access_groups):
        raise AuthenticationError(
            f"user {user.user_id} may not call model '{model}'; it may call: {_shown(user.models)}",
            code="model_access_denied",
            param="model",
        )


def _allowed(allowed: list[str], model: str, access_groups: Callable[[str], Iterable[str]]) -> bool:
    if not allowed or model in allowed or ALL_MODELS.intersection(allowed):
        return True
    for pattern in allowed:
        if pattern.endswith("*") and model.startswith(pattern[:-1]):
            return True
    return any(group in allowed for group in access_groups(model))


def _shown(models: list[str]) -> str:
    return ", ".join(models[:20]) + (", ..." if len(models) > 20 else "") if models else "none"
