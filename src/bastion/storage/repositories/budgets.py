"""Reusable budgets, referenced by end users and organizations (``budget_id``)."""

from __future__ import annotations

from bastion.storage.models import Budget
from bastion.storage.repositories.base import CrudRepository


class BudgetRepository(CrudRepository[Budget]):
    model = Budget
    entity = "budget"
    id_field = "budget_id"
