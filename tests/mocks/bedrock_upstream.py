"""A real HTTP server speaking AWS Bedrock Runtime (and a sliver of STS), for tests.

Runs an aiohttp app on 127.0.0.1 in a background thread, like ``openai_upstream``::

    with MockBedrockUpstream(credentials={"AKIDTEST": "secret"}, region="us-east-1") as up:
        up.enqueue(throttling(), times=2)
        ...
        assert up.last_request.model_id == "anthropic.claude-3-5-sonnet-20240620-v1:0"

Routes: ``POST /model/{modelId}/converse``, ``/converse-stream`` (binary event-stream
frames with correct CRCs), ``/invoke`` and ``/invoke-with-response-stream`` (Anthropic
models only: ``chunk`` events carrying base64 Anthropic events), ``/count-tokens``
(an InvokeModel body in ``input.invokeModel.body``), and ``POST /`` as STS
(``AssumeRole``, ``AssumeRoleWithWebIdentity``: temporary credentials that the Bedrock
routes then accept with their session token).

Every Bedrock request is authenticated: SigV4 is recomputed with botocore for the
access key's known secret (service ``bedrock``, the mock's region) and compared; a
wrong signature gets Bedrock's 403 ``InvalidSignatureException``, an unknown key
``UnrecognizedClientException``. ``api_keys`` are accepted as ``Authorization: Bearer``.
Every request is recorded, rejected ones included. Faults apply to authenticated
Bedrock requests: an AWS error status, an exception event mid-stream, a connection
reset mid-stream, a corrupt frame, a dropped connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bastion.providers.bedrock_eventstream import encode_event, encode_exception

from . import bedrock_wire as wire
from .aws_auth import AwsIdentities, Denied, Verdict, sts_answer
from .mock_server import ServerThread, abort_connection

_ROUTE = re.compile(
    r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$"
)
EVENTSTREAM = "application/vnd.amazon.eventstream"

# ---------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class AwsErrorFault:
    """Answer with Bedrock's error shape: this status, ``x-amzn-ErrorType`` and message."""

    status: int
    error_type: str
    message: str
    retry_after: float | None = None


@dataclass(frozen=True)
class StreamExceptionFault:
    """Streams: send ``after_events`` events, then an ``exception`` message."""

    after_events: int
    exception_type: str = "modelStreamErrorException"
    message: str = "The model stream failed (mock fault)."


@dataclass(frozen=True)
class ResetMidStreamFault:
    """Streams: send ``after_events`` events, then reset the TCP connection."""

    after_events: int


@dataclass(frozen=True)
class CorruptFrameFault:
    """Streams: send ``after_events`` events, then a frame whose message CRC is wrong."""

    after_events: int


@dataclass(frozen=True)
class DropConnectionFault:
    """Reset the connection before any response byte."""


Fault = (
    AwsErrorFault
    | StreamExceptionFault
    | ResetMidStreamFault
    | CorruptFrameFault
    | DropConnectionFault
)


def throttling(retry_after: float | None = None) -> AwsErrorFault:
    return AwsErrorFault(
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
        retry_after,
    )


def aws_error(status: int, error_type: str, message: str = "mock fault") -> AwsErrorFault:
    return AwsErrorFault(status, error_type, message)


def exception_mid_stream(
    after_events: int = 3,
    exception_type: str = "modelStreamErrorException",
    message: str = "The model stream failed (mock fault).",
) -> StreamExceptionFault:
    return StreamExceptionFault(after_events, exception_type, message)


def reset_mid_stream(after_events: int = 3) -> ResetMidStreamFault:
    return ResetMidStreamFault(after_events)


def corrupt_frame(after_events: int = 2) -> CorruptFrameFault:
    return CorruptFrameFault(after_events)


def drop_connection() -> DropConnectionFault:
    return DropConnectionFault()


@dataclass
class _Queued:
    fault: Fault
    remaining: int
    model: str | None


# ---------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class BedrockRequest:
    method: str
    raw_path: str
    model_id: str | None  # decoded from the path
    operation: str | None  # converse, converse-stream, invoke, invoke-with-response-stream, sts
    headers: dict[str, str]  # lower-case names
    json: Any
    body: bytes
    access_key: str | None = None
    region: str | None = None  # from the signature's scope
    authenticated: bool = False


@dataclass
class StreamRecord:
    model_id: str
    events_sent: int = 0
    outcome: str = "active"  # completed, exception, reset, corrupt, disconnected


# ---------------------------------------------------------------------------------------------
# The server


class MockBedrockUpstream(ServerThread):
    kind = "bedrock"
    join_timeout = 15.0
    runner_options: dict[str, Any] = {"handler_cancellation": True, "shutdown_timeout": 1.0}

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        api_keys: tuple[str, ...] = (),
        region: str = "us-east-1",
        name: str = "bedrock",
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        web_identity_tokens: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.region = region
        self.name = name
        self.api_keys = set(api_keys)
        self.cache_read_tokens = cache_read_tokens
        self.cache_write_tokens = cache_write_tokens
        self.web_identity_tokens = set(web_identity_tokens)
        self.identities = AwsIdentities(credentials)
        self._lock = threading.Lock()
        self._requests: list[BedrockRequest] = []
        self._streams: list[StreamRecord] = []
        self._queue: list[_Queued] = []
        self._default: Fault | None = None
        self.assumed: list[dict[str, str]] = []  # STS calls: action, role, session name

    def thread_name(self) -> str:
        return f"mock-bedrock-{self.name}"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # -- test-facing API (thread-safe) ------------------------------------------------------------

    @property
    def requests(self) -> list[BedrockRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> BedrockRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request recorded yet")
            return self._requests[-1]

    @property
    def streams(self) -> list[StreamRecord]:
        with self._lock:
            return [StreamRecord(s.model_id, s.events_sent, s.outcome) for s in self._streams]

    def count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._requests if operation is None or r.operation == operation)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._streams.clear()
            self.assumed.clear()

    def enqueue(self, fault: Fault, times: int = 1, model: str | None = None) -> None:
        with self._lock:
            self._queue.append(_Queued(fault, times, model))

    def set_default(self, fault: Fault | None) -> None:
        with self._lock:
            self._default = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._queue.clear()
            self._default = None

    def _take_fault(self, model: str) -> Fault | None:
        with self._lock:
            for entry in self._queue:
                if entry.model is None or entry.model == model:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._queue.remove(entry)
                    return entry.fault
            return self._default

    # -- request handling -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        path = request.raw_path.split("?", 1)[0]
        match = _ROUTE.match(path)
        model_id = unquote(match.group(1)) if match else None
        operation = (
            match.group(2)
            if match
            else ("sts" if path == "/" and request.method == "POST" else None)
        )
        try:
            body: Any = json.loads(raw) if raw and operation != "sts" else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        if operation == "sts":
            self._record(BedrockRequest(request.method, path, None, "sts", headers, None, raw))
            return self._sts(raw, headers, path)
        verdict, denied = self._authenticate(request, raw, headers, path)
        self._record(
            BedrockRequest(
                request.method,
                path,
                model_id,
                operation,
                headers,
                body,
                raw,
                verdict.access_key,
                verdict.region,
                denied is None,
            )
        )
        if denied is not None:
            return denied
        if match is None or request.method != "POST" or model_id is None or operation is None:
            return _aws_error(404, "UnknownOperationException", "Unknown operation")
        if body is None:
            return _aws_error(400, "SerializationException", "Malformed request body: not JSON")
        fault = self._take_fault(model_id)
        if isinstance(fault, AwsErrorFault):
            extra = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _aws_error(fault.status, fault.error_type, fault.message, extra)
        if isinstance(fault, DropConnectionFault):
            await abort_connection(request)
            return web.Response(status=500)
        try:
            if operation.startswith("converse"):
                wire.check_converse(body)
                plan = wire.plan_converse(
                    body, self.name, self.cache_read_tokens, self.cache_write_tokens
                )
                if operation == "converse":
                    return _json(wire.converse_response(plan))
                frames = [
                    encode_event(t, json.dumps(p | {"p": "abcdefgh"}).encode())
                    for t, p in wire.converse_events(plan)
                ]
                return await self._stream(request, model_id, frames, fault)
            if "claude" not in model_id and "anthropic" not in model_id:
                raise wire.WireError(
                    f"The model {model_id} does not take Anthropic Messages bodies."
                )
            if operation == "count-tokens":
                body = wire.count_tokens_body(body)
            wire.check_invoke(body)
            plan = wire.plan_invoke(
                body, self.name, self.cache_read_tokens, self.cache_write_tokens
            )
            if operation == "count-tokens":
                return _json({"inputTokens": plan.input_tokens})
            message_id = "msg_bdrk_" + secrets.token_hex(12)
            if operation == "invoke":
                return _json(wire.anthropic_message(plan, model_id, message_id))
            frames = [
                encode_event(
                    "chunk",
                    json.dumps(
                        {"bytes": base64.b64encode(json.dumps(e).encode()).decode(), "p": "abcd"}
                    ).encode(),
                )
                for e in wire.anthropic_events(plan, model_id, message_id)
            ]
            return await self._stream(request, model_id, frames, fault)
        except wire.WireError as err:
            return _aws_error(400, "ValidationException", err.message)

    async def _stream(
        self, request: web.Request, model_id: str, frames: list[bytes], fault: Fault | None
    ) -> web.StreamResponse:
        record = StreamRecord(model_id)
        with self._lock:
            self._streams.append(record)
        cut = getattr(fault, "after_events", None)
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": EVENTSTREAM, "x-amzn-RequestId": secrets.token_hex(16)},
        )
        try:
            await response.prepare(request)
            for index, frame in enumerate(frames):
                if cut is not None and index >= cut:
                    break
                await response.write(frame)
                record.events_sent += 1
            # The outcome is recorded before the last bytes leave: a test that has read
            # them may look at it at once.
            if isinstance(fault, StreamExceptionFault):
                record.outcome = "exception"
                payload = json.dumps({"message": fault.message}).encode()
                await response.write(encode_exception(fault.exception_type, payload))
            elif isinstance(fault, ResetMidStreamFault):
                record.outcome = "reset"
                await abort_connection(request)
                return response
            elif isinstance(fault, CorruptFrameFault):
                record.outcome = "corrupt"
                frame = bytearray(frames[cut or 0])
                frame[-1] ^= 0xFF
                await response.write(bytes(frame))
            else:
                record.outcome = "completed"
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            record.outcome = "disconnected"
            raise
        return response

    def _record(self, record: BedrockRequest) -> None:
        with self._lock:
            self._requests.append(record)

    # -- authentication and STS -----------------------------------------------------------------

    def _authenticate(
        self, request: web.Request, raw: bytes, headers: dict[str, str], path: str
    ) -> tuple[Verdict, web.Response | None]:
        """The request's SigV4 verdict (or an API key's), and Bedrock's 403 when refused."""
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            if authorization[7:] in self.api_keys:
                return Verdict(), None
            denied = Denied("UnrecognizedClientException", "Invalid API Key format")
            return Verdict(denied=denied), _aws_error(403, denied.error_type, denied.message)
        verdict = self.identities.verify(
            request.method, path, headers, raw, service="bedrock", region=self.region
        )
        if verdict.denied is None:
            return verdict, None
        return verdict, _aws_error(403, verdict.denied.error_type, verdict.denied.message)

    def _sts(self, raw: bytes, headers: dict[str, str], path: str) -> web.Response:
        answer = sts_answer(self.identities, self.web_identity_tokens, path, headers, raw)
        if answer.assumed is not None:
            with self._lock:
                self.assumed.append(answer.assumed)
        return web.Response(body=answer.xml, status=answer.status, content_type="text/xml")


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        headers={"x-amzn-RequestId": secrets.token_hex(16)},
    )


def _aws_error(
    status: int, error_type: str, message: str, extra: dict[str, str] | None = None
) -> web.Response:
    response = _json({"message": message}, status)
    response.headers["x-amzn-ErrorType"] = (
        f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )
    response.headers.update(extra or {})
    return response


__all__ = [
    "AwsErrorFault",
    "BedrockRequest",
    "MockBedrockUpstream",
    "StreamRecord",
    "aws_error",
    "corrupt_frame",
    "drop_connection",
    "exception_mid_stream",
    "reset_mid_stream",
    "throttling",
]
