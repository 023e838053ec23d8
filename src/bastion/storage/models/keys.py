"""Virtual keys (stored by the sha256 hex of the key) and regenerated keys' old hashes."""

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
from bastion.storage.models.tenancy import ID

TOKEN = sa.String(64)


class VirtualKey(Base):
    """An API key handed to a caller. ``token`` is sha256 hex of the key; the key itself
    is never stored. ``key_name`` is the display form (``sk-...abcd``)."""

    __tablename__ = "virtual_keys"

    token: Mapped[str] = mapped_column(TOKEN, primary_key=True)
    key_name: Mapped[str | None] = mapped_column(sa.String(64))
    key_alias: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    team_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("teams.team_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("organizations.organization_id", ondelete="RESTRICT"), index=True
    )
    models: Mapped[list[str]] = json_list()
    aliases: Mapped[dict[str, Any]] = json_dict()
    max_budget: Mapped[Decimal | None] = money()
    soft_budget: Mapped[Decimal | None] = money()
    budget_duration: Mapped[str | None] = mapped_column(sa.String(32))
    budget_reset_at: Mapped[datetime | None] = mapped_column()
    spend: Mapped[Decimal] = money(nullable=False)
    tpm_limit: Mapped[int | None] = int_limit()
    rpm_limit: Mapped[int | None] = int_limit()
    max_parallel_requests: Mapped[int | None] = int_limit()
    model_rpm_limit: Mapped[dict[str, Any]] = json_dict()
    model_tpm_limit: Mapped[dict[str, Any]] = json_dict()
    model_max_budget: Mapped[dict[str, Any]] = json_dict()
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")
    tags: Mapped[list[str]] = json_list()
    blocked: Mapped[bool] = flag()
    expires: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_by: Mapped[str | None] = mapped_column(ID)
    last_active: Mapped[datetime | None] = mapped_column()


class PreviousToken(Base):
    """After ``/key/regenerate`` with a grace period, the old hash stays valid until
    ``valid_until`` and authenticates as the key it was replaced by."""

    __tablename__ = "previous_tokens"

    token: Mapped[str] = mapped_column(TOKEN, primary_key=True)
    key_token: Mapped[str] = mapped_column(
        sa.ForeignKey("virtual_keys.token", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
        index=True,
    )
    valid_until: Mapped[datetime] = mapped_column(nullable=False, index=True)
    created_at: Mapped[datetime] = created_at()
