"""Request bodies of the /key endpoints (LiteLLM's field names), validated by pydantic.

Unknown fields are ignored, as LiteLLM ignores what it does not use, so scripts
written for LiteLLM keep working.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.policy.budget_windows import ModelBudgetError, normalized_model_max_budget

#: fields that map one-to-one onto columns of ``virtual_keys``
COLUMN_FIELDS = (
    "key_alias",
    "team_id",
    "user_id",
    "organization_id",
    "models",
    "aliases",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
    "model_max_budget",
    "metadata",
    "tags",
    "blocked",
)

#: columns that are never null: an explicit null empties them
_EMPTY: dict[str, type[list[Any]] | type[dict[str, Any]]] = {
    "models": list,
    "tags": list,
    "aliases": dict,
    "model_rpm_limit": dict,
    "model_tpm_limit": dict,
    "model_max_budget": dict,
    "metadata": dict,
}


class KeyFields(BaseModel):
    """What a key may be created or updated with."""

    model_config = ConfigDict(extra="ignore")

    key_alias: str | None = Field(default=None, min_length=1, max_length=255)
    duration: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    models: list[str] | None = None
    aliases: dict[str, Any] | None = None
    max_budget: Decimal | None = Field(default=None, ge=0)
    soft_budget: Decimal | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    tpm_limit: int | None = Field(default=None, ge=0)
    rpm_limit: int | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=0)
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    model_max_budget: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    blocked: bool | None = None

    @field_validator("model_max_budget")
    @classmethod
    def _model_max_budget(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """LiteLLM's ``{"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}}``, checked."""
        if value is None:
            return None
        try:
            return normalized_model_max_budget(value)
        except ModelBudgetError as exc:
            raise ValueError(str(exc)) from None

    def column_changes(self) -> dict[str, Any]:
        """The column fields the client sent (an explicit null clears a field)."""
        changes: dict[str, Any] = {}
        for name in COLUMN_FIELDS:
            if name not in self.model_fields_set:
                continue
            value = getattr(self, name)
            if value is None and name in _EMPTY:
                value = _EMPTY[name]()
            if value is None and name == "blocked":
                continue
            changes[name] = value
        return changes


class GenerateKeyRequest(KeyFields):
    key: str | None = Field(default=None, description="a custom key; must start with sk-")


class UpdateKeyRequest(KeyFields):
    key: str = Field(min_length=1)


class RegenerateKeyRequest(KeyFields):
    key: str | None = None
    new_key: str | None = None
    grace_period: str | None = None


class DeleteKeysRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keys: list[str] | None = None
    key_aliases: list[str] | None = None


class KeyRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1)
