"""SQLAlchemy models of every stored entity; importing this registers them all."""

from bastion.storage.models.base import Base
from bastion.storage.models.catalog import Credential, DbModel
from bastion.storage.models.jobs import JobLease
from bastion.storage.models.keys import PreviousToken, VirtualKey
from bastion.storage.models.spend import ENTITY_TYPES, AuditLog, DailySpend, SpendLog
from bastion.storage.models.tenancy import (
    MEMBER_ROLES,
    USER_ROLES,
    Budget,
    EndUser,
    Organization,
    Team,
    TeamMembership,
    User,
)

__all__ = [
    "ENTITY_TYPES",
    "MEMBER_ROLES",
    "USER_ROLES",
    "AuditLog",
    "Base",
    "Budget",
    "Credential",
    "DailySpend",
    "DbModel",
    "EndUser",
    "JobLease",
    "Organization",
    "PreviousToken",
    "SpendLog",
    "Team",
    "TeamMembership",
    "User",
    "VirtualKey",
]
