"""The OpenAI-dialect LLM endpoints: chat completions, completions, embeddings."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from bastion import __version__
from bastion.cache.entry import CachedAnswer
from bastion.cache.in_flight import Lead
from bastion.cache.service import CachePlan, ResponseCache
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import BastionError, UpstreamError
from bastion.core.usage import Usage
from bastion.dialects.anthropic_validate import validate_messages_request
from bastion.dialects.multipart import FilePart, parse_multipart
from bastion.dialects.openai_validate import validate_request, validate_transcription
from bastion.interfaces.http.asgi import (
    ClientDisconnected,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    parse_json_object,
    read_body,
    send_response,
)
from bastion.interfaces.http.cached import send_cached
from bastion.interfaces.http.errors import error_body, stream_error_event
from bastion.limits.limiter import RateLimiter
from bastion.limits.ticket import LimitTicket
from bastion.policy.auth import Authenticator, Principal, extract_key
from bastion.services.gateway import Admit, CallOutcome, GatewayService
from bastion.services.metering import CallContext
from bastion.services.tenant_policy import TenantPolicy

logger = logging.getLogger("bastion.http")

_VERSION_HEADER = (b"x-litellm-version", __version__.encode())
_STREAM_HEADERS: Headers = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class LLMEndpoints:
    def __init__(
        self,
        service: GatewayService,
        auth: Authenticator,
        max_body_bytes: int,
        policy: TenantPolicy | None = None,
        limits: RateLimiter | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.service = service
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.policy = policy
        self.limits = limits
        self.cache = cache  # None when litellm_settings.cache is off: nothing is hashed

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        operation: Operation,
        path_model: str | None = None,
        dialect: Dialect = Dialect.OPENAI,
    ) -> None:
        tickets: list[LimitTicket] = []
        leads: list[Lead] = []  # this request fetches an answer identical ones wait for
        try:
            await self._handle(scope, receive, send, operation, path_model, dialect, tickets, leads)
        finally:
            for ticket in tickets:  # rate limits: real tokens, parallel slots freed
                ticket.finish()
            if leads and self.cache is not None:  # no answer to share: they go upstream
                self.cache.release(leads[0])

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        operation: Operation,
        path_model: str | None,
        dialect: Dialect,
        tickets: list[LimitTicket],
        leads: list[Lead],
    ) -> None:
        started = time.perf_counter()
        call_id = str(uuid.uuid4())
        context: CallContext | None = None
        strip_usage = False
        plan: CachePlan | None = None
        try:
            principal = self.auth.authenticate(extract_key(scope["headers"]))
            raw = await read_body(scope, receive, self.max_body_bytes)
            files: list[FilePart] = []
            if operation is Operation.AUDIO_TRANSCRIPTION:
                form = parse_multipart(raw, (header(scope, b"content-type") or b"").decode())
                body, files = dict[str, Any](form.fields), form.files
            else:
                body = parse_json_object(raw)
            if path_model is not None:
                body["model"] = path_model
            client_headers: dict[str, str] | None = None
            if dialect is Dialect.ANTHROPIC:
                stream = validate_messages_request(body)
                client_headers = anthropic_headers(scope)
            elif files or operation is Operation.AUDIO_TRANSCRIPTION:
                validate_transcription(body, [f.field for f in files])
                stream = False
            else:
                stream = validate_request(operation, body)
            if self.policy is not None:
                context, strip_usage = self.policy.before(
                    principal,
                    body,
                    operation=operation,
                    dialect=dialect,
                    stream=stream,
                    request_id=call_id,
                )
            ticket = self._ticket(principal, body, len(raw), operation, call_id, context)
            if ticket is not None:
                tickets.append(ticket)
            if self.cache is not None:
                plan = self.cache.plan(operation, dialect, body, stream, usage_added=strip_usage)
                if plan is not None and context is not None:
                    context.cache_key = plan.key
            outcome = await self.service.call(
                operation,
                body,
                stream,
                dialect,
                raw=raw,
                client_headers=client_headers,
                files=files,
                admit=self._admission(ticket, plan, leads),
            )
            if ticket is not None:
                ticket.served_by(outcome.deployment)
        except ClientDisconnected:
            return
        except BastionError as error:
            await send_error(send, error, call_id, dialect)
            return
        except Exception:
            logger.exception("unexpected error handling %s", scope.get("path"))
            await send_error(send, _internal_error(), call_id, dialect)
            return
        if outcome.cached is not None and plan is not None and self.cache is not None:
            await send_cached(
                send,
                outcome.cached,
                plan,
                call_id=call_id,
                model=body["model"],
                started=started,
                table=self.cache.table,
                policy=self.policy,
                context=context,
                extra=tickets[0].headers() if tickets else (),
            )
            return
        headers = _outcome_headers(outcome, body["model"], call_id, started)
        if tickets:
            headers.extend(tickets[0].headers())
        if context is not None and self.policy is not None:
            headers.extend(self._meter(context, outcome, strip_usage))
        if outcome.response is not None:
            response = outcome.response
            await send_response(
                send, response.status, response.body, headers, response.content_type
            )
            if plan is not None and self.cache is not None:  # stored after the answer left
                self.cache.keep_answer(
                    plan, outcome.deployment, response, leads[0] if leads else None
                )
        else:
            if plan is not None and self.cache is not None and outcome.stream is not None:
                outcome.stream = self.cache.recording(plan, outcome.deployment, outcome.stream)
            await relay_stream(receive, send, outcome, headers, dialect)

    def _admission(
        self, ticket: LimitTicket | None, plan: CachePlan | None, leads: list[Lead]
    ) -> Admit | None:
        """What is done with the deployment the router picked, before it is called: the
        rate limits are checked and counted (LimitTicket.admit), then the response cache
        is read, as LiteLLM does (a hit counts against the caller's limits). With the
        cache on the limiter's Redis the entry comes back in the admission's round trip;
        otherwise it is read on its own, once. On a miss, an identical request already
        fetching the answer is waited for (cache/in_flight.py); else this one leads."""
        cache = self.cache
        if cache is None or plan is None or not plan.controls.read:
            return ticket.admit if ticket is not None else None
        unread = [True]

        async def admit(deployment: Deployment) -> CachedAnswer | None:
            if ticket is not None:
                if unread and cache.read_at_admission and ticket.reads_shared:
                    ticket.read_cache(plan.key)
                await ticket.admit(deployment)
            if not unread:
                return None
            unread.clear()
            if ticket is not None and ticket.cache_read:
                answer = cache.found(plan, ticket.cache_value)
            else:
                answer = await cache.lookup(plan)
            if answer is None:
                joined = await cache.after_miss(plan)
                if isinstance(joined, Lead):
                    leads.append(joined)
                else:
                    answer = joined
            if answer is not None and ticket is not None:
                ticket.record_usage(Usage())  # a hit spends no tokens
            return answer

        return admit

    def _ticket(
        self,
        principal: Principal,
        body: dict[str, Any],
        body_bytes: int,
        operation: Operation,
        call_id: str,
        context: CallContext | None,
    ) -> LimitTicket | None:
        if self.limits is None:
            return None
        model = body["model"]
        requested = context.model_group if context is not None else model
        ticket = self.limits.ticket_for(
            principal,
            request_id=call_id,
            models=(requested,) if requested == model else (requested, model),
            end_user=context.end_user if context is not None else None,
            snapshot=self.policy.keys.snapshot if self.policy is not None else None,
            body=body,
            body_bytes=body_bytes,
            operation=operation,
            charges=context.charges if context is not None else (),
        )
        if ticket is not None and context is not None:
            context.on_usage = ticket.record_usage
        return ticket

    def _meter(self, context: CallContext, outcome: CallOutcome, strip_usage: bool) -> Headers:
        """Charges an answer now (cost headers) or arranges for a stream to be charged."""
        assert self.policy is not None
        try:
            if outcome.stream is not None:
                self.policy.metered(context, outcome, strip_usage)
                return []
            amount = self.policy.after_answer(context, outcome)
        except Exception:  # accounting must never cost the client its answer
            logger.exception("could not account request %s", context.request_id)
            return []
        headers: Headers = [(b"x-litellm-response-cost", f"{amount:f}".encode())]
        spend = self.policy.meter.key_spend(context)
        if spend is not None:
            headers.append((b"x-litellm-key-spend", f"{spend:f}".encode()))
        return headers


async def relay_stream(
    receive: Receive,
    send: Send,
    outcome: CallOutcome,
    headers: Headers,
    dialect: Dialect = Dialect.OPENAI,
) -> None:
    """Relay upstream bytes as they come; a client that leaves cancels the upstream call."""
    stream = outcome.stream
    assert stream is not None
    task = asyncio.current_task()
    assert task is not None
    state = {"finished": False, "disconnected": False}

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not state["finished"]:
                    state["disconnected"] = True
                    task.cancel()
                return

    watcher = asyncio.create_task(watch_disconnect())
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", stream.content_type), *_STREAM_HEADERS, *headers],
            }
        )
        try:
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as error:
            logger.warning("upstream stream failed: %s", error.message)
            await send(
                {
                    "type": "http.response.body",
                    "body": stream_error_event(error, dialect),
                    "more_body": True,
                }
            )
        state["finished"] = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not state["disconnected"]:
            raise
        task.uncancel()
        logger.info("client disconnected mid-stream; upstream call cancelled")
    finally:
        watcher.cancel()
        await stream.aclose()


def anthropic_headers(scope: Scope) -> dict[str, str]:
    """The anthropic-* headers a client sent (version, beta flags), to forward upstream."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name.startswith(b"anthropic-")
    }


async def send_error(
    send: Send, error: BastionError, call_id: str, dialect: Dialect = Dialect.OPENAI
) -> None:
    call_id = call_id or str(uuid.uuid4())
    headers: Headers = [(b"x-litellm-call-id", call_id.encode()), _VERSION_HEADER]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    await send_response(send, error.status, error_body(error, dialect), headers)


def _outcome_headers(outcome: CallOutcome, model: str, call_id: str, started: float) -> Headers:
    elapsed = time.perf_counter() - started
    overhead_ms = max(0.0, elapsed - outcome.upstream_seconds) * 1000
    deployment = outcome.deployment
    return [
        (b"x-litellm-call-id", call_id.encode()),
        (b"x-litellm-model-id", deployment.id.encode()),
        (b"x-litellm-model-group", model.encode("utf-8", "replace")),
        (b"x-litellm-model-api-base", deployment.public_api_base.encode("latin-1", "replace")),
        (b"x-litellm-attempted-retries", str(outcome.retries).encode()),
        (b"x-litellm-attempted-fallbacks", str(outcome.fallbacks).encode()),
        (b"x-litellm-overhead-duration-ms", f"{overhead_ms:.3f}".encode()),
        (b"x-litellm-response-duration-ms", f"{elapsed * 1000:.3f}".encode()),
        _VERSION_HEADER,
    ]


def _internal_error() -> BastionError:
    return BastionError("the gateway hit an unexpected error; it has been logged")
