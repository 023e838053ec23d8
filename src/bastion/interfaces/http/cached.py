"""Answering a request from the response cache (bastion.cache): the stored JSON
answer, or the stored stream replayed chunk by chunk in the client's dialect.

A hit costs nothing: no upstream call, spend 0 in the spend log with ``cache_hit``
set, and the ``x-litellm-cache-key`` header (LiteLLM sends it on hits only).
"""

from __future__ import annotations

import logging
import time

from bastion import __version__
from bastion.cache.entry import CachedAnswer
from bastion.cache.service import CachePlan
from bastion.core.deployment import Deployment
from bastion.core.usage import Usage
from bastion.interfaces.http.asgi import Headers, Send, send_response
from bastion.routing.model_table import ModelTable
from bastion.services.metering import CallContext
from bastion.services.tenant_policy import TenantPolicy

logger = logging.getLogger("bastion.cache")

STREAM_HEADERS: Headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


async def send_cached(
    send: Send,
    answer: CachedAnswer,
    plan: CachePlan,
    *,
    call_id: str,
    model: str,
    started: float,
    table: ModelTable,
    policy: TenantPolicy | None,
    context: CallContext | None,
    extra: Headers | tuple[()] = (),
) -> None:
    """``extra``: more headers (the rate limits' ``x-ratelimit-*``)."""
    deployment = _deployment(table, model, answer.model_id)
    if context is not None and policy is not None and deployment is not None:
        context.cache_hit = True
        try:
            kept = None  # store_prompts_in_spend_logs: a JSON answer's text is kept
            if policy.bodies is not None and not answer.is_stream:
                kept = policy.bodies.answer(answer.body)
            policy.meter.charge(context, deployment, Usage(), response=kept)
        except Exception:  # accounting must never cost the client its answer
            logger.exception("could not account cached answer %s", call_id)
    elapsed_ms = f"{(time.perf_counter() - started) * 1000:.3f}".encode()
    headers: Headers = [
        (b"x-litellm-call-id", call_id.encode()),
        (b"x-litellm-cache-key", plan.key.encode("latin-1", "replace")),
        (b"x-litellm-model-group", model.encode("utf-8", "replace")),
        (b"x-litellm-response-cost", b"0.000000"),
        (b"x-litellm-attempted-retries", b"0"),
        (b"x-litellm-attempted-fallbacks", b"0"),
        (b"x-litellm-overhead-duration-ms", elapsed_ms),
        (b"x-litellm-response-duration-ms", elapsed_ms),
        (b"x-litellm-version", __version__.encode()),
    ]
    if answer.model_id:
        headers.append((b"x-litellm-model-id", answer.model_id.encode("utf-8", "replace")))
    headers.extend(extra)
    if not answer.is_stream:
        await send_response(send, 200, answer.body, headers, answer.content_type)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", answer.content_type), *STREAM_HEADERS, *headers],
        }
    )
    for piece in answer.pieces():
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _deployment(table: ModelTable, model: str, model_id: str | None) -> Deployment | None:
    """The deployment that first gave the answer (spend-log fields), or the group's first."""
    group = table.lookup(model) or []
    for deployment in group:
        if deployment.id == model_id:
            return deployment
    return group[0] if group else None
