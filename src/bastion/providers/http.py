"""The pooled upstream HTTP client and the mapping of transport failures to our errors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from bastion.core.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

DEFAULT_TIMEOUT_S = 600.0


class UpstreamHTTP:
    """Owns one keep-alive aiohttp session per process; started in the app lifespan."""

    def __init__(self, *, connection_limit: int = 0, connect_timeout: float = 10.0) -> None:
        self._connection_limit = connection_limit
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connection_limit,
                limit_per_host=0,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamHTTP used before start()")
        return self._session


async def post_json(
    http: UpstreamHTTP,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    timeout: float | None,
    secrets: tuple[str | None, ...] = (),
) -> tuple[int, bytes, bytes]:
    """POST and read the whole answer. Returns (status, body, content type)."""
    client_timeout = aiohttp.ClientTimeout(
        total=timeout or DEFAULT_TIMEOUT_S, sock_connect=http.connect_timeout
    )
    try:
        async with http.session.post(
            url, data=payload, headers=headers, timeout=client_timeout
        ) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise error_from_response(resp.status, body, resp.headers, provider, secrets)
            return resp.status, body, resp.headers.get("content-type", "application/json").encode()
    except TimeoutError:
        raise UpstreamTimeoutError(
            f"{provider}: no response within {timeout or DEFAULT_TIMEOUT_S:g}s",
            provider=provider,
        ) from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(
            f"{provider}: connection failed ({_describe(exc)})", provider=provider
        ) from None


class AiohttpSSEStream:
    """An upstream streaming response whose bytes are relayed as they arrive."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        provider: str,
        stream_timeout: float | None,
    ) -> None:
        self._response = response
        self._provider = provider
        self._stream_timeout = stream_timeout
        self.content_type = response.headers.get("content-type", "text/event-stream").encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"{self._provider}: stream stalled for over {self._stream_timeout:g}s",
                provider=self._provider,
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"{self._provider}: stream broke ({_describe(exc)})", provider=self._provider
            ) from None

    async def aclose(self) -> None:
        # close() (not release()) drops the connection, which cancels the upstream call
        # when the stream ended early; a finished stream's connection is already reusable.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


async def open_sse(
    http: UpstreamHTTP,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    stream_timeout: float | None,
    secrets: tuple[str | None, ...] = (),
) -> AiohttpSSEStream:
    read_timeout = stream_timeout or DEFAULT_TIMEOUT_S
    client_timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=http.connect_timeout, sock_read=read_timeout
    )
    try:
        resp = await http.session.post(url, data=payload, headers=headers, timeout=client_timeout)
    except TimeoutError:
        raise UpstreamTimeoutError(
            f"{provider}: stream did not start within {read_timeout:g}s", provider=provider
        ) from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(
            f"{provider}: connection failed ({_describe(exc)})", provider=provider
        ) from None
    if resp.status >= 400:
        try:
            body = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            body = b""
        finally:
            resp.release()
        raise error_from_response(resp.status, body, resp.headers, provider, secrets)
    return AiohttpSSEStream(resp, provider, read_timeout)


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    provider: str,
    secrets: tuple[str | None, ...] = (),
) -> UpstreamError:
    message, error_type, code, param = _parse_error_body(body)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    if not message:
        message = f"upstream answered HTTP {status}"
    return UpstreamStatusError(
        f"{provider} error: {message}",
        status=status,
        provider=provider,
        retry_after=parse_retry_after(headers),
        error_type=error_type or _default_type(status),
        code=code,
        param=param,
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _parse_error_body(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace").strip(), None, None, None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            code = err.get("code")
            return (
                str(err.get("message") or err.get("detail") or ""),
                _str_or_none(err.get("type")),
                _str_or_none(code),
                _str_or_none(err.get("param")),
            )
        if isinstance(err, str):
            return err, None, None, None
        detail = data.get("detail") or data.get("message")
        if detail:
            return str(detail), None, None, None
    return "", None, None, None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _default_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
