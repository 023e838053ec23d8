"""The lean upstream HTTP client against a raw TCP server that writes exact bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bastion.providers.transport import (
    ConnectionPool,
    TransportError,
    TransportTimeout,
    parse_endpoint,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions?x=1"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    p = ConnectionPool(connect_timeout=2)
    yield p
    await p.close()


async def test_request_writes_one_well_formed_post_and_reuses_the_connection(
    pool: ConnectionPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await server.read_request(reader)
            writer.write(ok(b'{"echo": ' + body + b"}"))
            await writer.drain()

    async with RawServer(handler) as server:
        endpoint = parse_endpoint(server.url)
        head = b"Authorization: Bearer k\r\nContent-Type: application/json\r\n"
        for i in range(3):
            response = await pool.request(endpoint, head, b'{"n": %d}' % i, timeout=2)
            assert response.status == 200
            assert response.body == b'{"echo": {"n": %d}}' % i
            assert response.headers["content-type"] == "application/json"
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in first
        assert b"\r\nContent-Length: 8\r\n" in first
        assert b"\r\nAuthorization: Bearer k\r\n" in first


async def test_chunked_and_gzip_bodies_are_decoded(pool: ConnectionPool) -> None:
    payload = gzip.compress(b'{"hello": "world"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        half = len(payload) // 2
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
            + b"%x\r\n" % half
            + payload[:half]
            + b"\r\n"
            + b"%x\r\n" % (len(payload) - half)
            + payload[half:]
            + b"\r\n0\r\n\r\n"
        )
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as server:
        response = await pool.request(parse_endpoint(server.url), b"", b"{}", timeout=2)
        assert response.body == b'{"hello": "world"}'


async def test_body_delimited_by_close_is_read_and_connection_not_reused(
    pool: ConnectionPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()

    async with RawServer(handler) as server:
        endpoint = parse_endpoint(server.url)
        assert (await pool.request(endpoint, b"", b"{}", timeout=2)).body == b"all of it"
        assert (await pool.request(endpoint, b"", b"{}", timeout=2)).body == b"all of it"
        assert server.connections == 2


async def test_idle_connection_closed_by_server_is_replaced_transparently(
    pool: ConnectionPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        # Claims keep-alive, then closes right after answering.
        writer.write(ok(b"{}"))
        await writer.drain()

    async with RawServer(handler) as server:
        endpoint = parse_endpoint(server.url)
        for _ in range(3):
            assert (await pool.request(endpoint, b"", b"{}", timeout=2)).status == 200
            await asyncio.sleep(0.02)
        assert server.connections == 3


async def test_timeout_and_refused_connection(pool: ConnectionPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(5)

    async with RawServer(handler) as server:
        with pytest.raises(TimeoutError):
            await pool.request(parse_endpoint(server.url), b"", b"{}", timeout=0.2)
    with pytest.raises(TransportError) as refused:
        await pool.request(parse_endpoint("http://127.0.0.1:1/x"), b"", b"{}", timeout=2)
    assert refused.value.before_response


async def test_stream_yields_chunks_as_they_arrive_then_keeps_the_connection(
    pool: ConnectionPool,
) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            writer.write(b"7\r\ndata: 1\r\n")
            await writer.drain()
            await release.wait()
            writer.write(b"7\r\ndata: 2\r\n0\r\n\r\n")
            await writer.drain()

    async with RawServer(handler) as server:
        endpoint = parse_endpoint(server.url)
        stream = await pool.open_stream(endpoint, b"", b"{}", first_byte_timeout=2, read_timeout=2)
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        chunks = stream.iter_chunks()
        assert await anext(chunks) == b"data: 1"
        release.set()
        assert [c async for c in chunks] == [b"data: 2"]
        await stream.aclose()
        again = await pool.open_stream(endpoint, b"", b"{}", first_byte_timeout=2, read_timeout=2)
        assert await again.read_all() == b"data: 1data: 2"
        await again.aclose()
        assert server.connections == 1


async def test_closing_an_unfinished_stream_drops_the_connection(pool: ConnectionPool) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        if await reader.read() == b"":
            closed.set()

    async with RawServer(handler) as server:
        stream = await pool.open_stream(
            parse_endpoint(server.url), b"", b"{}", first_byte_timeout=2, read_timeout=2
        )
        assert await anext(stream.iter_chunks()) == b"abc"
        await stream.aclose()
        await asyncio.wait_for(closed.wait(), 2)


async def test_stream_broken_mid_way_and_stalled_stream(pool: ConnectionPool) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        writer.transport.abort()

    async with RawServer(broken) as server:
        stream = await pool.open_stream(
            parse_endpoint(server.url), b"", b"{}", first_byte_timeout=2, read_timeout=2
        )
        with pytest.raises(TransportError) as error:
            await stream.read_all()
        assert not error.value.before_response
        await stream.aclose()

    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with RawServer(stalled) as server:
        stream = await pool.open_stream(
            parse_endpoint(server.url), b"", b"{}", first_byte_timeout=2, read_timeout=0.2
        )
        with pytest.raises(TransportTimeout):
            await stream.read_all()
        await stream.aclose()


def test_parse_endpoint_forms() -> None:
    e = parse_endpoint("https://api.openai.com/v1/chat/completions")
    assert (e.scheme, e.host, e.port) == ("https", "api.openai.com", 443)
    assert e.host_header == b"api.openai.com"
    assert e.target == b"/v1/chat/completions"
    e = parse_endpoint("http://[::1]:8080")
    assert e.host_header == b"[::1]:8080" and e.target == b"/"
    with pytest.raises(ValueError):
        parse_endpoint("ftp://x/y")


async def test_https_with_a_trusted_ca_and_a_refused_untrusted_one() -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(ok(b'{"tls": true}'))
            await writer.drain()
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    endpoint = parse_endpoint(f"https://localhost:{port}/v1/x")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    trusted = ConnectionPool(ssl_context=client_context)
    untrusted = ConnectionPool(ssl_context=ssl.create_default_context())
    try:
        response = await trusted.request(endpoint, b"", b"{}", timeout=5)
        assert response.body == b'{"tls": true}'
        with pytest.raises(TransportError) as refused:
            await untrusted.request(endpoint, b"", b"{}", timeout=5)
        assert refused.value.before_response
    finally:
        await trusted.close()
        await untrusted.close()
        server.close()
