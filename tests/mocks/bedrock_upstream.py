"""A real HTTP server speaking AWS Bedrock Runtime (and a sliver of STS), for tests.

Runs an aiohttp app on 127.0.0.1 in a background thread, like ``openai_upstream``::

    with MockBedrockUpstream(credentials={"AKIDTEST": "secret"}, region="us-east-1") as up:
        up.enqueue(throttling(), times=2)
        ...
        assert up.last_request.model_id == "anthropic.claude-3-5-sonnet-20240620-v1:0"

Routes: ``POST /model/{modelId}/converse``, ``/converse-stream`` (binary event-stream
frames with correct CRCs), ``/invoke`` and ``/invoke-with-response-stream`` (Anthropic
models only: ``chunk`` events carrying base64 Anthropic events), and ``POST /`` as STS
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
import contextlib
import datetime
import hmac
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bastion.providers.bedrock_eventstream import encode_event, encode_exception

from . import bedrock_wire as wire

_ROUTE = re.compile(
    r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$"
)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$"
)
EVENTSTREAM = "application/vnd.amazon.eventstream"
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)

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


@dataclass
class _Identity:
    secret: str
    token: str | None = None


# ---------------------------------------------------------------------------------------------
# The server


class MockBedrockUpstream:
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
        self.region = region
        self.name = name
        self.api_keys = set(api_keys)
        self.cache_read_tokens = cache_read_tokens
        self.cache_write_tokens = cache_write_tokens
        self.web_identity_tokens = set(web_identity_tokens)
        self._identities = {k: _Identity(v) for k, v in (credentials or {}).items()}
        self._lock = threading.Lock()
        self._requests: list[BedrockRequest] = []
        self._streams: list[StreamRecord] = []
        self._queue: list[_Queued] = []
        self._default: Fault | None = None
        self.assumed: list[dict[str, str]] = []  # STS calls: action, role, session name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._port: int | None = None
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._main, name=f"mock-bedrock-{self.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("MockBedrockUpstream did not start") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._port is not None, "not started"
        return f"http://127.0.0.1:{self._port}"

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # -- test-facing API (thread-safe) ------------------------------------------------------------

    def add_credentials(self, access_key: str, secret: str, token: str | None = None) -> None:
        with self._lock:
            self._identities[access_key] = _Identity(secret, token)

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
            return self._sts(request, raw, headers, path)
        access_key, scope_region, denied = self._authenticate(
            request, raw, headers, path, "bedrock"
        )
        self._record(
            BedrockRequest(
                request.method,
                path,
                model_id,
                operation,
                headers,
                body,
                raw,
                access_key,
                scope_region,
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
            await _abort(request)
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
            wire.check_invoke(body)
            plan = wire.plan_invoke(
                body, self.name, self.cache_read_tokens, self.cache_write_tokens
            )
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
            if isinstance(fault, StreamExceptionFault):
                payload = json.dumps({"message": fault.message}).encode()
                await response.write(encode_exception(fault.exception_type, payload))
                record.outcome = "exception"
            elif isinstance(fault, ResetMidStreamFault):
                await _abort(request)
                record.outcome = "reset"
                return response
            elif isinstance(fault, CorruptFrameFault):
                frame = bytearray(frames[cut or 0])
                frame[-1] ^= 0xFF
                await response.write(bytes(frame))
                record.outcome = "corrupt"
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

    # -- authentication ---------------------------------------------------------------------------

    def _authenticate(
        self,
        request: web.Request,
        raw: bytes,
        headers: dict[str, str],
        path: str,
        service: str,
        *,
        region: str | None = "",
    ) -> tuple[str | None, str | None, web.Response | None]:
        """(access key, signed region, None) or a Bedrock-shaped 403 for a bad signature.

        ``region`` is the one the signature must be scoped to: the mock's by default,
        any with None (STS, which the SDK may sign for any region).
        """
        expected_region = self.region if region == "" else region
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            if authorization[7:] in self.api_keys:
                return None, None, None
            return (
                None,
                None,
                _aws_error(
                    403,
                    "UnrecognizedClientException",
                    "Invalid API Key format: Must start with pre-defined prefix",
                ),
            )
        match = _AUTH.match(authorization)
        if match is None:
            return (
                None,
                None,
                _aws_error(
                    403, "MissingAuthenticationTokenException", "Missing Authentication Token"
                ),
            )
        access_key, day, scope_region, signed_service, signed_names, signature = match.groups()
        region = scope_region
        with self._lock:
            identity = self._identities.get(access_key)
        if identity is None:
            return (
                access_key,
                region,
                _aws_error(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                ),
            )
        if identity.token is not None and headers.get("x-amz-security-token") != identity.token:
            return (
                access_key,
                region,
                _aws_error(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                ),
            )
        amz_date = headers.get("x-amz-date", "")
        names = signed_names.split(";")
        wrong_region = expected_region is not None and region != expected_region
        if wrong_region or signed_service != service or not amz_date.startswith(day):
            return (
                access_key,
                region,
                _aws_error(
                    403,
                    "InvalidSignatureException",
                    "Credential should be scoped to a valid region and service "
                    f"('{expected_region}', '{service}').",
                ),
            )
        if "host" not in names or "x-amz-date" not in names:
            return (
                access_key,
                region,
                _aws_error(
                    403, "IncompleteSignatureException", "host and x-amz-date must be signed"
                ),
            )
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            return (
                access_key,
                region,
                _aws_error(403, "IncompleteSignatureException", "bad X-Amz-Date"),
            )
        if abs(time.time() - when.timestamp()) > 300:
            return (
                access_key,
                region,
                _aws_error(403, "InvalidSignatureException", "Signature expired"),
            )
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{headers.get('host', '')}{path}",
            data=raw,
            headers={n: headers[n] for n in names if n != "host" and n in headers},
        )
        aws_request.context["timestamp"] = amz_date
        signer = SigV4Auth(
            Credentials(access_key, identity.secret, identity.token), service, region
        )
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if not hmac.compare_digest(expected, signature):
            return (
                access_key,
                region,
                _aws_error(
                    403,
                    "InvalidSignatureException",
                    _SIGNATURE_MISMATCH,
                ),
            )
        return access_key, region, None

    # -- STS --------------------------------------------------------------------------------------

    def _sts(
        self, request: web.Request, raw: bytes, headers: dict[str, str], path: str
    ) -> web.Response:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        action = form.get("Action", "")
        if action == "AssumeRoleWithWebIdentity":
            if form.get("WebIdentityToken") not in self.web_identity_tokens:
                return _sts_error(
                    400, "InvalidIdentityToken", "The web identity token is not valid."
                )
        elif action == "AssumeRole":
            _, _, denied = self._authenticate(request, raw, headers, path, "sts", region=None)
            if denied is not None:
                return _sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRole")
        else:
            return _sts_error(400, "InvalidAction", f"Could not find operation {action}")
        access_key = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = "FQoGZXIvYXdzE" + secrets.token_urlsafe(60)
        self.add_credentials(access_key, secret, token)
        with self._lock:
            self.assumed.append(
                {
                    "action": action,
                    "role": form.get("RoleArn", ""),
                    "session": form.get("RoleSessionName", ""),
                }
            )
        expiry = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        result = f"{action}Result"
        xml = (
            f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{result}>'
            f"<Credentials><AccessKeyId>{access_key}</AccessKeyId>"
            f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken>"
            f"<Expiration>{expiry}</Expiration></Credentials><AssumedRoleUser>"
            f"<AssumedRoleId>AROA:{form.get('RoleSessionName', '')}</AssumedRoleId>"
            f"<Arn>{form.get('RoleArn', '')}</Arn></AssumedRoleUser></{result}>"
            f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        )
        return web.Response(body=xml.encode(), content_type="text/xml")


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


def _sts_error(status: int, code: str, message: str) -> web.Response:
    xml = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
    )
    return web.Response(body=xml.encode(), status=status, content_type="text/xml")


async def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    for _ in range(200):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


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
