"""Which counters a request is held to: pure functions over the auth snapshot.

Per key, user, team, team member and end user: ``rpm_limit``, ``tpm_limit`` and
``max_parallel_requests`` (a team member has rpm and tpm only; an end user's come
from its budget, as in LiteLLM). Per model per key: ``model_rpm_limit`` and
``model_tpm_limit`` by model group name. ``global_max_parallel_requests`` for
every request. A deployment's ``rpm``/``tpm`` (litellm_params) is counted when the
router picks it (see :func:`deployment_counters`).
"""

from __future__ import annotations

from typing import Any

from bastion.core.deployment import Deployment
from bastion.limits.counters import Counter, Kind
from bastion.policy.auth import Principal, PrincipalKind
from bastion.storage.snapshot import AuthSnapshot, BudgetFields


def principal_counters(
    principal: Principal,
    *,
    models: tuple[str, ...] = (),
    end_user: str | None = None,
    snapshot: AuthSnapshot | None = None,
    global_max_parallel: int | None = None,
) -> list[Counter]:
    """The counters of the caller's key and everything it belongs to.

    ``models`` are the names the request's model goes by (as requested, then after
    key/team aliases): the first one a key's ``model_*_limit`` names is used.
    """
    counters: list[Counter] = []
    if global_max_parallel is not None:
        counters.append(
            Counter(
                Kind.PARALLEL,
                "global",
                global_max_parallel,
                "this gateway",
                "global_max_parallel_requests",
            )
        )
    if principal.kind is PrincipalKind.KEY and principal.key is not None:
        key = principal.key
        key_label = f"key {key.key_alias or key.key_name or key.token[:8]}"
        _add_budget(counters, f"key:{key.token}", key_label, key.budget)
        for setting, kind, table in (
            ("model_rpm_limit", Kind.RPM, key.model_rpm_limit),
            ("model_tpm_limit", Kind.TPM, key.model_tpm_limit),
        ):
            if table:
                for model in models:
                    limit = _limit(table.get(model))
                    if limit is not None:
                        counters.append(
                            Counter(
                                kind,
                                f"key_model:{key.token}:{model}",
                                limit,
                                f"{key_label} on model {model}",
                                setting,
                            )
                        )
                        break
        if principal.user is not None:
            user = principal.user
            _add_budget(counters, f"user:{user.user_id}", f"user {user.user_id}", user.budget)
        if principal.team is not None:
            team = principal.team
            label = f"team {team.team_alias or team.team_id}"
            _add_budget(counters, f"team:{team.team_id}", label, team.budget)
        if principal.membership is not None:
            member = principal.membership
            scope = f"member:{member.team_id}:{member.user_id}"
            label = f"member {member.user_id} of team {member.team_id}"
            if member.rpm_limit is not None:
                counters.append(Counter(Kind.RPM, scope, member.rpm_limit, label, "rpm_limit"))
            if member.tpm_limit is not None:
                counters.append(Counter(Kind.TPM, scope, member.tpm_limit, label, "tpm_limit"))
    if end_user and snapshot is not None:
        record = snapshot.end_users.get(end_user)
        if record is not None and record.budget_id:
            budget = snapshot.budgets.get(record.budget_id)
            if budget is not None:
                _add_budget(counters, f"end_user:{end_user}", f"end user {end_user}", budget.budget)
    return counters


def deployment_counters(deployment: Deployment) -> list[Counter]:
    """A deployment's own ``rpm``/``tpm`` from litellm_params."""
    counters: list[Counter] = []
    if deployment.rpm is None and deployment.tpm is None:
        return counters
    label = f"deployment {deployment.model_name} ({deployment.id})"
    if deployment.rpm is not None:
        counters.append(
            Counter(Kind.RPM, f"deployment:{deployment.id}", deployment.rpm, label, "rpm")
        )
    if deployment.tpm is not None:
        counters.append(
            Counter(Kind.TPM, f"deployment:{deployment.id}", deployment.tpm, label, "tpm")
        )
    return counters


def _add_budget(counters: list[Counter], scope: str, label: str, budget: BudgetFields) -> None:
    if budget.rpm_limit is not None:
        counters.append(Counter(Kind.RPM, scope, budget.rpm_limit, label, "rpm_limit"))
    if budget.tpm_limit is not None:
        counters.append(Counter(Kind.TPM, scope, budget.tpm_limit, label, "tpm_limit"))
    if budget.max_parallel_requests is not None:
        counters.append(
            Counter(
                Kind.PARALLEL, scope, budget.max_parallel_requests, label, "max_parallel_requests"
            )
        )


def _limit(value: Any) -> int | None:
    """A limit from a JSON map (``model_rpm_limit``): an int, or a numeric string."""
    if value is None or isinstance(value, bool):
        return None
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return None
    return limit if limit >= 0 else None
