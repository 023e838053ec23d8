"""Spend of the window budgets (policy/budget_windows.py), summed from what is recorded.

Nothing new is written for these budgets: every finished request already reaches
``daily_spend`` (per UTC day, per key and model, and per model for the whole
proxy) and ``spend_logs`` (per call) in the spend writer's transaction. A window
that starts at a UTC midnight (``1d``, ``7d``, ``30d``, ``1mo`` in UTC, or no
duration) is summed from ``daily_spend``, which retention never trims; a window
that starts within a day (``30s``, ``15m``, ``1h``, or days in another timezone)
is summed from ``spend_logs`` since its start. With ``disable_spend_logs`` such a
window falls back to the whole first day, so it can count a little more than its
own spend, never less.

Run with each auth snapshot reload, so the ledger's batches leave at the right
time (see policy/ledger.py): one grouped query per distinct window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.policy.budget_windows import (
    ModelBudget,
    Window,
    WindowBudgets,
    WindowSpend,
    WindowTotal,
    governs,
    window_for,
)
from bastion.storage.models import DailySpend, SpendLog
from bastion.storage.models.base import table_of
from bastion.storage.snapshot import AuthSnapshot

_CHUNK = 500


async def refresh_window_spend(
    engine: AsyncEngine,
    budgets: WindowBudgets,
    snapshot: AuthSnapshot,
    now: datetime,
    *,
    spend_logs: bool = True,
) -> None:
    """Sum the current windows' spend and hand it, with the keys' budgets, to ``budgets``."""
    key_budgets = budgets.key_budgets_of(snapshot.keys)
    if budgets.max_budget is None and not key_budgets:
        budgets.install({}, WindowSpend())
        return
    spend = await load_window_spend(
        engine,
        now,
        budgets,
        key_budgets,
        spend_logs=spend_logs,
    )
    budgets.install(key_budgets, spend)


async def load_window_spend(
    engine: AsyncEngine,
    now: datetime,
    budgets: WindowBudgets,
    key_budgets: dict[str, list[ModelBudget]],
    *,
    spend_logs: bool = True,
) -> WindowSpend:
    async with engine.connect() as conn:
        proxy = None
        if budgets.max_budget is not None:
            window = window_for(budgets.period, now, budgets.tz)
            proxy = WindowTotal(window, await _proxy_spend(conn, window, spend_logs))
        by_window: dict[Window, list[tuple[str, ModelBudget]]] = defaultdict(list)
        for token, parsed in key_budgets.items():
            for budget in parsed:
                by_window[window_for(budget.period, now, budgets.tz)].append((token, budget))
        key_models: dict[tuple[str, str], WindowTotal] = {}
        for window, entries in by_window.items():
            tokens = sorted({token for token, _ in entries})
            recorded = await _key_spend(conn, window, tokens, spend_logs)
            for token, budget in entries:
                total = sum(
                    (
                        amount
                        for model, amount in recorded.get(token, {}).items()
                        if governs(budget.model, model)
                    ),
                    Decimal(0),
                )
                key_models[(token, budget.model)] = WindowTotal(window, total)
        await conn.rollback()
    return WindowSpend(proxy=proxy, key_models=key_models)


def _from_logs(window: Window, spend_logs: bool) -> bool:
    return spend_logs and not window.day_aligned


async def _proxy_spend(conn: AsyncConnection, window: Window, spend_logs: bool) -> Decimal:
    if _from_logs(window, spend_logs):
        logs = table_of(SpendLog)
        query = sa.select(sa.func.sum(logs.c.spend)).where(logs.c.start_time >= window.start)
    else:
        daily = table_of(DailySpend)
        query = sa.select(sa.func.sum(daily.c.spend)).where(daily.c.entity_type == "model")
        if window.start is not None:
            query = query.where(daily.c.date >= window.start.date())
    value = (await conn.execute(query)).scalar()
    return Decimal(str(value)) if value is not None else Decimal(0)


async def _key_spend(
    conn: AsyncConnection, window: Window, tokens: Sequence[str], spend_logs: bool
) -> dict[str, dict[str, Decimal]]:
    """Spend per key token and recorded model (the model name the client used)."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for at in range(0, len(tokens), _CHUNK):
        chunk = list(tokens[at : at + _CHUNK])
        if _from_logs(window, spend_logs):
            logs = table_of(SpendLog)
            model = sa.func.coalesce(logs.c.model_group, logs.c.model)
            query = (
                sa.select(logs.c.api_key, model, sa.func.sum(logs.c.spend))
                .where(logs.c.api_key.in_(chunk), logs.c.start_time >= window.start)
                .group_by(logs.c.api_key, model)
            )
        else:
            daily = table_of(DailySpend)
            query = (
                sa.select(daily.c.entity_id, daily.c.model, sa.func.sum(daily.c.spend))
                .where(daily.c.entity_type == "key", daily.c.entity_id.in_(chunk))
                .group_by(daily.c.entity_id, daily.c.model)
            )
            if window.start is not None:
                query = query.where(daily.c.date >= window.start.date())
        for token, model, amount in await conn.execute(query):
            if token and amount is not None:
                out[token][model or ""] += Decimal(str(amount))
    return out
