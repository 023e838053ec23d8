"""Leases for background jobs that one gateway at a time should run (``job_leases``).

A row per job. A worker runs the job only after it has taken the lease with one
conditional UPDATE (storage/leases.py); ``last_run_at`` makes the job's interval hold
across every worker and replica sharing the database.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bastion.storage.models.base import Base


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(255))
    lease_until: Mapped[datetime | None] = mapped_column()
    last_run_at: Mapped[datetime | None] = mapped_column()
