"""A real HTTP server that speaks Anthropic's Messages API, for end-to-end tests.

An aiohttp app on 127.0.0.1 (free port), served from a background thread with its own
event loop, so sync tests, async tests and a gateway subprocess can all talk to it::

    with MockAnthropicUpstream(api_key="sk-ant-up") as up:
        client = anthropic.Anthropic(base_url=up.base_url, api_key="sk-ant-up")
        up.enqueue(status(529), times=2)     # the next two calls are "overloaded"
        ...
        assert up.last_request.headers["anthropic-beta"] == "..."

Routes: ``POST /v1/messages`` and ``/v1/messages/count_tokens``, and the same under
``/anthropic`` (Claude on Azure AI Foundry). Authentication is ``x-api-key`` or a bearer key (under
``/anthropic``: ``azure_api_key`` in ``x-api-key`` or ``api-key``, or ``Authorization:
Bearer`` with ``azure_ad_token``); an ``anthropic-version`` header is required. Bodies
are validated as the real API does (``anthropic_wire.validate_messages``), errors are
Anthropic-shaped (``{"type":"error","error":{…}}``), streams are SSE with
``message_start``, ``content_block_*``, ``ping``, ``message_delta`` and ``message_stop``.

Every request is recorded (raw body and headers); every answer too (``replies``: the
message object; ``stream_bytes``: the exact bytes of each stream). Faults apply to
message requests that passed authentication and validation.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import anthropic_wire as wire
from .mock_server import ServerThread, abort_connection

JSON = dict[str, Any]
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


# ---------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class StatusFault:
    """An Anthropic-shaped error with this status (429 rate_limit_error, 529 overloaded…)."""

    code: int
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class DelayFault:
    seconds: float


@dataclass(frozen=True)
class ResetMidStreamFault:
    """Send ``after_events`` SSE events, then reset the connection."""

    after_events: int


@dataclass(frozen=True)
class ErrorMidStreamFault:
    """Send ``after_events`` SSE events, then an ``event: error`` and end the stream."""

    after_events: int
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True)
class SlowStreamFault:
    """A text answer of ``chunks`` pieces (``tok0 tok1 …``), one event every ``interval_s``."""

    interval_s: float
    chunks: int


@dataclass(frozen=True)
class DropConnectionFault:
    """Reset the connection before any response byte."""


Fault = (
    StatusFault
    | DelayFault
    | ResetMidStreamFault
    | ErrorMidStreamFault
    | SlowStreamFault
    | DropConnectionFault
)


def status(
    code: int,
    retry_after: float | None = None,
    message: str | None = None,
    *,
    error_type: str | None = None,
) -> StatusFault:
    return StatusFault(code, retry_after, message, error_type)


def delay(seconds: float) -> DelayFault:
    return DelayFault(seconds)


def reset_mid_stream(after_events: int = 3) -> ResetMidStreamFault:
    return ResetMidStreamFault(after_events)


def error_mid_stream(
    after_events: int = 3, error_type: str = "overloaded_error", message: str = "Overloaded"
) -> ErrorMidStreamFault:
    return ErrorMidStreamFault(after_events, error_type, message)


def slow_stream(interval_s: float = 0.05, chunks: int = 100) -> SlowStreamFault:
    return SlowStreamFault(interval_s, chunks)


def drop_connection() -> DropConnectionFault:
    return DropConnectionFault()


_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request (mock fault)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error."),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any
    body: bytes

    @property
    def model(self) -> str | None:
        if isinstance(self.json, dict) and isinstance(self.json.get("model"), str):
            return str(self.json["model"])
        return None


# ---------------------------------------------------------------------------------------------
# The server


class MockAnthropicUpstream(ServerThread):
    """Anthropic's Messages API on 127.0.0.1, served from a background thread."""

    kind = "anthropic"
    join_timeout = 5.0
    runner_options: dict[str, Any] = {"shutdown_timeout": 1.0}

    def __init__(
        self,
        *,
        api_key: str | None = "sk-ant-mock-key",
        azure_api_key: str | None = None,
        azure_ad_token: str | None = None,
        reply: str | None = None,
        name: str = "mock-anthropic",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.api_key = api_key
        self.azure_api_key = azure_api_key or api_key
        self.azure_ad_token = azure_ad_token
        self.reply = reply
        self.name = name
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._replies: list[JSON] = []
        self._stream_bytes: list[bytes] = []
        self._stream_outcomes: list[str] = []
        self._queue: list[list[Any]] = []  # [fault, remaining]
        self._default: Fault | None = None
        self._cache: set[str] = set()

    @property
    def port(self) -> int:
        return self._port or 0

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def azure_base(self) -> str:
        """What an Azure AI Foundry ``api_base`` would point at (``…/anthropic``)."""
        return self.base_url + "/anthropic"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("", "/anthropic"):
            app.router.add_post(f"{prefix}/v1/messages", self._messages)
            app.router.add_post(f"{prefix}/v1/messages/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # -- recording and faults (thread-safe) --------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    @property
    def replies(self) -> list[JSON]:
        """Every message answered (for streams, the message the events add up to)."""
        with self._lock:
            return list(self._replies)

    @property
    def stream_bytes(self) -> list[bytes]:
        """The exact bytes of every SSE stream sent, in order."""
        with self._lock:
            return list(self._stream_bytes)

    @property
    def stream_outcomes(self) -> list[str]:
        """completed / reset / error / disconnected, per stream."""
        with self._lock:
            return list(self._stream_outcomes)

    def count(self, path_suffix: str = "/v1/messages") -> int:
        with self._lock:
            return sum(1 for r in self._requests if r.path.endswith(path_suffix))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._replies.clear()
            self._stream_bytes.clear()
            self._stream_outcomes.clear()
            self._cache.clear()

    def enqueue(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queue.append([fault, times])

    def set_default(self, fault: Fault | None) -> None:
        with self._lock:
            self._default = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._queue.clear()
            self._default = None

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if self._queue:
                entry = self._queue[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queue.pop(0)
                return entry[0]  # type: ignore[no-any-return]
            return self._default

    # -- responses ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "request-id": wire.new_id("req_011"),
            "anthropic-organization-id": "mock-org",
            "x-mock-name": self.name,
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
        }

    def _json(self, payload: Any, status_code: int = 200) -> web.Response:
        return web.Response(
            body=wire.dumps(payload).encode(),
            status=status_code,
            headers=self._headers(),
            content_type="application/json",
        )

    def _error(
        self, status_code: int, error_type: str, message: str, retry_after: float | None = None
    ) -> web.Response:
        response = self._json(wire.error_body(error_type, message), status_code)
        if retry_after is not None:
            response.headers["retry-after"] = (
                str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            )
        return response

    def _check_auth(self, request: web.Request) -> web.Response | None:
        azure = request.path.startswith("/anthropic/")
        key = request.headers.get("x-api-key")
        if azure:
            keys = (key, request.headers.get("api-key"))
            if self.azure_api_key is not None and self.azure_api_key in keys:
                return None
            bearer = request.headers.get("authorization", "")
            if self.azure_ad_token is not None and bearer == f"Bearer {self.azure_ad_token}":
                return None
            return self._error(401, "authentication_error", "invalid subscription key or token")
        bearer = request.headers.get("authorization", "")
        if self.api_key is None or self.api_key in (key, bearer.removeprefix("Bearer ")):
            return None
        if not key and not bearer:
            return self._error(401, "authentication_error", "x-api-key header is required")
        return self._error(401, "authentication_error", "invalid x-api-key")

    async def _read(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        body: Any = None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                    raw,
                )
            )
        denied = self._check_auth(request)
        if denied is not None:
            return body, denied
        version = request.headers.get("anthropic-version")
        if not version:
            return body, self._error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        if not _VERSION.fullmatch(version):
            return body, self._error(
                400, "invalid_request_error", f"anthropic-version: invalid version {version!r}"
            )
        if body is None:
            return body, self._error(
                400, "invalid_request_error", "There was an issue with your request body JSON"
            )
        return body, None

    async def _not_found(self, request: web.Request) -> web.Response:
        await request.read()
        return self._error(404, "not_found_error", f"Not found: {request.method} {request.path}")

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body, early = await self._read(request)
        if early is not None:
            return early
        try:
            wire.validate_messages(body, count_only=True)
        except wire.WireError as err:
            return self._error(400, "invalid_request_error", err.message)
        return self._json({"input_tokens": wire.prompt_usage(body, None).total})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body, early = await self._read(request)
        if early is not None:
            return early
        try:
            wire.validate_messages(body)
        except wire.WireError as err:
            return self._error(400, "invalid_request_error", err.message)
        fault = self._take_fault()
        if isinstance(fault, StatusFault):
            etype, message = _ERROR_TYPES.get(fault.code, ("api_error", "Mock error."))
            return self._error(
                fault.code, fault.error_type or etype, fault.message or message, fault.retry_after
            )
        if isinstance(fault, DelayFault):
            await asyncio.sleep(fault.seconds)
        if isinstance(fault, DropConnectionFault):
            await abort_connection(request)
            return web.Response(status=500)
        pieces = None
        if isinstance(fault, SlowStreamFault):
            pieces = [f"{' ' if i else ''}tok{i}" for i in range(fault.chunks)]
        plan = wire.plan_message(
            body, reply=self.reply, cache=self._cache, text_override="".join(pieces or []) or None
        )
        with self._lock:
            self._replies.append(wire.message_object(plan))
        if body.get("stream") is True:
            return await self._stream(request, plan, fault, pieces)
        return self._json(wire.message_object(plan))

    async def _stream(
        self, request: web.Request, plan: wire.Plan, fault: Fault | None, pieces: list[str] | None
    ) -> web.StreamResponse:
        headers = self._headers()
        headers["cache-control"] = "no-cache"
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        sent: list[bytes] = []
        outcome = "completed"
        interval = fault.interval_s if isinstance(fault, SlowStreamFault) else 0.0
        cut_after = (
            fault.after_events
            if isinstance(fault, (ResetMidStreamFault, ErrorMidStreamFault))
            else None
        )
        try:
            await response.prepare(request)
            for number, (name, data) in enumerate(wire.stream_events(plan, pieces)):
                if cut_after is not None and number >= cut_after:
                    break
                if interval and number:
                    await asyncio.sleep(interval)
                event = wire.encode_event(name, data)
                sent.append(event)
                await response.write(event)
            if isinstance(fault, ResetMidStreamFault):
                outcome = "reset"
                await abort_connection(request)
                return response
            if isinstance(fault, ErrorMidStreamFault):
                outcome = "error"
                event = wire.encode_event("error", wire.error_body(fault.error_type, fault.message))
                sent.append(event)
                await response.write(event)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            outcome = "disconnected"
            raise
        finally:
            with self._lock:
                self._stream_bytes.append(b"".join(sent))
                self._stream_outcomes.append(outcome)
        return response
