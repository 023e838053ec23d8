"""A request's cache controls: the ``cache`` object of its body (LiteLLM's names).

``no-cache: true``   do not answer from the cache (the answer is still stored);
``no-store: true``   do not store this answer;
``ttl: N``           keep this answer N seconds (instead of ``cache_params.ttl``);
``s-maxage: N``      accept a stored answer only if it is at most N seconds old;
``namespace: "x"``   read and write under this namespace instead of the configured one;
``use-cache: true``  opt in when ``cache_params.mode`` is ``default_off``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.core.errors import InvalidRequestError

MAX_NAMESPACE_CHARS = 200


@dataclass(frozen=True, slots=True)
class CacheControls:
    read: bool = True
    write: bool = True
    ttl: float | None = None
    max_age: float | None = None
    namespace: str | None = None


DEFAULT_CONTROLS = CacheControls()


def parse_controls(body: dict[str, Any], *, default_off: bool) -> CacheControls | None:
    """The request's controls, or None when the cache is not used for it at all.

    Raises InvalidRequestError (a 400 naming ``cache``) for a malformed object.
    """
    raw = body.get("cache")
    if raw is None:
        return None if default_off else DEFAULT_CONTROLS
    if not isinstance(raw, dict):
        raise InvalidRequestError(
            '\'cache\' must be an object such as {"no-cache": true} or {"ttl": 60}',
            param="cache",
        )
    use = _flag(raw, "use-cache")
    if default_off and not use:
        return None
    read = not _flag(raw, "no-cache")
    write = not _flag(raw, "no-store")
    if not read and not write:
        return None
    return CacheControls(
        read=read,
        write=write,
        ttl=_seconds(raw, "ttl", allow_zero=False),
        max_age=_seconds(raw, "s-maxage", allow_zero=True),
        namespace=_namespace(raw),
    )


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequestError(f"'cache.{name}' must be true or false", param="cache")
    return value


def _seconds(raw: dict[str, Any], name: str, *, allow_zero: bool) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero) or value != value:
        bound = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        raise InvalidRequestError(f"'cache.{name}' must be {bound}", param="cache")
    return float(value)


def _namespace(raw: dict[str, Any]) -> str | None:
    value = raw.get("namespace")
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAMESPACE_CHARS:
        raise InvalidRequestError(
            f"'cache.namespace' must be a non-empty string of at most {MAX_NAMESPACE_CHARS} "
            "characters",
            param="cache",
        )
    return value
