"""Build the response cache from the configuration (the composition root calls this)."""

from __future__ import annotations

from collections.abc import Mapping

from bastion.cache.memory import MemoryStore
from bastion.cache.service import CacheStore, ResponseCache
from bastion.cache.settings import cache_settings
from bastion.config.model import ProxyConfig
from bastion.core.errors import ConfigError
from bastion.limits.limiter import RateLimiter
from bastion.routing.model_table import ModelTable


def build_response_cache(
    config: ProxyConfig,
    table: ModelTable,
    warnings: list[str],
    *,
    source: str = "<config>",
    limits: RateLimiter | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResponseCache | None:
    """The cache, or None when ``litellm_settings.cache`` is off. A Redis the rate
    limiter already talks to is shared (one client, one outage state), and entries
    are then read in the limiter's admission round trip."""
    problems: list[str] = []
    settings = cache_settings(config, warnings, problems, environ)
    if problems:
        raise ConfigError(source, problems)
    if settings is None:
        return None
    store: CacheStore
    if settings.type == "redis" and settings.redis is not None:  # redis-py imported only then
        from bastion.cache.redis_store import RedisStore
        from bastion.storage.redis_link import RedisLink

        shared = limits.link if limits is not None else None
        if shared is not None and shared.settings.same_server(settings.redis):
            cache = ResponseCache(settings, RedisStore(shared, owns_link=False), table)
            cache.read_at_admission = True
            return cache
        store = RedisStore(RedisLink(settings.redis))
    else:
        store = MemoryStore(settings.max_memory_bytes, settings.max_item_bytes)
    return ResponseCache(settings, store, table)
