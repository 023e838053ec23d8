"""Upstream calls through an HTTP proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), with aiohttp.

Imported only when a proxied host is called, so a gateway without a proxy never
loads aiohttp. Transport failures become TransportError, as with the direct pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

from bastion.core.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from bastion.providers.transport import TransportError

ErrorMapper = Callable[[int, bytes, Mapping[str, str], str, tuple[str | None, ...]], UpstreamError]


class ProxyClient:
    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                trust_env=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, url: str, payload: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes, Mapping[str, str]]:
        client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=self.connect_timeout)
        try:
            async with self.session.post(
                url, data=payload, headers=headers, timeout=client_timeout
            ) as resp:
                body = await resp.read()
                return resp.status, body, {k.lower(): v for k, v in resp.headers.items()}
        except aiohttp.ClientError as exc:
            raise TransportError(str(exc) or type(exc).__name__, before_response=False) from None

    async def open_sse(
        self,
        url: str,
        payload: bytes,
        headers: Mapping[str, str],
        timeout: float,
        provider: str,
        secrets: tuple[str | None, ...],
        errors: ErrorMapper,
    ) -> AiohttpSSEStream:
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=timeout
        )
        try:
            resp = await self.session.post(
                url, data=payload, headers=headers, timeout=client_timeout
            )
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"{provider}: connection failed ({exc})", provider=provider
            ) from None
        if resp.status >= 400:
            try:
                body = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                body = b""
            finally:
                resp.release()
            raise errors(resp.status, body, resp.headers, provider, secrets)
        return AiohttpSSEStream(resp, provider)


class AiohttpSSEStream:
    """A stream that came through a proxy, relayed as its bytes arrive."""

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self._provider = provider
        self.content_type = response.headers.get("content-type", "text/event-stream").encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"{self._provider}: stream stalled", provider=self._provider
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"{self._provider}: stream broke ({exc})", provider=self._provider
            ) from None

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()
