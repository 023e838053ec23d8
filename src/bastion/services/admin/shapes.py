"""Rows as LiteLLM's management API returns them (pure functions).

Column names are LiteLLM's field names (``metadata`` included); money is a JSON
number, times ISO 8601. A key row never carries the key, only its hash (``token``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bastion.storage.models import Base, TeamMembership, User


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def row_dict(row: Base) -> dict[str, Any]:
    """Every column of ``row`` by its column name, JSON-ready."""
    return {
        str(attr.columns[0].name): plain(getattr(row, attr.key))
        for attr in row.__mapper__.column_attrs
    }


def members_with_roles(
    memberships: Iterable[TeamMembership], users: dict[str, User]
) -> list[dict[str, Any]]:
    """LiteLLM's ``members_with_roles``: ``{user_id, user_email, role}`` per member."""
    out = []
    for m in memberships:
        user = users.get(m.user_id)
        out.append(
            {
                "user_id": m.user_id,
                "user_email": user.user_email if user is not None else None,
                "role": m.role,
            }
        )
    return out


def membership_dict(m: TeamMembership) -> dict[str, Any]:
    """LiteLLM's ``team_memberships`` item (the in-team budget inline, not in a table)."""
    shaped = row_dict(m)
    shaped["litellm_budget_table"] = {
        "max_budget": plain(m.max_budget_in_team),
        "budget_duration": m.budget_duration,
        "tpm_limit": m.tpm_limit,
        "rpm_limit": m.rpm_limit,
    }
    return shaped
