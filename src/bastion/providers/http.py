"""The pooled upstream HTTP client and the mapping of transport failures to our errors."""

from __future__ import annotations

import email.utils
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

if TYPE_CHECKING:
    from bastion.providers.proxy_client import AiohttpSSEStream, ProxyClient

from bastion.providers.transport import (
    ConnectionPool,
    Endpoint,
    StreamingResponse,
    TransportError,
    TransportTimeout,
    parse_endpoint,
)

DEFAULT_TIMEOUT_S = 600.0
MAX_ENDPOINT_CACHE = 4096
# Turns a non-2xx answer into our error; providers with their own error format pass one.
ErrorMapper = Callable[[int, bytes, Mapping[str, str], str, tuple[str | None, ...]], UpstreamError]


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Header lines, ready to go on the wire (each ends with CRLF)."""
    lines = []
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n"):
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class UpstreamHTTP:
    """The process's upstream HTTP client, started and closed by the app lifespan.

    Direct connections use the lean keep-alive pool of ``transport.py``; a host that
    the environment routes through a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``NO_PROXY``) goes through aiohttp, which speaks to proxies.
    """

    def __init__(self, *, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self.pool = ConnectionPool(connect_timeout=connect_timeout)
        self._proxy: ProxyClient | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._proxies: dict[str, str] = {}

    async def start(self) -> None:
        self._proxies = {k: v for k, v in urllib.request.getproxies().items() if k != "no"}

    async def close(self) -> None:
        await self.pool.close()
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None

    def endpoint(self, url: str) -> Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = parse_endpoint(url)
            if len(self._endpoints) >= MAX_ENDPOINT_CACHE:
                self._endpoints.clear()
            self._endpoints[url] = endpoint
        return endpoint

    def proxied(self, endpoint: Endpoint) -> bool:
        return bool(
            self._proxies.get(endpoint.scheme) and not urllib.request.proxy_bypass(endpoint.host)
        )

    @property
    def proxy(self) -> ProxyClient:
        """The aiohttp client for proxied hosts, imported and created on first use."""
        if self._proxy is None:
            from bastion.providers.proxy_client import ProxyClient

            self._proxy = ProxyClient(self.connect_timeout)
        return self._proxy


async def post_json(
    http: UpstreamHTTP,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    head: bytes,
    *,
    provider: str,
    timeout: float | None,
    secrets: tuple[str | None, ...] = (),
    errors: ErrorMapper | None = None,
) -> tuple[int, bytes, bytes]:
    """POST and read the whole answer. Returns (status, body, content type)."""
    limit = timeout or DEFAULT_TIMEOUT_S
    try:
        endpoint = http.endpoint(url)
        if http.proxied(endpoint):
            status, body, resp_headers = await http.proxy.post(url, payload, headers, limit)
        else:
            response = await http.pool.request(endpoint, head, payload, timeout=limit)
            status, body, resp_headers = response.status, response.body, response.headers
    except TimeoutError:
        raise UpstreamTimeoutError(
            f"{provider}: no response within {limit:g}s", provider=provider
        ) from None
    except (TransportError, ValueError) as exc:
        raise UpstreamConnectionError(
            f"{provider}: connection failed ({_describe(exc)})", provider=provider
        ) from None
    if status >= 400:
        raise (errors or error_from_response)(status, body, resp_headers, provider, secrets)
    return status, body, resp_headers.get("content-type", "application/json").encode()


class SSEStream:
    """An upstream streaming response whose bytes are relayed as they arrive."""

    def __init__(self, response: StreamingResponse, provider: str) -> None:
        self._response = response
        self._provider = provider
        self.content_type = response.headers.get("content-type", "text/event-stream").encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.iter_chunks():
                yield chunk
        except TransportTimeout as exc:
            raise UpstreamTimeoutError(
                f"{self._provider}: stream stalled ({exc})", provider=self._provider
            ) from None
        except TransportError as exc:
            raise UpstreamConnectionError(
                f"{self._provider}: stream broke ({_describe(exc)})", provider=self._provider
            ) from None

    async def aclose(self) -> None:
        await self._response.aclose()


async def open_sse(
    http: UpstreamHTTP,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    head: bytes,
    *,
    provider: str,
    stream_timeout: float | None,
    secrets: tuple[str | None, ...] = (),
    errors: ErrorMapper | None = None,
) -> SSEStream | AiohttpSSEStream:
    limit = stream_timeout or DEFAULT_TIMEOUT_S
    try:
        endpoint = http.endpoint(url)
        if http.proxied(endpoint):
            return await http.proxy.open_sse(
                url, payload, headers, limit, provider, secrets, errors or error_from_response
            )
        response = await http.pool.open_stream(
            endpoint, head, payload, first_byte_timeout=limit, read_timeout=limit
        )
        if response.status >= 400:
            try:
                body = await response.read_all()
            finally:
                await response.aclose()
            raise (errors or error_from_response)(
                response.status, body, response.headers, provider, secrets
            )
    except TimeoutError:
        raise UpstreamTimeoutError(
            f"{provider}: stream did not start within {limit:g}s", provider=provider
        ) from None
    except (TransportError, ValueError) as exc:
        raise UpstreamConnectionError(
            f"{provider}: connection failed ({_describe(exc)})", provider=provider
        ) from None
    return SSEStream(response, provider)


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
