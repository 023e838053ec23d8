"""Repositories, one per area, sharing one transaction through :class:`Store`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from bastion.storage.crypto import Cipher
from bastion.storage.repositories.audit import AuditRepository, audit_snapshot
from bastion.storage.repositories.base import Context, Page
from bastion.storage.repositories.budgets import BudgetRepository
from bastion.storage.repositories.catalog import (
    CredentialRepository,
    ModelRepository,
    StoredCredential,
    StoredModel,
)
from bastion.storage.repositories.end_users import EndUserRepository
from bastion.storage.repositories.keys import KeyRepository, hash_key, key_display_name
from bastion.storage.repositories.organizations import OrganizationRepository
from bastion.storage.repositories.spend_reports import SpendReports
from bastion.storage.repositories.teams import MembershipRepository, TeamRepository
from bastion.storage.repositories.users import UserRepository


class Store:
    """Every repository, bound to one session (one transaction)."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        cipher: Cipher | None,
        clock: Callable[[], datetime],
        budget_tz: tzinfo,
    ) -> None:
        ctx = Context(session=session, clock=clock, budget_tz=budget_tz, cipher=cipher)
        self.session = session
        self.organizations = OrganizationRepository(ctx)
        self.teams = TeamRepository(ctx)
        self.members: MembershipRepository = self.teams.members
        self.users = UserRepository(ctx)
        self.keys = KeyRepository(ctx)
        self.end_users = EndUserRepository(ctx)
        self.budgets = BudgetRepository(ctx)
        self.models = ModelRepository(ctx)
        self.credentials = CredentialRepository(ctx)
        self.audit = AuditRepository(ctx)
        self.spend = SpendReports(ctx)


__all__ = [
    "AuditRepository",
    "BudgetRepository",
    "CredentialRepository",
    "EndUserRepository",
    "KeyRepository",
    "MembershipRepository",
    "ModelRepository",
    "OrganizationRepository",
    "Page",
    "SpendReports",
    "Store",
    "StoredCredential",
    "StoredModel",
    "TeamRepository",
    "UserRepository",
    "audit_snapshot",
    "hash_key",
    "key_display_name",
]
