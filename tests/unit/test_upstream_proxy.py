"""Hosts the environment routes through an HTTP proxy are called via the proxy."""

from __future__ import annotations

import asyncio

import pytest

from bastion.core.errors import UpstreamStatusError
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json


async def _forwarding_proxy(seen: list[bytes]) -> asyncio.Server:
    """A minimal plain-HTTP forward proxy: absolute-URI request line, one request per conn."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head.split(b"\r\n", 1)[0])
            method, url, version = head.split(b"\r\n", 1)[0].split(b" ")
            hostport, _, path = url.split(b"://", 1)[1].partition(b"/")
            host, _, port = hostport.partition(b":")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
            rest = head.split(b"\r\n", 1)[1].replace(b"Connection: keep-alive", b"")
            up_writer.write(method + b" /" + path + b" " + version + b"\r\n" + rest + body)
            await up_writer.drain()
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_connect, "127.0.0.1", 0)


async def _target() -> asyncio.Server:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        if b"/fail" in head.split(b"\r\n", 1)[0]:
            body = b'{"error": {"message": "nope", "type": "invalid_request_error"}}'
            status = b"400 Bad Request"
        else:
            body = b"data: via-proxy\n\n" if b"/stream" in head else b'{"via": "proxy"}'
            status = b"200 OK"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close"
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(on_connect, "127.0.0.1", 0)


async def test_requests_go_through_the_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    proxy = await _forwarding_proxy(seen)
    target = await _target()
    proxy_port = proxy.sockets[0].getsockname()[1]
    target_port = target.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = UpstreamHTTP()
    await http.start()
    headers = {"Content-Type": "application/json"}
    base = f"http://127.0.0.1:{target_port}"
    try:
        status, body, _ = await post_json(
            http,
            f"{base}/v1/x",
            b"{}",
            headers,
            encode_headers(headers),
            provider="openai",
            timeout=5,
        )
        assert (status, body) == (200, b'{"via": "proxy"}')
        stream = await open_sse(
            http,
            f"{base}/v1/stream",
            b"{}",
            headers,
            encode_headers(headers),
            provider="openai",
            stream_timeout=5,
        )
        assert b"".join([chunk async for chunk in stream]) == b"data: via-proxy\n\n"
        await stream.aclose()
        with pytest.raises(UpstreamStatusError) as error:
            await post_json(
                http,
                f"{base}/v1/fail",
                b"{}",
                headers,
                encode_headers(headers),
                provider="openai",
                timeout=5,
            )
        assert error.value.status == 400 and "nope" in error.value.message
    finally:
        await http.close()
        proxy.close()
        target.close()
    assert [line.split(b" ")[1] for line in seen] == [
        f"{base}/v1/x".encode(),
        f"{base}/v1/stream".encode(),
        f"{base}/v1/fail".encode(),
    ]
