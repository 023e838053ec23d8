"""``retry_policy`` and ``allowed_fails_policy``: counts per kind of failure. Pure.

LiteLLM's ``RetryPolicy`` and ``AllowedFailsPolicy`` fields name an exception class::

    retry_policy:
      BadRequestErrorRetries: 0
      AuthenticationErrorRetries: 0
      TimeoutErrorRetries: 3
      RateLimitErrorRetries: 3
      ContentPolicyViolationErrorRetries: 1
      InternalServerErrorRetries: 2
      DefaultRetries: 2            # any kind not named above

A kind is looked up under its own name, then its parents' (LiteLLM's exception
tree: a context-window overflow is a BadRequestError; Bastion also lets a 502 or 503
take ``InternalServerError…`` when its own field is not set), then ``Default…``.
A kind the policy does not cover keeps the router's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.routing.error_kinds import ErrorKind

# The exception names a kind answers to, most specific first.
_NAMES: dict[ErrorKind, tuple[str, ...]] = {
    ErrorKind.CONTEXT_WINDOW: ("BadRequestError",),
    ErrorKind.CONTENT_POLICY: ("ContentPolicyViolationError", "BadRequestError"),
    ErrorKind.BAD_REQUEST: ("BadRequestError",),
    ErrorKind.AUTHENTICATION: ("AuthenticationError",),
    ErrorKind.NOT_FOUND: ("NotFoundError",),
    ErrorKind.TIMEOUT: ("TimeoutError",),
    ErrorKind.RATE_LIMIT: ("RateLimitError",),
    ErrorKind.BAD_GATEWAY: ("BadGatewayError", "InternalServerError"),
    ErrorKind.SERVICE_UNAVAILABLE: ("ServiceUnavailableError", "InternalServerError"),
    ErrorKind.INTERNAL: ("InternalServerError",),
}

RETRIES = "Retries"
ALLOWED_FAILS = "AllowedFails"
_DEFAULT = {RETRIES: "DefaultRetries", ALLOWED_FAILS: None}


def policy_field_names(suffix: str) -> frozenset[str]:
    """The keys a policy may have, e.g. ``TimeoutErrorRetries``."""
    names = {f"{name}{suffix}" for names in _NAMES.values() for name in names}
    default = _DEFAULT[suffix]
    if default:
        names.add(default)
    return frozenset(names)


class KindCounts:
    """Counts per ErrorKind read once from a LiteLLM-style policy mapping."""

    __slots__ = ("_counts",)

    def __init__(self, policy: Mapping[str, int | None] | None, suffix: str) -> None:
        self._counts: dict[ErrorKind, int] = {}
        policy = policy or {}
        default_key = _DEFAULT[suffix]
        default = policy.get(default_key) if default_key else None
        for kind, names in _NAMES.items():
            found = next(
                (policy[f"{n}{suffix}"] for n in names if policy.get(f"{n}{suffix}") is not None),
                default,
            )
            if found is not None:
                self._counts[kind] = int(found)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def get(self, kind: ErrorKind) -> int | None:
        """The count for this kind, or None when the policy does not say."""
        return self._counts.get(kind)


def unknown_policy_keys(policy: Mapping[str, object] | None, suffix: str) -> list[str]:
    names = policy_field_names(suffix)
    return sorted(k for k in (policy or {}) if k not in names)
