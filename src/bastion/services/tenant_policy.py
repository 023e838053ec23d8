"""Tenancy around a call: model access and budgets before it, spend after it.

Everything here reads memory only: the auth snapshot (policy/auth_cache.py) and
this worker's ledger (policy/ledger.py). Spend reaches the database later, in
batches (services/spend_writer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.usage import Usage
from bastion.policy.access import aliased_model, check_model_access
from bastion.policy.auth import Principal
from bastion.policy.auth_cache import AuthCache
from bastion.policy.budget_windows import WindowBudgets
from bastion.policy.budgets import BudgetGuard, charges_for
from bastion.routing.model_table import ModelTable
from bastion.services.gateway import CallOutcome
from bastion.services.metered_stream import MeteredStream
from bastion.services.metering import CallContext, Meter
from bastion.services.spend_bodies import SpendBodies, StreamTranscript, TranscribedStream

logger = logging.getLogger("bastion.spend")

_USAGE_STREAMS = frozenset({Operation.CHAT, Operation.COMPLETION})


class TenantPolicy:
    def __init__(
        self,
        table: ModelTable,
        keys: AuthCache,
        budgets: BudgetGuard,
        meter: Meter,
        windows: WindowBudgets | None = None,
        *,
        bodies: SpendBodies | None = None,
        cost_in_stream_usage: bool = False,
    ) -> None:
        self.table = table
        self.keys = keys
        self.budgets = budgets
        self.meter = meter
        self.windows = windows
        self.bodies = bodies  # set only when spend logs keep message bodies
        self.cost_in_stream_usage = cost_in_stream_usage
        # Set by the composition root when the routing strategy counts tokens.
        self.on_usage: Callable[[Deployment, Usage], None] | None = None

    def before(
        self,
        principal: Principal,
        body: dict[str, Any],
        *,
        operation: Operation,
        dialect: Dialect,
        stream: bool,
        request_id: str,
    ) -> tuple[CallContext, bool]:
        """Checks access and budgets (raising the client's 4xx) and returns the call's
        context, plus whether a usage chunk was requested on the client's behalf."""
        requested = body["model"]
        messages = self.bodies.request(body, dialect) if self.bodies is not None else None
        model = aliased_model(principal, requested)
        if model != requested:
            body["model"] = model
        check_model_access(principal, model, self._access_groups)
        end_user = _end_user(body, dialect)
        charges = charges_for(principal, end_user, self.keys.snapshot)
        if self.windows is not None:  # per-model key budgets, the global max_budget
            charges += self.windows.charges(principal, requested)
        self.budgets.check(charges)
        strip_usage = False
        if stream and dialect is Dialect.OPENAI and operation in _USAGE_STREAMS:
            options = body.get("stream_options")
            asked = isinstance(options, dict) and options.get("include_usage")
            if not asked and self._stream_options_ok(model):
                body["stream_options"] = {**(options or {}), "include_usage": True}
                strip_usage = True
        tags = body.get("tags") or (body.get("metadata") or {}).get("tags") or ()
        context = CallContext(
            request_id=request_id,
            principal=principal,
            charges=charges,
            end_user=end_user,
            operation=operation,
            dialect=dialect,
            model_group=requested,
            started=datetime.now(UTC),
            tags=[str(t) for t in tags] if isinstance(tags, list) else (),
            messages=messages,
        )
        return context, strip_usage

    def after_answer(self, context: CallContext, outcome: CallOutcome) -> Decimal:
        assert outcome.response is not None
        body = outcome.response.body
        usage, images = self.meter.usage_of_answer(context, body)
        if self.on_usage is not None:  # usage-based routing counts tokens per deployment
            self.on_usage(outcome.deployment, usage)
        response = self.bodies.answer(body) if self.bodies is not None else None
        return self.meter.charge(
            context, outcome.deployment, usage, images=images, response=response
        )

    def metered(self, context: CallContext, outcome: CallOutcome, strip_usage: bool) -> None:
        """Wraps the outcome's stream so it is charged when it ends."""
        assert outcome.stream is not None
        deployment = outcome.deployment
        transcript = StreamTranscript(context.dialect) if self.bodies is not None else None

        def on_end(usage: Usage | None) -> None:
            if usage is None:
                logger.warning(
                    "stream from %s ended without usage: charged $0 (request %s)",
                    deployment.model_name,
                    context.request_id,
                )
            if usage is not None and self.on_usage is not None:
                self.on_usage(deployment, usage)
            response = None
            if self.bodies is not None and transcript is not None:
                response = self.bodies.streamed(transcript.text())
            self.meter.charge(context, deployment, usage or Usage(), response=response)

        def cost_of(usage: Usage) -> Decimal:
            return self.meter.cost_of(context, deployment, usage)

        outcome.stream = MeteredStream(
            outcome.stream,
            context.dialect,
            on_end,
            strip_usage_chunk=strip_usage,
            cost_of=cost_of if self.cost_in_stream_usage else None,
        )
        if transcript is not None:
            outcome.stream = TranscribedStream(outcome.stream, transcript)

    def _stream_options_ok(self, model: str) -> bool:
        """Whether every deployment of the group accepts ``stream_options`` (providers
        that translate the body, or vendors known to, say so by default)."""
        return all(
            getattr(d.provider, "accepts_stream_options", True)
            for d in self.table.lookup(model) or ()
        )

    def _access_groups(self, model: str) -> Iterable[str]:
        groups: set[str] = set()
        for deployment in self.table.lookup(model) or ():
            groups.update(deployment.model_info.get("access_groups") or ())
        return groups


def _end_user(body: dict[str, Any], dialect: Dialect) -> str | None:
    if dialect is Dialect.ANTHROPIC:
        metadata = body.get("metadata")
        value = metadata.get("user_id") if isinstance(metadata, dict) else None
    else:
        value = body.get("user")
    return value if isinstance(value, str) and value else None
