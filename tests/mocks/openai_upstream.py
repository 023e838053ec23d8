"""A real HTTP server that speaks OpenAI's and Azure OpenAI's wire formats, for end-to-end tests.

It runs an aiohttp app on 127.0.0.1 (a free port, or ``port=``) in a background thread with its own
event loop (``mock_server.ServerThread``), so sync tests, async tests and a gateway subprocess can
all talk to it; it can be stopped and started again::

    with MockOpenAIUpstream(api_key="sk-up", name="east") as up:
        client = openai.OpenAI(base_url=up.openai_base, api_key="sk-up", max_retries=0)
        up.enqueue(status(429, retry_after=1), times=2)   # the next two calls get 429
        ...
        assert up.count("/chat/completions", model="gpt-4o") == 3

Routes: ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``GET /v1/models``
and ``/v1/models/{model}`` (each also without ``/v1``), and Azure's
``POST /openai/deployments/{deployment}/{chat/completions,completions,embeddings}?api-version=``.
Unknown URLs get OpenAI's 404 ``Invalid URL`` error. Payload shapes and token accounting live in
``openai_wire``.

Faults (``enqueue`` / ``set_default``) apply to inference requests only (chat, completions,
embeddings) that passed authentication and JSON parsing; the next matching queued fault wins,
else the default fault. Every request, including rejected ones, is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from . import openai_wire as wire
from .mock_server import ServerThread, abort_connection

__all__ = [
    "DelayFault",
    "DropConnectionFault",
    "Fault",
    "MockOpenAIUpstream",
    "RecordedRequest",
    "ResetMidStreamFault",
    "SlowFirstByteFault",
    "SlowStreamFault",
    "StatusFault",
    "StreamRecord",
    "delay",
    "drop_connection",
    "reset_mid_stream",
    "slow_first_byte",
    "slow_stream",
    "status",
]

JSON = dict[str, Any]
Kind = Literal["chat", "completions", "embeddings", "models", "model", "not_found"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StreamOutcome = Literal["active", "completed", "disconnected", "reset", "shutdown"]

DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small")


# ---------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class StatusFault:
    """Answer with an OpenAI-shaped error body and this HTTP status."""

    code: int
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    param: str | None = None


@dataclass(frozen=True)
class DelayFault:
    """Sleep before handling the request (headers included)."""

    seconds: float


@dataclass(frozen=True)
class SlowFirstByteFault:
    """Streams: delay the headers and first chunk. Non-streams: same as ``DelayFault``."""

    seconds: float


@dataclass(frozen=True)
class ResetMidStreamFault:
    """Send ``after_chunks`` SSE chunks, then reset the TCP connection (no clean terminator).

    Non-streaming requests get half of the JSON body, then the reset.
    """

    after_chunks: int


@dataclass(frozen=True)
class SlowStreamFault:
    """A stream of ``chunks`` content chunks (``tok0 tok1 …``), one every ``interval_s``.

    Non-streaming requests wait ``interval_s * chunks`` and then answer that content.
    """

    interval_s: float
    chunks: int


@dataclass(frozen=True)
class DropConnectionFault:
    """Reset the connection before sending any response byte."""


Fault = (
    StatusFault
    | DelayFault
    | SlowFirstByteFault
    | ResetMidStreamFault
    | SlowStreamFault
    | DropConnectionFault
)


def status(
    code: int,
    retry_after: float | None = None,
    message: str | None = None,
    *,
    error_type: str | None = None,
    error_code: str | None = None,
    param: str | None = None,
) -> StatusFault:
    """An HTTP error; 429 → rate_limit_error/rate_limit_exceeded, 5xx → server_error."""
    return StatusFault(code, retry_after, message, error_type, error_code, param)


def delay(seconds: float) -> DelayFault:
    return DelayFault(seconds)


def slow_first_byte(seconds: float) -> SlowFirstByteFault:
    return SlowFirstByteFault(seconds)


def reset_mid_stream(after_chunks: int = 2) -> ResetMidStreamFault:
    return ResetMidStreamFault(after_chunks)


def slow_stream(interval_s: float = 0.05, chunks: int = 200) -> SlowStreamFault:
    return SlowStreamFault(interval_s, chunks)


def drop_connection() -> DropConnectionFault:
    return DropConnectionFault()


_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request (mock fault).", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to sample from this model.", None),
    404: ("invalid_request_error", "The model does not exist or you do not have access.", None),
    408: ("server_error", "Request timed out.", None),
    409: ("invalid_request_error", "Conflict (mock fault).", None),
    413: ("invalid_request_error", "Request too large.", None),
    422: ("invalid_request_error", "Unprocessable entity (mock fault).", None),
    429: (
        "rate_limit_error",
        "Rate limit reached for requests. Please try again later.",
        "rate_limit_exceeded",
    ),
}


def _fault_error(fault: StatusFault) -> tuple[str, str, str | None]:
    if fault.code in _DEFAULT_ERRORS:
        etype, message, code = _DEFAULT_ERRORS[fault.code]
    elif fault.code >= 500:
        etype = "server_error"
        message = "The server had an error while processing your request. Sorry about that!"
        code = None
    else:
        etype, message, code = "invalid_request_error", f"Mock error {fault.code}.", None
    return (
        fault.error_type or etype,
        fault.message or message,
        fault.error_code if fault.error_code is not None else code,
    )


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int
    model: str | None


# ---------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any  # parsed body, or None when empty / not JSON
    body: bytes

    @property
    def model(self) -> str | None:
        if isinstance(self.json, dict) and isinstance(self.json.get("model"), str):
            return str(self.json["model"])
        return None


@dataclass
class StreamRecord:
    """One streamed response: where it went and how it ended."""

    path: str
    model: str | None
    chunks_sent: int = 0  # SSE data events written, not counting ``[DONE]``
    outcome: StreamOutcome = "active"


def _mask(key: str) -> str:
    return key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * 4


# ---------------------------------------------------------------------------------------------
# The server


class MockOpenAIUpstream(ServerThread):
    """An OpenAI / Azure OpenAI upstream on 127.0.0.1, served from a background thread."""

    kind = "openai"
    join_timeout = 15.0
    runner_options: dict[str, Any] = {"handler_cancellation": True, "shutdown_timeout": 1.0}

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reply: str | None = None,
        name: str | None = None,
        embedding_dim: int = 1536,
        models: Sequence[str] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.reply = reply
        self.name = name
        self.embedding_dim = embedding_dim
        self.models = list(models)
        self._fingerprint = wire.fingerprint(name or "mock")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._streams: list[StreamRecord] = []
        self._queue: list[_QueuedFault] = []
        self._default_fault: Fault | None = None

    def thread_name(self) -> str:
        return f"mock-openai-{self.name or 'upstream'}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MockOpenAIUpstream is not running; call start()")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        routes: list[tuple[str, str, Kind]] = []
        for prefix in ("/v1", ""):
            routes += [
                ("POST", f"{prefix}/chat/completions", "chat"),
                ("POST", f"{prefix}/completions", "completions"),
                ("POST", f"{prefix}/embeddings", "embeddings"),
                ("GET", f"{prefix}/models", "models"),
                ("GET", f"{prefix}/models/{{model}}", "model"),
            ]
        azure = "/openai/deployments/{deployment}"
        routes += [
            ("POST", f"{azure}/chat/completions", "chat"),
            ("POST", f"{azure}/completions", "completions"),
            ("POST", f"{azure}/embeddings", "embeddings"),
            ("*", "/{tail:.*}", "not_found"),
        ]
        for method, path, kind in routes:
            app.router.add_route(method, path, self._make_handler(kind))
        return app

    def _make_handler(self, kind: Kind) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, kind)

        return handler

    # -- recording and faults (thread-safe, callable from any thread) ----------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request recorded yet")
            return self._requests[-1]

    @property
    def streams(self) -> list[StreamRecord]:
        """A snapshot of every streamed response (records are copies)."""
        with self._lock:
            return [StreamRecord(s.path, s.model, s.chunks_sent, s.outcome) for s in self._streams]

    def _count_streams(self, outcome: StreamOutcome) -> int:
        with self._lock:
            return sum(1 for s in self._streams if s.outcome == outcome)

    @property
    def disconnected_streams(self) -> int:
        """Streams the client abandoned before the end."""
        return self._count_streams("disconnected")

    @property
    def completed_streams(self) -> int:
        """Streams that were sent in full, ``[DONE]`` included."""
        return self._count_streams("completed")

    @property
    def reset_streams(self) -> int:
        """Streams cut by a ``reset_mid_stream`` fault."""
        return self._count_streams("reset")

    @property
    def active_streams(self) -> int:
        return self._count_streams("active")

    def clear(self) -> None:
        """Forget recorded requests and streams (faults are kept; see ``clear_faults``)."""
        with self._lock:
            self._requests.clear()
            self._streams.clear()

    def count(self, path_suffix: str | None = None, model: str | None = None) -> int:
        """Recorded requests whose path ends with ``path_suffix`` and body model is ``model``."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (path_suffix is None or r.path.endswith(path_suffix))
                and (model is None or r.model == model)
            )

    def enqueue(self, fault: Fault, times: int = 1, model: str | None = None) -> None:
        """Apply ``fault`` to the next ``times`` inference requests (for ``model`` only if given).

        For Azure requests without a body ``model`` the deployment name is matched.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queue.append(_QueuedFault(fault, times, model))

    def set_default(self, fault: Fault | None) -> None:
        """Apply ``fault`` to every inference request no queued fault matches (None: no fault)."""
        with self._lock:
            self._default_fault = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._queue.clear()
            self._default_fault = None

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(q.remaining for q in self._queue)

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01
    ) -> bool:
        """Poll ``predicate`` (e.g. ``lambda: up.disconnected_streams >= 1``) until true."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    async def async_wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01
    ) -> bool:
        """Like ``wait_until``, without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)

    def _take_fault(self, model: str | None) -> Fault | None:
        with self._lock:
            for entry in self._queue:
                if entry.model is None or entry.model == model:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._queue.remove(entry)
                    return entry.fault
            return self._default_fault

    def _record(self, request: web.Request, raw: bytes, body: Any) -> None:
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            body=raw,
        )
        with self._lock:
            self._requests.append(rec)

    # -- responses --------------------------------------------------------------------------------

    def _headers(self, azure: bool) -> dict[str, str]:
        headers = {
            "x-mock-name": self.name or "mock-openai",
            "x-request-id": "req_" + secrets.token_hex(16),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "7",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "2ms",
        }
        if azure:
            headers["apim-request-id"] = str(uuid.uuid4())
            headers["x-ms-region"] = "East US"
        else:
            headers["openai-organization"] = "mock-org"
        return headers

    def _json(self, payload: Any, *, azure: bool, status: int = 200) -> web.Response:
        return web.Response(
            body=wire.dumps(payload).encode(),
            status=status,
            headers=self._headers(azure),
            content_type="application/json",
        )

    def _error(
        self,
        status: int,
        message: str,
        *,
        azure: bool,
        etype: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> web.Response:
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        resp = self._json(body, azure=azure, status=status)
        if extra_headers:
            resp.headers.update(extra_headers)
        return resp

    def _check_auth(self, request: web.Request, azure: bool) -> web.Response | None:
        if self.api_key is None:
            return None
        bearer = request.headers.get("Authorization", "")
        if azure:
            if request.headers.get("api-key") == self.api_key or bearer == f"Bearer {self.api_key}":
                return None
            body = {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API "
                    "endpoint. Make sure to provide a valid key for an active subscription and "
                    "use a correct regional API endpoint for your resource.",
                }
            }
            return self._json(body, azure=True, status=401)
        if bearer == f"Bearer {self.api_key}":
            return None
        if not bearer.startswith("Bearer ") or not bearer[7:].strip():
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return self._error(401, message, azure=False)
        message = f"Incorrect API key provided: {_mask(bearer[7:])}."
        return self._error(401, message, azure=False, code="invalid_api_key")

    async def _abort(self, request: web.Request) -> None:
        """Reset the TCP connection once already-written bytes have left the buffer."""
        await abort_connection(request)

    async def _handle(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        self._record(request, raw, body)
        deployment = request.match_info.get("deployment")
        azure = deployment is not None
        denied = self._check_auth(request, azure)
        if denied is not None:
            return denied
        if kind == "not_found":
            return self._error(404, f"Invalid URL ({request.method} {request.path})", azure=azure)
        if azure and not request.query.get("api-version"):
            return self._error(
                400,
                "The api-version query parameter (?api-version=) is required for all requests.",
                azure=True,
                param="api-version",
                code="MissingApiVersionParameter",
            )
        if kind == "models":
            data = [wire.model_object(m) for m in self.models]
            return self._json({"object": "list", "data": data}, azure=azure)
        if kind == "model":
            model_id = request.match_info["model"]
            if model_id not in self.models:
                return self._error(
                    404,
                    f"The model '{model_id}' does not exist",
                    azure=azure,
                    param="model",
                    code="model_not_found",
                )
            return self._json(wire.model_object(model_id), azure=azure)

        if bad_json or not isinstance(body, dict):
            message = (
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON.)"
            )
            return self._error(400, message, azure=azure)
        if azure and deployment is not None:
            body.setdefault("model", deployment)
        raw_model = body.get("model")
        fault = self._take_fault(raw_model if isinstance(raw_model, str) else deployment)
        early = await self._pre_fault(request, fault, azure=azure)
        if early is not None:
            return early
        stream = body.get("stream") is True and kind in ("chat", "completions")
        if kind != "embeddings" and body.get("stream_options") is not None and not stream:
            return self._error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                azure=azure,
                param="stream_options",
            )
        model = deployment if deployment is not None else raw_model
        try:
            return await self._dispatch(
                request, kind, body, str(model), stream=stream, azure=azure, fault=fault
            )
        except wire.WireError as err:
            return self._error(400, err.message, azure=azure, param=err.param, code=err.code)

    async def _pre_fault(
        self, request: web.Request, fault: Fault | None, *, azure: bool
    ) -> web.StreamResponse | None:
        if isinstance(fault, StatusFault):
            etype, message, code = _fault_error(fault)
            extra: dict[str, str] = {}
            if fault.retry_after is not None:
                ra = fault.retry_after
                extra["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
            return self._error(
                fault.code,
                message,
                azure=azure,
                etype=etype,
                param=fault.param,
                code=code,
                extra_headers=extra,
            )
        if isinstance(fault, DelayFault):
            await asyncio.sleep(fault.seconds)
        if isinstance(fault, DropConnectionFault):
            await self._abort(request)
            return web.Response(status=500)  # never reaches the client
        return None

    async def _dispatch(
        self,
        request: web.Request,
        kind: Kind,
        body: JSON,
        model: str,
        *,
        stream: bool,
        azure: bool,
        fault: Fault | None,
    ) -> web.StreamResponse:
        override = None
        if isinstance(fault, SlowStreamFault):
            override = " ".join(f"tok{i}" for i in range(fault.chunks))
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        payload: Any
        chunks: list[JSON]
        if kind == "chat":
            plan = wire.plan_chat(
                body, model=model, reply=self.reply, name=self.name, content_override=override
            )
            if stream:
                chunks = wire.chat_chunks(
                    plan,
                    system_fingerprint=self._fingerprint,
                    include_usage=include_usage,
                    azure=azure,
                )
                return await self._send_sse(request, chunks, fault, azure=azure, model=model)
            payload = wire.chat_completion(plan, system_fingerprint=self._fingerprint, azure=azure)
        elif kind == "completions":
            cplan = wire.plan_completion(
                body, model=model, reply=self.reply, name=self.name, content_override=override
            )
            if stream:
                chunks = wire.completion_chunks(
                    cplan, system_fingerprint=self._fingerprint, include_usage=include_usage
                )
                return await self._send_sse(request, chunks, fault, azure=azure, model=model)
            payload = wire.completion(cplan, system_fingerprint=self._fingerprint)
        else:
            payload = wire.embeddings(body, model=model, default_dim=self.embedding_dim)
        return await self._send_json(request, payload, fault, azure=azure)

    async def _send_json(
        self, request: web.Request, payload: Any, fault: Fault | None, *, azure: bool
    ) -> web.StreamResponse:
        if isinstance(fault, SlowFirstByteFault):
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, SlowStreamFault):
            await asyncio.sleep(fault.interval_s * fault.chunks)
        if not isinstance(fault, ResetMidStreamFault):
            return self._json(payload, azure=azure)
        data = wire.dumps(payload).encode()
        resp = web.StreamResponse(status=200, headers=self._headers(azure))
        resp.content_type = "application/json"
        resp.content_length = len(data)
        try:
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            await self._abort(request)
        except ConnectionError:
            pass
        return resp

    async def _send_sse(
        self,
        request: web.Request,
        chunks: list[JSON],
        fault: Fault | None,
        *,
        azure: bool,
        model: str,
    ) -> web.StreamResponse:
        record = StreamRecord(path=request.path, model=model)
        with self._lock:
            self._streams.append(record)
        reset_after = fault.after_chunks if isinstance(fault, ResetMidStreamFault) else None
        interval = fault.interval_s if isinstance(fault, SlowStreamFault) else 0.0
        headers = self._headers(azure)
        headers["Cache-Control"] = "no-cache"
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = "text/event-stream"
        resp.charset = "utf-8"
        with self.cancelled_on_stop():
            try:
                if isinstance(fault, SlowFirstByteFault):
                    await asyncio.sleep(fault.seconds)
                await resp.prepare(request)
                for i, chunk in enumerate(chunks):
                    if reset_after is not None and i >= reset_after:
                        break
                    if interval and i > 0:
                        await asyncio.sleep(interval)
                    await resp.write(b"data: " + wire.dumps(chunk).encode() + b"\n\n")
                    with self._lock:
                        record.chunks_sent += 1
                if reset_after is not None:
                    await self._abort(request)
                    self._finish(record, "reset")
                    return resp
                await resp.write(b"data: [DONE]\n\n")
                await resp.write_eof()
                self._finish(record, "completed")
            except ConnectionError:
                self._finish(record, "shutdown" if self.stopping else "disconnected")
            except asyncio.CancelledError:
                self._finish(record, "shutdown" if self.stopping else "disconnected")
                raise
        return resp

    def _finish(self, record: StreamRecord, outcome: StreamOutcome) -> None:
        with self._lock:
            if record.outcome == "active":
                record.outcome = outcome


def main(argv: Sequence[str] | None = None) -> None:
    """Run the mock standalone: ``python -m tests.mocks.openai_upstream --port 8999``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--reply", default=None)
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    with MockOpenAIUpstream(
        api_key=args.api_key, reply=args.reply, name=args.name, port=args.port
    ) as up:
        print(up.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
