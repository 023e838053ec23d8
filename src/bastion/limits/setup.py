"""Build the rate limiter from the configuration (the composition root calls this).

``general_settings``:

- ``global_max_parallel_requests``: requests in flight across the gateway;
- ``rate_limit_fail_closed`` (Bastion's, default false): with Redis configured and
  unreachable, refuse requests that have limits with a 503 instead of counting
  them on this process's counters;
- ``rate_limit_redis_prefix`` (Bastion's, default ``bastion:rl:``): the prefix of
  every Redis key the limiter writes.

Redis is used when the configuration names one (config/redis_settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bastion.config.model import ProxyConfig
from bastion.config.redis_settings import resolve_redis_settings
from bastion.core.deployment import Deployment
from bastion.core.errors import ConfigError
from bastion.limits.backend import DEFAULT_PREFIX
from bastion.limits.limiter import RateLimiter

if TYPE_CHECKING:
    from bastion.limits.redis_backend import RedisBackend
    from bastion.storage.redis_link import RedisLink


def build_rate_limiter(
    config: ProxyConfig,
    deployments: Sequence[Deployment],
    *,
    source: str = "<config>",
    dynamic_deployments: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RateLimiter:
    general: dict[str, Any] = config.general_settings.model_extra or {}
    problems: list[str] = []
    global_parallel = _optional_count(general, "global_max_parallel_requests", problems)
    fail_closed = general.get("rate_limit_fail_closed", False)
    if not isinstance(fail_closed, bool):
        problems.append("general_settings.rate_limit_fail_closed: must be true or false")
    prefix = general.get("rate_limit_redis_prefix", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or not prefix:
        problems.append("general_settings.rate_limit_redis_prefix: must be a non-empty string")
    try:
        settings = resolve_redis_settings(config, environ)
    except ValueError as exc:
        problems.append(str(exc))
        settings = None
    if problems:
        raise ConfigError(source, problems)
    link: RedisLink | None = None
    shared: RedisBackend | None = None
    if settings is not None:  # redis-py is imported only then
        from bastion.limits.redis_backend import RedisBackend
        from bastion.storage.redis_link import RedisLink

        link = RedisLink(settings)
        shared = RedisBackend(link.resp, prefix)
    return RateLimiter(
        shared=shared,
        link=link,
        fail_closed=bool(fail_closed),
        global_max_parallel=global_parallel,
        # Models stored in the database may bring rpm/tpm later: then always ask.
        deployment_limits=dynamic_deployments
        or any(d.rpm is not None or d.tpm is not None for d in deployments),
    )


def _optional_count(section: dict[str, Any], name: str, problems: list[str]) -> int | None:
    value = section.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"general_settings.{name}: must be a whole number >= 0, not {value!r}")
        return None
    return value
