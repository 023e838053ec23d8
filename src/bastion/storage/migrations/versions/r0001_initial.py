"""Initial schema: tenancy, keys, stored models and credentials, spend, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Self-contained on purpose (no import of the models): a migration must keep
producing the same schema however the models change later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: USD: exact NUMERIC on PostgreSQL, integer nano-dollars on SQLite (see bastion.storage.types)
MONEY = sa.Numeric(18, 9).with_variant(sa.BigInteger(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("changed_by", sa.String(length=255), nullable=True),
        sa.Column("changed_by_api_key", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("before_value", JSON, nullable=True),
        sa.Column("after_value", JSON, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_table_name_object_id", "audit_log", ["table_name", "object_id"], unique=False
    )
    op.create_index(op.f("ix_audit_log_updated_at"), "audit_log", ["updated_at"], unique=False)

    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(length=255), nullable=False),
        sa.Column("max_budget", MONEY, nullable=True),
        sa.Column("soft_budget", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("model_max_budget", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budgets")),
    )
    op.create_table(
        "credentials",
        sa.Column("credential_name", sa.String(length=255), nullable=False),
        sa.Column("credential_values", sa.Text(), nullable=False),
        sa.Column("credential_info", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("credential_name", name=op.f("pk_credentials")),
    )
    op.create_table(
        "daily_spend",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("successful_requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed_requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_creation_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "entity_type IN ('key', 'team', 'user', 'end_user', 'model', 'organization')",
            name=op.f("ck_daily_spend_entity_type"),
        ),
        sa.PrimaryKeyConstraint(
            "date", "entity_type", "entity_id", "model", name=op.f("pk_daily_spend")
        ),
    )
    op.create_index(
        "ix_daily_spend_entity_type_date", "daily_spend", ["entity_type", "date"], unique=False
    )

    op.create_table(
        "db_models",
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("litellm_params", JSON, nullable=False),
        sa.Column("model_info", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_db_models")),
    )
    op.create_index(op.f("ix_db_models_model_name"), "db_models", ["model_name"], unique=False)

    op.create_table(
        "spend_logs",
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("call_type", sa.String(length=64), nullable=False),
        sa.Column("api_key", sa.String(length=64), nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_creation_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("start_time", TIMESTAMP, nullable=False),
        sa.Column("end_time", TIMESTAMP, nullable=True),
        sa.Column("completion_start_time", TIMESTAMP, nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("model_id", sa.String(length=255), nullable=True),
        sa.Column("model_group", sa.String(length=255), nullable=True),
        sa.Column("api_base", sa.Text(), nullable=True),
        sa.Column("custom_llm_provider", sa.String(length=64), nullable=True),
        sa.Column("user", sa.String(length=255), nullable=True),
        sa.Column("end_user", sa.String(length=255), nullable=True),
        sa.Column("team_id", sa.String(length=255), nullable=True),
        sa.Column("organization_id", sa.String(length=255), nullable=True),
        sa.Column("request_tags", JSON, nullable=False),
        sa.Column("cache_hit", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("messages", JSON, nullable=True),
        sa.Column("response", JSON, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_spend_logs")),
    )
    op.create_index(
        "ix_spend_logs_api_key_start_time", "spend_logs", ["api_key", "start_time"], unique=False
    )
    op.create_index(
        "ix_spend_logs_end_user_start_time", "spend_logs", ["end_user", "start_time"], unique=False
    )
    op.create_index(
        "ix_spend_logs_model_start_time", "spend_logs", ["model", "start_time"], unique=False
    )
    op.create_index(op.f("ix_spend_logs_start_time"), "spend_logs", ["start_time"], unique=False)
    op.create_index(
        "ix_spend_logs_team_id_start_time", "spend_logs", ["team_id", "start_time"], unique=False
    )
    op.create_index(
        "ix_spend_logs_user_start_time", "spend_logs", ["user", "start_time"], unique=False
    )

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("user_alias", sa.String(length=255), nullable=True),
        sa.Column("user_email", sa.String(length=320), nullable=True),
        sa.Column(
            "user_role", sa.String(length=32), server_default="internal_user", nullable=False
        ),
        sa.Column("max_budget", MONEY, nullable=True),
        sa.Column("soft_budget", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "user_role IN ('proxy_admin', 'proxy_admin_viewer', "
            "'internal_user', 'internal_user_viewer')",
            name=op.f("ck_users_user_role"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
        sa.UniqueConstraint("user_email", name=op.f("uq_users_user_email")),
    )
    op.create_table(
        "end_users",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=True),
        sa.Column("budget_id", sa.String(length=255), nullable=True),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("allowed_model_region", sa.String(length=32), nullable=True),
        sa.Column("default_model", sa.String(length=255), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.budget_id"],
            name=op.f("fk_end_users_budget_id_budgets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_end_users")),
    )
    op.create_index(op.f("ix_end_users_budget_id"), "end_users", ["budget_id"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.String(length=255), nullable=False),
        sa.Column("organization_alias", sa.String(length=255), nullable=True),
        sa.Column("budget_id", sa.String(length=255), nullable=True),
        sa.Column("max_budget", MONEY, nullable=True),
        sa.Column("soft_budget", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("models", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.budget_id"],
            name=op.f("fk_organizations_budget_id_budgets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organizations")),
    )
    op.create_index(
        op.f("ix_organizations_budget_id"), "organizations", ["budget_id"], unique=False
    )

    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(length=255), nullable=False),
        sa.Column("team_alias", sa.String(length=255), nullable=True),
        sa.Column("organization_id", sa.String(length=255), nullable=True),
        sa.Column("models", JSON, nullable=False),
        sa.Column("max_budget", MONEY, nullable=True),
        sa.Column("soft_budget", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("team_member_budget", MONEY, nullable=True),
        sa.Column("model_aliases", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.organization_id"],
            name=op.f("fk_teams_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_teams")),
        sa.UniqueConstraint("team_alias", name=op.f("uq_teams_team_alias")),
    )
    op.create_index(op.f("ix_teams_organization_id"), "teams", ["organization_id"], unique=False)

    op.create_table(
        "team_memberships",
        sa.Column("team_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="user", nullable=False),
        sa.Column("max_budget_in_team", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("role IN ('admin', 'user')", name=op.f("ck_team_memberships_role")),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.team_id"],
            name=op.f("fk_team_memberships_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_team_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_memberships")),
    )
    op.create_index(
        op.f("ix_team_memberships_user_id"), "team_memberships", ["user_id"], unique=False
    )

    op.create_table(
        "virtual_keys",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("key_name", sa.String(length=64), nullable=True),
        sa.Column("key_alias", sa.String(length=255), nullable=True),
        sa.Column("team_id", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("organization_id", sa.String(length=255), nullable=True),
        sa.Column("models", JSON, nullable=False),
        sa.Column("aliases", JSON, nullable=False),
        sa.Column("max_budget", MONEY, nullable=True),
        sa.Column("soft_budget", MONEY, nullable=True),
        sa.Column("budget_duration", sa.String(length=32), nullable=True),
        sa.Column("budget_reset_at", TIMESTAMP, nullable=True),
        sa.Column("spend", MONEY, server_default="0", nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("model_rpm_limit", JSON, nullable=False),
        sa.Column("model_tpm_limit", JSON, nullable=False),
        sa.Column("model_max_budget", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("expires", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("last_active", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.organization_id"],
            name=op.f("fk_virtual_keys_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.team_id"],
            name=op.f("fk_virtual_keys_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_virtual_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_virtual_keys")),
        sa.UniqueConstraint("key_alias", name=op.f("uq_virtual_keys_key_alias")),
    )
    op.create_index(
        op.f("ix_virtual_keys_organization_id"), "virtual_keys", ["organization_id"], unique=False
    )
    op.create_index(op.f("ix_virtual_keys_team_id"), "virtual_keys", ["team_id"], unique=False)
    op.create_index(op.f("ix_virtual_keys_user_id"), "virtual_keys", ["user_id"], unique=False)

    op.create_table(
        "previous_tokens",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("key_token", sa.String(length=64), nullable=False),
        sa.Column("valid_until", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["key_token"],
            ["virtual_keys.token"],
            name=op.f("fk_previous_tokens_key_token_virtual_keys"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_previous_tokens")),
    )
    op.create_index(
        op.f("ix_previous_tokens_key_token"), "previous_tokens", ["key_token"], unique=False
    )
    op.create_index(
        op.f("ix_previous_tokens_valid_until"), "previous_tokens", ["valid_until"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_previous_tokens_valid_until"), table_name="previous_tokens")
    op.drop_index(op.f("ix_previous_tokens_key_token"), table_name="previous_tokens")

    op.drop_table("previous_tokens")
    op.drop_index(op.f("ix_virtual_keys_user_id"), table_name="virtual_keys")
    op.drop_index(op.f("ix_virtual_keys_team_id"), table_name="virtual_keys")
    op.drop_index(op.f("ix_virtual_keys_organization_id"), table_name="virtual_keys")

    op.drop_table("virtual_keys")
    op.drop_index(op.f("ix_team_memberships_user_id"), table_name="team_memberships")

    op.drop_table("team_memberships")
    op.drop_index(op.f("ix_teams_organization_id"), table_name="teams")

    op.drop_table("teams")
    op.drop_index(op.f("ix_organizations_budget_id"), table_name="organizations")

    op.drop_table("organizations")
    op.drop_index(op.f("ix_end_users_budget_id"), table_name="end_users")

    op.drop_table("end_users")
    op.drop_table("users")
    op.drop_index("ix_spend_logs_user_start_time", table_name="spend_logs")
    op.drop_index("ix_spend_logs_team_id_start_time", table_name="spend_logs")
    op.drop_index(op.f("ix_spend_logs_start_time"), table_name="spend_logs")
    op.drop_index("ix_spend_logs_model_start_time", table_name="spend_logs")
    op.drop_index("ix_spend_logs_end_user_start_time", table_name="spend_logs")
    op.drop_index("ix_spend_logs_api_key_start_time", table_name="spend_logs")

    op.drop_table("spend_logs")
    op.drop_index(op.f("ix_db_models_model_name"), table_name="db_models")

    op.drop_table("db_models")
    op.drop_index("ix_daily_spend_entity_type_date", table_name="daily_spend")

    op.drop_table("daily_spend")
    op.drop_table("credentials")
    op.drop_table("budgets")
    op.drop_index(op.f("ix_audit_log_updated_at"), table_name="audit_log")
    op.drop_index("ix_audit_log_table_name_object_id", table_name="audit_log")

    op.drop_table("audit_log")
