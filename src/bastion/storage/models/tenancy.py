"""Organizations, teams, users, team memberships, end users and reusable budgets.

Field names follow LiteLLM's management API so responses map one to one. Budget
fields are inline on each entity (``max_budget``, ``budget_duration``,
``budget_reset_at``, ``spend`` …); end users and organizations may instead point
at a reusable row in ``budgets``.

Deleting a team or user deletes its memberships and keys (as LiteLLM does);
deleting an organization or budget that is still referenced is refused.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models.base import (
    Base,
    created_at,
    flag,
    int_limit,
    json_dict,
    json_list,
    money,
    updated_at,
)

ID = sa.String(255)
USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
MEMBER_ROLES = ("admin", "user")


class Budget(Base):
    __tablename__ = "budgets"

    budget_id: Mapped[str] = mapped_column(ID, primary_key=True)
    max_budget: Mapped[Decimal | None] = money()
    soft_budget: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    max_parallel_requests: Mapped[int | None] = int_limit()
    model_max_budget: Mapped[dict[str, Any]] = json_dict()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)


class Organization(Base):
    __tablename__ = "organizations"

    organization_id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_alias: Mapped[str | None] = mapped_column(sa.String(255))
    budget_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("budgets.budget_id", ondelete="RESTRICT"), index=True
    )
    max_budget: Mapped[Decimal | None] = money()
    soft_budget: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    spend: Mapped[Decimal] = money(nullable=False)
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    max_parallel_requests: Mapped[int | None] = int_limit()
    models: Mapped[list[str]] = json_list()
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")
    blocked: Mapped[bool] = flag()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)


class Team(Base):
    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(ID, primary_key=True)
    team_alias: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    organization_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("organizations.organization_id", ondelete="RESTRICT"), index=True
    )
    models: Mapped[list[str]] = json_list()
    max_budget: Mapped[Decimal | None] = money()
    soft_budget: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    spend: Mapped[Decimal] = money(nullable=False)
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    max_parallel_requests: Mapped[int | None] = int_limit()
    team_member_budget: Mapped[Decimal | None] = money()
    model_aliases: Mapped[dict[str, Any]] = json_dict()
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")
    blocked: Mapped[bool] = flag()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "user_role IN (" + ", ".join(f"'{r}'" for r in USER_ROLES) + ")", name="user_role"
        ),
    )

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_alias: Mapped[str | None] = mapped_column(sa.String(255))
    user_email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    user_role: Mapped[str] = mapped_column(
        sa.String(32), nullable=False, default="internal_user", server_default="internal_user"
    )
    max_budget: Mapped[Decimal | None] = money()
    soft_budget: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    spend: Mapped[Decimal] = money(nullable=False)
    models: Mapped[list[str]] = json_list()
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    max_parallel_requests: Mapped[int | None] = int_limit()
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")
    blocked: Mapped[bool] = flag()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)


class TeamMembership(Base):
    __tablename__ = "team_memberships"
    __table_args__ = (sa.CheckConstraint("role IN ('admin', 'user')", name="role"),)

    team_id: Mapped[str] = mapped_column(
        sa.ForeignKey("teams.team_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(
        sa.String(16), nullable=False, default="user", server_default="user"
    )
    max_budget_in_team: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    spend: Mapped[Decimal] = money(nullable=False)
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class EndUser(Base):
    """A caller's own end user: the ``user`` field of a request ("customer")."""

    __tablename__ = "end_users"

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    alias: Mapped[str | None] = mapped_column(sa.String(255))
    budget_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("budgets.budget_id", ondelete="RESTRICT"), index=True
    )
    blocked: Mapped[bool] = flag()
    spend: Mapped[Decimal] = money(nullable=False)
    allowed_model_region: Mapped[str | None] = mapped_column(sa.String(32))
    default_model: Mapped[str | None] = mapped_column(sa.String(255))
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


__all__ = [
    "MEMBER_ROLES",
    "USER_ROLES",
    "Budget",
    "EndUser",
    "Organization",
    "Team",
    "TeamMembership",
    "User",
]
