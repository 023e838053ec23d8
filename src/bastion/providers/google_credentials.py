"""OAuth access tokens for Vertex AI from google-auth credentials.

Credentials come from ``vertex_credentials`` (a path to a key file, its JSON text,
or a mapping) or else from application default credentials
(GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server). google-auth's refresh
is blocking, so it runs in a worker thread; concurrent callers share one in-flight
refresh; a token close to expiry is renewed in the background while still served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport
import google.oauth2.credentials
import orjson
from google.auth.credentials import Credentials
from google.oauth2 import service_account

from bastion.core.errors import UpstreamStatusError

logger = logging.getLogger("bastion.providers.vertex")

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT_S = 30.0
# Renew in the background once a token has less than this left...
EARLY_REFRESH_S = 300.0
# ...and make callers wait for a new one below this.
MIN_VALIDITY_S = 60.0

Loader = Callable[[], tuple[Credentials, str | None]]


class _Response(google.auth.transport.Response):
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status = status
        self._headers = dict(headers)
        self._data = data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class UrllibRequest(google.auth.transport.Request):
    """google-auth's HTTP hook over the standard library (no ``requests`` dependency)."""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or TOKEN_TIMEOUT_S) as resp:
                return _Response(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, dict(exc.headers.items()), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise google.auth.exceptions.TransportError(str(exc)) from None  # type: ignore[no-untyped-call]


def loader_for(source: Any) -> Loader:
    """A loader for ``vertex_credentials`` (path, JSON text or mapping); None means ADC."""
    if source is None:
        return lambda: _default_credentials()
    if isinstance(source, Mapping):
        info = dict(source)
        return lambda: _from_info(info)
    text = str(source).strip()
    if text.startswith("{"):
        try:
            info = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"vertex_credentials is not valid JSON ({exc})") from None
        return lambda: _from_info(info)
    return lambda: _from_file(text)


def _from_info(info: Any) -> tuple[Credentials, str | None]:
    """Service-account or authorized-user credentials; other kinds go through ADC."""
    if not isinstance(info, dict):
        raise ValueError("vertex_credentials must be a JSON object")
    kind = info.get("type")
    scopes = list(SCOPES)
    if kind == "service_account":
        load = service_account.Credentials.from_service_account_info
        credentials = load(info, scopes=scopes)  # type: ignore[no-untyped-call]
        return credentials, info.get("project_id")
    if kind == "authorized_user":
        load_user = google.oauth2.credentials.Credentials.from_authorized_user_info
        user = load_user(info, scopes=scopes)  # type: ignore[no-untyped-call]
        return user, info.get("quota_project_id")
    raise ValueError(
        f"vertex_credentials of type {kind!r} are not supported here; use a service-account "
        "key, or point GOOGLE_APPLICATION_CREDENTIALS at the file"
    )


def _from_file(path: str) -> tuple[Credentials, str | None]:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        info = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError(f"{path} is not a JSON credentials file") from None
    return _from_info(info)


def _default_credentials() -> tuple[Credentials, str | None]:
    credentials, project = google.auth.default(scopes=list(SCOPES))
    return credentials, project


class AccessTokens:
    """One credential's access token, shared by every deployment that uses the credential."""

    def __init__(
        self,
        loader: Loader,
        *,
        label: str = "vertex_ai",
        clock: Callable[[], float] = time.time,
        transport: google.auth.transport.Request | None = None,
    ) -> None:
        self._loader = loader
        self._label = label
        self._clock = clock
        self._transport = transport or UrllibRequest()
        self._credentials: Credentials | None = None
        self.project: str | None = None
        self._token: str | None = None
        self._expiry = 0.0
        self._refreshing: asyncio.Future[str] | None = None
        self.refreshes = 0

    def load(self) -> None:
        """Load the credentials now (no network for key files); raises ValueError if unusable."""
        try:
            self._credentials, self.project = self._loader()
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise ValueError(f"cannot load Google credentials: {exc}") from None

    async def token(self) -> str:
        remaining = self._expiry - self._clock()
        if self._token is not None and remaining > MIN_VALIDITY_S:
            if remaining < EARLY_REFRESH_S:
                self._start_refresh()
            return self._token
        return await asyncio.shield(self._start_refresh())

    def _start_refresh(self) -> asyncio.Future[str]:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
            self._refreshing.add_done_callback(_consume_error)
        return self._refreshing

    async def _refresh(self) -> str:
        try:
            token, expiry, project = await asyncio.to_thread(self._refresh_blocking)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UpstreamStatusError(
                f"{self._label}: could not get a Google access token ({_short(exc)})",
                status=401,
                provider=self._label,
                error_type="authentication_error",
            ) from None
        except (OSError, ValueError) as exc:
            raise UpstreamStatusError(
                f"{self._label}: could not load Google credentials ({_short(exc)})",
                status=401,
                provider=self._label,
                error_type="authentication_error",
            ) from None
        self._token, self._expiry = token, expiry
        if self.project is None:
            self.project = project
        self.refreshes += 1
        return token

    def _refresh_blocking(self) -> tuple[str, float, str | None]:
        project = self.project
        if self._credentials is None:
            self._credentials, project = self._loader()
        credentials = self._credentials
        credentials.refresh(self._transport)  # type: ignore[no-untyped-call]
        token = credentials.token
        if not token:
            raise google.auth.exceptions.RefreshError("the token endpoint returned no token")  # type: ignore[no-untyped-call]
        expiry = credentials.expiry
        when = (
            expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else self._clock() + 3600
        )
        return str(token), when, project


def _consume_error(future: asyncio.Future[str]) -> None:
    """A background refresh that failed is logged; the next caller retries it."""
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.warning("Google access token refresh failed: %s", error)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
