"""Models added through the API (``/model/new``) and named provider credentials.

Secrets are encrypted by the repositories before they reach these rows: the secret
fields of ``litellm_params`` one by one, and ``credential_values`` as a whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models.base import Base, created_at, json_dict, updated_at
from bastion.storage.models.tenancy import ID


class DbModel(Base):
    __tablename__ = "db_models"

    model_id: Mapped[str] = mapped_column(ID, primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(255), nullable=False, index=True)
    litellm_params: Mapped[dict[str, Any]] = json_dict()
    model_info: Mapped[dict[str, Any]] = json_dict()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Credential(Base):
    __tablename__ = "credentials"

    credential_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    credential_values: Mapped[str] = mapped_column(sa.Text(), nullable=False)
    credential_info: Mapped[dict[str, Any]] = json_dict()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_by: Mapped[str | None] = mapped_column(ID)
