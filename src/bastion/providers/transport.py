"""A lean keep-alive HTTP/1.1 client for calls to providers: the gateway's hottest code.

Why not aiohttp here: under load the gateway spent about 100 µs of CPU per upstream
call inside aiohttp's client machinery (request/response objects, multidicts,
payload registry, per-request timers) against about 25 µs in this module, measured
with ``bench/`` and py-spy. Each request is one ``transport.write`` of a
pre-encoded header block plus the body; responses are parsed by httptools (the
same C parser uvicorn uses). Requests through an HTTP proxy (``HTTPS_PROXY``…)
go through aiohttp instead; see ``providers/http.py``.

One ``ConnectionPool`` per process keeps idle connections per (scheme, host, port).
A connection is reused only after a complete response that allows keep-alive. A
request on a reused connection that fails before any response byte arrived (the
server closed the idle connection at that moment) is retried once on a new one.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

MAX_IDLE_PER_HOST = 512
IDLE_TIMEOUT_S = 30.0
# Stop reading from the provider when a slow client has this much unsent.
STREAM_HIGH_WATER = 1 << 20


class TransportError(Exception):
    """The connection failed or broke; ``before_response`` if no byte of an answer came."""

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class TransportTimeout(TransportError):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed URL, ready to write: origin key, host header, request target."""

    scheme: str
    host: str
    port: int
    target: bytes
    host_header: bytes

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == default_port else f"{shown_host}:{port}"
    return Endpoint(parts.scheme, host, port, target.encode(), host_header.encode())


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._status = 0
        self._got_bytes = False
        self._length_known = False
        self._headers_done: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._body: list[bytes] = []
        self._streaming = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._chunk_waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._keep_alive = False
        self._paused = False
        self._error: TransportError | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            self._fail(TransportError("unexpected data from upstream", before_response=False))
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"invalid HTTP response: {exc}", before_response=False))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self._complete:
            if (
                self._headers_done is not None
                and self._headers_done.done()
                and (not self._length_known)
            ):
                self.on_message_complete()  # a body delimited by the connection closing
                return
            reason = str(exc) if exc else "connection closed by upstream"
            self._fail(TransportError(reason, before_response=not self._got_bytes))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        self._headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        headers = self._headers
        self._length_known = (
            "content-length" in headers
            or "chunked" in headers.get("transfer-encoding", "")
            or self._status in (204, 304)
            or 100 <= self._status < 200
        )
        if self._headers_done is not None and not self._headers_done.done():
            self._headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._streaming:
            self._chunks.append(body)
            self._buffered += len(body)
            if self._buffered > STREAM_HIGH_WATER and not self._paused and self.transport:
                self.transport.pause_reading()
                self._paused = True
            self._wake()
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete = True
        assert self._parser is not None
        self._keep_alive = self._parser.should_keep_alive() and self._length_known
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        self._wake()

    # request side
    def start(self, payload: bytes, streaming: bool) -> None:
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._headers = {}
        self._status = 0
        self._got_bytes = False
        self._length_known = False
        self._complete = False
        self._keep_alive = False
        self._body = []
        self._chunks.clear()
        self._buffered = 0
        self._error = None
        self._streaming = streaming
        self._headers_done = self._loop.create_future()
        self._done = self._loop.create_future()
        self.transport.write(payload)

    async def wait_headers(self) -> None:
        assert self._headers_done is not None
        await self._headers_done

    async def wait_done(self) -> None:
        assert self._done is not None
        await self._done

    def response_head(self) -> tuple[int, dict[str, str]]:
        return self._status, self._headers

    def take_body(self) -> bytes:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        return body

    async def next_chunk(self) -> bytes | None:
        """The body bytes received so far and not yet taken; None at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._chunk_waiter = self._loop.create_future()
            try:
                await self._chunk_waiter
            finally:
                self._chunk_waiter = None
        # Everything that has arrived goes out as one piece: one write to the client
        # instead of one per upstream chunk, and no waiting for more.
        if len(self._chunks) == 1:
            chunk = self._chunks.popleft()
        else:
            chunk = b"".join(self._chunks)
            self._chunks.clear()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < STREAM_HIGH_WATER // 2 and self.transport:
            self.transport.resume_reading()
            self._paused = False
        return chunk

    @property
    def reusable(self) -> bool:
        return self._complete and self._keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: TransportError) -> None:
        self._error = error
        for future in (self._headers_done, self._done):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: a stream may never await _done
        self._wake()
        self.abort()

    def _wake(self) -> None:
        waiter = self._chunk_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass(slots=True)
class ConnectionPool:
    connect_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    _idle: dict[tuple[str, str, int], deque[_Connection]] = field(default_factory=dict)
    _closed: bool = False

    async def request(
        self,
        endpoint: Endpoint,
        head: bytes,
        body: bytes,
        *,
        timeout: float,
    ) -> Response:
        """POST with the given pre-encoded header lines; read the whole answer."""
        async with asyncio.timeout(timeout):
            conn = await self._exchange(endpoint, _request_bytes(endpoint, head, body), False)
        status, headers = conn.response_head()
        data = _decode(conn.take_body(), headers)
        self._release(endpoint, conn)
        return Response(status, headers, data)

    async def open_stream(
        self,
        endpoint: Endpoint,
        head: bytes,
        body: bytes,
        *,
        first_byte_timeout: float,
        read_timeout: float,
    ) -> StreamingResponse:
        """POST and return once the response headers are in; the body is read lazily."""
        async with asyncio.timeout(first_byte_timeout):
            conn = await self._exchange(endpoint, _request_bytes(endpoint, head, body), True)
        status, headers = conn.response_head()
        return StreamingResponse(self, endpoint, conn, status, headers, read_timeout)

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _exchange(self, endpoint: Endpoint, payload: bytes, streaming: bool) -> _Connection:
        conn = await self._acquire(endpoint)
        try:
            await self._start(conn, payload, streaming)
        except TransportError as error:
            # A reused connection the server closed while idle fails before any
            # response byte: the request never reached it, so it gets one new connection.
            if not (conn.reused and error.before_response):
                raise
            conn = await self._connect(endpoint)
            await self._start(conn, payload, streaming)
        return conn

    @staticmethod
    async def _start(conn: _Connection, payload: bytes, streaming: bool) -> None:
        conn.start(payload, streaming)
        try:
            await (conn.wait_headers() if streaming else conn.wait_done())
        except BaseException:
            conn.abort()
            raise

    async def _acquire(self, endpoint: Endpoint) -> _Connection:
        idle = self._idle.get(endpoint.origin)
        loop = asyncio.get_running_loop()
        now = loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TIMEOUT_S:
                conn.reused = True
                return conn
            conn.close()
        return await self._connect(endpoint)

    async def _connect(self, endpoint: Endpoint) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if endpoint.scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            context = self.ssl_context
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    endpoint.host,
                    endpoint.port,
                    ssl=context,
                    server_hostname=endpoint.host if context else None,
                )
        except TimeoutError:
            raise TransportTimeout(
                f"could not connect to {endpoint.host}:{endpoint.port} within "
                f"{self.connect_timeout:g}s",
                before_response=True,
            ) from None
        except OSError as exc:
            raise TransportError(
                f"could not connect to {endpoint.host}:{endpoint.port}: {exc.strerror or exc}",
                before_response=True,
            ) from None
        return conn

    def _release(self, endpoint: Endpoint, conn: _Connection) -> None:
        if not conn.reusable or self._closed:
            conn.close()
            return
        idle = self._idle.setdefault(endpoint.origin, deque())
        if len(idle) >= MAX_IDLE_PER_HOST:
            conn.close()
            return
        conn.reused = False
        conn.idle_since = asyncio.get_running_loop().time()
        conn._parser = None
        idle.append(conn)


class StreamingResponse:
    """A response whose body is read chunk by chunk; ``aclose`` frees or drops the connection."""

    def __init__(
        self,
        pool: ConnectionPool,
        endpoint: Endpoint,
        conn: _Connection,
        status: int,
        headers: dict[str, str],
        read_timeout: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self._pool = pool
        self._endpoint = endpoint
        self._conn = conn
        self._read_timeout = read_timeout
        self._closed = False
        encoding = headers.get("content-encoding", "").lower()
        self._decoder: Any = (
            zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
            if encoding in ("gzip", "deflate")
            else None
        )

    async def read_all(self) -> bytes:
        parts = [chunk async for chunk in self.iter_chunks()]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self._read_timeout):
                    chunk = await self._conn.next_chunk()
            except TimeoutError:
                raise TransportTimeout(
                    f"no data for {self._read_timeout:g}s", before_response=False
                ) from None
            if chunk is None:
                return
            if self._decoder is not None:
                chunk = self._decoder.decompress(chunk)
                if not chunk:
                    continue
            yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._conn.reusable:
            self._pool._release(self._endpoint, self._conn)
        else:
            # Dropping the connection is how an unfinished upstream call is cancelled.
            self._conn.abort()


def _decode(body: bytes, headers: dict[str, str]) -> bytes:
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate") and body:
        try:
            return zlib.decompress(body, zlib.MAX_WBITS | 32)
        except zlib.error:
            return body
    return body


def _request_bytes(endpoint: Endpoint, head: bytes, body: bytes) -> bytes:
    return b"".join(
        (
            b"POST ",
            endpoint.target,
            b" HTTP/1.1\r\nHost: ",
            endpoint.host_header,
            b"\r\nContent-Length: ",
            str(len(body)).encode(),
            b"\r\n",
            head,
            b"\r\n",
            body,
        )
    )
