"""The request ledger (``spend_logs``), daily aggregates and the audit log.

``spend_logs`` has no foreign keys on purpose: the ledger outlives deleted keys,
teams and users. Its primary key ``request_id`` makes spend batches idempotent.
``daily_spend`` has one row per (UTC date, entity type, entity id, model) so that
batched upserts add to it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models.base import Base, counter, json_dict, json_list, money
from bastion.storage.models.tenancy import ID
from bastion.storage.types import JSONType, UTCDateTime

ENTITY_TYPES = ("key", "team", "user", "end_user", "model", "organization")


class SpendLog(Base):
    __tablename__ = "spend_logs"
    __table_args__ = (
        sa.Index("ix_spend_logs_api_key_start_time", "api_key", "start_time"),
        sa.Index("ix_spend_logs_team_id_start_time", "team_id", "start_time"),
        sa.Index("ix_spend_logs_user_start_time", "user", "start_time"),
        sa.Index("ix_spend_logs_end_user_start_time", "end_user", "start_time"),
        sa.Index("ix_spend_logs_model_start_time", "model", "start_time"),
    )

    request_id: Mapped[str] = mapped_column(ID, primary_key=True)
    call_type: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="")
    api_key: Mapped[str | None] = mapped_column(sa.String(64))
    spend: Mapped[Decimal] = money(nullable=False)
    total_tokens: Mapped[int] = counter()
    prompt_tokens: Mapped[int] = counter()
    completion_tokens: Mapped[int] = counter()
    cached_tokens: Mapped[int] = counter()
    cache_creation_tokens: Mapped[int] = counter()
    reasoning_tokens: Mapped[int] = counter()
    start_time: Mapped[datetime] = mapped_column(nullable=False, index=True)
    end_time: Mapped[datetime | None] = mapped_column()
    completion_start_time: Mapped[datetime | None] = mapped_column()
    model: Mapped[str | None] = mapped_column(sa.String(255))
    model_id: Mapped[str | None] = mapped_column(sa.String(255))
    model_group: Mapped[str | None] = mapped_column(sa.String(255))
    api_base: Mapped[str | None] = mapped_column(sa.Text())
    custom_llm_provider: Mapped[str | None] = mapped_column(sa.String(64))
    user: Mapped[str | None] = mapped_column(ID)
    end_user: Mapped[str | None] = mapped_column(ID)
    team_id: Mapped[str | None] = mapped_column(ID)
    organization_id: Mapped[str | None] = mapped_column(ID)
    request_tags: Mapped[list[str]] = json_list()
    cache_hit: Mapped[bool] = mapped_column(
        sa.Boolean(), nullable=False, default=False, server_default=sa.false()
    )
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="success")
    messages: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    response: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    metadata_: Mapped[dict[str, Any]] = json_dict("metadata")


class DailySpend(Base):
    __tablename__ = "daily_spend"
    __table_args__ = (
        sa.CheckConstraint(
            "entity_type IN (" + ", ".join(f"'{e}'" for e in ENTITY_TYPES) + ")",
            name="entity_type",
        ),
        sa.Index("ix_daily_spend_entity_type_date", "entity_type", "date"),
    )

    date: Mapped[date] = mapped_column(sa.Date(), primary_key=True)
    entity_type: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    entity_id: Mapped[str] = mapped_column(ID, primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    spend: Mapped[Decimal] = money(nullable=False)
    requests: Mapped[int] = counter()
    successful_requests: Mapped[int] = counter()
    failed_requests: Mapped[int] = counter()
    prompt_tokens: Mapped[int] = counter()
    completion_tokens: Mapped[int] = counter()
    total_tokens: Mapped[int] = counter()
    cached_tokens: Mapped[int] = counter()
    cache_creation_tokens: Mapped[int] = counter()
    reasoning_tokens: Mapped[int] = counter()


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_table_name_object_id", "table_name", "object_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    changed_by: Mapped[str | None] = mapped_column(ID)
    changed_by_api_key: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    table_name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    object_id: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    before_value: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    after_value: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
