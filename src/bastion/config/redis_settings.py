"""Where Redis is, read the ways LiteLLM users already configure it.

In order, the first that names a server wins:

1. ``router_settings``: ``redis_url``, or ``redis_host`` / ``redis_port`` /
   ``redis_password`` (and ``redis_username``, ``redis_db``);
2. ``litellm_settings.cache_params`` with ``type: redis``: ``url`` or ``host`` /
   ``port`` / ``password`` / ``username`` / ``ssl`` / ``db``;
3. the environment: ``REDIS_URL``, or ``REDIS_HOST`` / ``REDIS_PORT`` /
   ``REDIS_PASSWORD`` (and ``REDIS_USERNAME``, ``REDIS_SSL``).

Within 2 and 3 a missing host, port or password is taken from the environment, as
LiteLLM's cache does. Shared by the rate limiter and the response cache (which reads
``cache_params`` first: :func:`cache_redis_settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from bastion.config.model import ProxyConfig

DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """One Redis (or Redis-compatible) server. ``source`` says which setting named it."""

    source: str
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    password: str | None = None
    username: str | None = None
    db: int = 0
    ssl: bool = False

    def same_server(self, other: RedisSettings) -> bool:
        """Whether both reach the same server and database as the same user (whichever
        setting named them, as a URL or as host and port)."""
        return self._endpoint() == other._endpoint()

    def _endpoint(self) -> tuple[object, ...]:
        if not self.url:
            return (self.ssl, self.host, self.port, self.db, self.username, self.password)
        parts = urlsplit(self.url)
        if parts.scheme not in ("redis", "rediss"):
            return (self.url,)  # a Unix socket: the same URL or not at all
        db = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
        return (
            parts.scheme == "rediss",
            parts.hostname or "localhost",
            parts.port or DEFAULT_PORT,
            int(db) if db.isdigit() else db,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    @property
    def display(self) -> str:
        """Where the server is, without credentials (for logs and readiness)."""
        if self.url:
            parts = urlsplit(self.url)
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"


def resolve_redis_settings(
    config: ProxyConfig, environ: Mapping[str, str] | None = None
) -> RedisSettings | None:
    """The Redis the configuration names, or None when it names none."""
    env = os.environ if environ is None else environ
    router = config.router_settings
    router_extra = router.model_extra or {}
    if router.redis_url:
        return RedisSettings("router_settings.redis_url", url=router.redis_url)
    if router.redis_host:
        return RedisSettings(
            "router_settings.redis_host",
            host=router.redis_host,
            port=_port(router.redis_port, "router_settings.redis_port"),
            password=router.redis_password,
            username=_text(router_extra.get("redis_username")),
            db=_int(router_extra.get("redis_db"), "router_settings.redis_db", 0),
        )
    params = config.litellm_settings.cache_params or {}
    if str(params.get("type") or "").lower() == "redis":
        return _from_cache_params(params, env)
    if env.get("REDIS_URL"):
        return RedisSettings("REDIS_URL", url=env["REDIS_URL"])
    if env.get("REDIS_HOST"):
        return _from_env("REDIS_HOST", env)
    return None


def cache_redis_settings(
    config: ProxyConfig, environ: Mapping[str, str] | None = None
) -> RedisSettings:
    """The Redis of the response cache (``cache_params`` with ``type: redis``): its own
    ``url`` / ``host`` ... first, then the environment, as LiteLLM's cache reads them."""
    env = os.environ if environ is None else environ
    return _from_cache_params(config.litellm_settings.cache_params or {}, env)


def _from_cache_params(params: Mapping[str, Any], env: Mapping[str, str]) -> RedisSettings:
    source = "litellm_settings.cache_params"
    url = _text(params.get("url") or params.get("redis_url"))
    if url:
        return RedisSettings(source, url=url)
    if not params.get("host") and env.get("REDIS_URL"):
        return RedisSettings(source, url=env["REDIS_URL"])
    return RedisSettings(
        source,
        host=_text(params.get("host")) or env.get("REDIS_HOST") or "127.0.0.1",
        port=_port(params.get("port") or env.get("REDIS_PORT"), f"{source}.port"),
        password=_text(params.get("password")) or env.get("REDIS_PASSWORD") or None,
        username=_text(params.get("username")) or env.get("REDIS_USERNAME") or None,
        db=_int(params.get("db"), f"{source}.db", 0),
        ssl=_flag(params.get("ssl")) or _flag(env.get("REDIS_SSL")),
    )


def _from_env(source: str, env: Mapping[str, str]) -> RedisSettings:
    return RedisSettings(
        source,
        host=env["REDIS_HOST"],
        port=_port(env.get("REDIS_PORT"), "REDIS_PORT"),
        password=env.get("REDIS_PASSWORD") or None,
        username=env.get("REDIS_USERNAME") or None,
        ssl=_flag(env.get("REDIS_SSL")),
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _port(value: Any, where: str) -> int:
    return _int(value, where, DEFAULT_PORT)


def _int(value: Any, where: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{value}' is not a number") from None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
