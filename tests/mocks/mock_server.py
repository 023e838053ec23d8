"""The common part of the provider mocks: a real aiohttp server on loopback in a thread.

A subclass adds its routes (``build_routes``) and its error body (``error_body``);
this base records every request, hands out queued faults and writes SSE streams::

    with MockGemini(api_key="k") as up:
        up.enqueue(StatusFault(429, retry_after=1))   # the next inference call gets 429
        ...
        assert up.count(":generateContent") == 2

Faults apply to inference requests only, after authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class StatusFault:
    """Answer with the provider's error body and this status (``retry-after`` if given)."""

    status: int
    retry_after: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class DelayFault:
    seconds: float


@dataclass(frozen=True)
class ResetFault:
    """Streams: send ``after_events`` events, then reset the connection."""

    after_events: int = 1


Fault = StatusFault | DelayFault | ResetFault


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any
    body: bytes


class ServerThread:
    """An aiohttp app on loopback, served from its own thread and event loop.

    Subclasses build the app (``build_app``); this class starts, stops and locates it.
    It can be stopped and started again; with a fixed ``port`` it comes back at the same address.
    Handlers that run inside ``cancelled_on_stop()`` are cancelled as ``stop()`` begins.
    """

    kind = "mock"
    join_timeout = 10.0
    runner_options: dict[str, Any] = {"shutdown_timeout": 0.5}

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._fixed_port = port  # 0: a free port on each start
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping = False
        self._cancel_on_stop: set[asyncio.Task[Any]] = set()

    def thread_name(self) -> str:
        return f"mock-{self.kind}"

    def build_app(self) -> web.Application:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"mock {self.kind} already started")
        self._ready.clear()
        self._start_error = None
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=self.thread_name(), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"mock {self.kind} did not start")
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"mock {self.kind} failed to start") from self._start_error
        return self

    def stop(self) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        self._stopping = True
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(self.join_timeout)
        self._thread = None

    @property
    def stopping(self) -> bool:
        """True from ``stop()`` until the next ``start()``: a stream cut now was cut by the stop."""
        return self._stopping

    @contextlib.contextmanager
    def cancelled_on_stop(self) -> Iterator[None]:
        """Run a handler's body so that ``stop()`` cancels it at once.

        Otherwise the runner's cleanup would wait ``shutdown_timeout`` for it first.
        """
        task = asyncio.current_task()
        if task is not None:
            self._cancel_on_stop.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._cancel_on_stop.discard(task)

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
        if self._port is None:
            raise RuntimeError("not started")
        return f"http://{self._host}:{self._port}"

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not self._ready.is_set():
                self._start_error = exc
        finally:
            try:
                _cancel_leftover_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                if self._loop is loop:  # not yet replaced by a restart
                    self._loop = None
                self._ready.set()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(self.build_app(), access_log=None, **self.runner_options)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._fixed_port)
            await site.start()
            self._port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stop_event.wait()
            for task in list(self._cancel_on_stop):
                task.cancel()
        finally:
            await runner.cleanup()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


class MockServer(ServerThread):
    """Thread + event loop + aiohttp runner; recording and faults are thread-safe."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._faults: list[list[Any]] = []  # [fault, remaining]

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for method, path, handler in self.build_routes():
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # -- for subclasses ----------------------------------------------------------------------

    def build_routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message}}

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(self.error_body(status, message), status=status, headers=headers)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self.read(request)
        return self.error(404, f"no route {request.method} {request.path}")

    async def read(self, request: web.Request) -> Any:
        """Read and record the request; returns the parsed JSON (None if not JSON)."""
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if body is None and request.content_type == "application/x-www-form-urlencoded":
            body = _form(raw)
        record = Recorded(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            raw,
        )
        with self._lock:
            self._requests.append(record)
        return body

    async def apply_fault(self) -> tuple[web.Response | None, Fault | None]:
        """The next fault: a response to send instead (status faults), or the fault to apply."""
        fault = self._take_fault()
        if isinstance(fault, StatusFault):
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            message = fault.message or _default_message(fault.status)
            return self.error(fault.status, message, headers), fault
        if isinstance(fault, DelayFault):
            await asyncio.sleep(fault.seconds)
        return None, fault

    async def send_sse(
        self,
        request: web.Request,
        events: list[bytes],
        fault: Fault | None = None,
        *,
        interval: float = 0.0,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Cache-Control": "no-cache"})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        reset_after = fault.after_events if isinstance(fault, ResetFault) else None
        try:
            for index, event in enumerate(events):
                if reset_after is not None and index >= reset_after:
                    await self._abort(request)
                    return resp
                if interval and index:
                    await asyncio.sleep(interval)
                await resp.write(event)
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def _abort(self, request: web.Request) -> None:
        await abort_connection(request, polls=100)

    # -- recording and faults ----------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self._requests[-1]

    def count(self, path_contains: str = "") -> int:
        with self._lock:
            return sum(1 for r in self._requests if path_contains in r.path)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def enqueue(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.append([fault, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            entry = self._faults[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._faults.pop(0)
            fault: Fault = entry[0]
            return fault


async def abort_connection(request: web.Request, *, polls: int = 200) -> None:
    """Reset the TCP connection once already-written bytes have left the buffer."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(polls):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode()))


def _default_message(status: int) -> str:
    if status == 429:
        return "Resource has been exhausted (mock fault)."
    if status >= 500:
        return "The service is currently unavailable (mock fault)."
    return f"Mock error {status}."


def words(text: str) -> int:
    """The mocks' token count: whitespace-separated words."""
    return len(text.split())
