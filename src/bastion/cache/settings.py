"""The response cache's configuration, LiteLLM's way::

    litellm_settings:
      cache: true
      cache_params:
        type: redis            # or local (the default)
        host: ...              # port, password, username (ACLs), ssl, url, db
        namespace: myapp       # keys are "<namespace>:<hash>"
        ttl: 600               # seconds an answer is kept
        mode: default_off      # cache only requests that send cache: {use-cache: true}
        supported_call_types: [acompletion, atext_completion, aembedding, anthropic_messages]

Bastion's own: ``max_memory_bytes`` (the in-process store's bound, 64 MiB) and
``max_item_bytes`` (a larger answer is not stored, 4 MiB).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.config.model import ProxyConfig
from bastion.config.redis_settings import RedisSettings, cache_redis_settings
from bastion.core.deployment import Operation
from bastion.core.dialect import Dialect

DEFAULT_TTL_S = 600.0
DEFAULT_MAX_MEMORY_BYTES = 64 * 1_048_576
DEFAULT_MAX_ITEM_BYTES = 4 * 1_048_576

Call = tuple[Operation, Dialect]
CHAT = (Operation.CHAT, Dialect.OPENAI)
TEXT = (Operation.COMPLETION, Dialect.OPENAI)
EMBEDDING = (Operation.EMBEDDING, Dialect.OPENAI)
MESSAGES = (Operation.CHAT, Dialect.ANTHROPIC)

# LiteLLM's call-type names for what Bastion caches.
CALL_TYPES: dict[str, Call] = {
    "completion": CHAT,
    "acompletion": CHAT,
    "text_completion": TEXT,
    "atext_completion": TEXT,
    "embedding": EMBEDDING,
    "aembedding": EMBEDDING,
    "anthropic_messages": MESSAGES,
}
ALL_CALLS: frozenset[Call] = frozenset(CALL_TYPES.values())
_LOCAL_TYPES = ("local", "redis")


@dataclass(frozen=True, slots=True)
class CacheSettings:
    type: str  # "local" or "redis"
    ttl: float = DEFAULT_TTL_S
    namespace: str | None = None
    default_off: bool = False
    calls: frozenset[Call] = ALL_CALLS
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES
    redis: RedisSettings | None = None


def cache_settings(
    config: ProxyConfig,
    warnings: list[str],
    problems: list[str],
    environ: Mapping[str, str] | None = None,
) -> CacheSettings | None:
    """The cache's settings, or None when ``litellm_settings.cache`` is off.

    Findings that stop the gateway go to ``problems``; the rest to ``warnings``.
    """
    if not config.litellm_settings.cache:
        return None
    params: dict[str, Any] = dict(config.litellm_settings.cache_params or {})
    where = "litellm_settings.cache_params"
    kind = str(params.get("type") or "local").lower()
    if kind not in _LOCAL_TYPES:
        warnings.append(
            f"{where}.type '{kind}' is not supported by Bastion: answers are cached in "
            "process (type: local); use type: redis to share them across workers"
        )
        kind = "local"
    mode = params.get("mode")
    if mode not in (None, "default_on", "default_off"):
        problems.append(f"{where}.mode: must be default_on or default_off, not {mode!r}")
    redis: RedisSettings | None = None
    if kind == "redis":
        try:
            redis = cache_redis_settings(config, environ)
        except ValueError as exc:
            problems.append(str(exc))
    ttl_default = params.get("default_in_redis_ttl" if kind == "redis" else "default_in_memory_ttl")
    return CacheSettings(
        type=kind,
        ttl=_positive(params, "ttl", ttl_default or DEFAULT_TTL_S, problems),
        namespace=_namespace(params.get("namespace"), problems),
        default_off=mode == "default_off",
        calls=_calls(params.get("supported_call_types"), warnings, problems),
        max_memory_bytes=int(
            _positive(params, "max_memory_bytes", DEFAULT_MAX_MEMORY_BYTES, problems)
        ),
        max_item_bytes=int(_positive(params, "max_item_bytes", DEFAULT_MAX_ITEM_BYTES, problems)),
        redis=redis,
    )


def _positive(params: dict[str, Any], name: str, default: Any, problems: list[str]) -> float:
    value = params.get(name)
    if value is None:
        value = default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number > 0:
        problems.append(f"litellm_settings.cache_params.{name}: must be a positive number")
        return 1.0
    return number


def _namespace(value: Any, problems: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append("litellm_settings.cache_params.namespace: must be a string")
        return None
    return value


def _calls(value: Any, warnings: list[str], problems: list[str]) -> frozenset[Call]:
    if value is None:
        return ALL_CALLS
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(
            "litellm_settings.cache_params.supported_call_types: must be a list of call "
            "types such as acompletion, aembedding"
        )
        return ALL_CALLS
    calls: set[Call] = set()
    for name in value:
        call = CALL_TYPES.get(name)
        if call is None:
            warnings.append(
                f"litellm_settings.cache_params.supported_call_types: '{name}' is not cached "
                f"by Bastion (it caches {', '.join(sorted(CALL_TYPES))})"
            )
        else:
            calls.add(call)
    return frozenset(calls)
