"""The error tree. Every failure a client can see is one of these.

    BastionError                      message, status, type, code, param, headers
    ├── ClientError                   the caller's request is at fault (4xx)
    │   ├── InvalidRequestError       400 malformed body, bad field
    │   ├── AuthenticationError       401 missing or wrong key
    │   ├── PermissionDeniedError     403 key may not do this
    │   ├── NotFoundError             404 unknown model or route
    │   ├── PayloadTooLargeError      413 body over max_request_size_mb
    │   └── RateLimitError            429 a limit or every deployment cooling down
    └── UpstreamError                 the provider failed; status mirrors the provider's
        ├── UpstreamStatusError       the provider answered with a non-2xx status
        ├── UpstreamTimeoutError      408 no answer within timeout / stream_timeout
        └── UpstreamConnectionError   502 could not connect, or the connection broke

ConfigError is separate: it never reaches a client, it stops startup.

Errors are rendered to a wire shape in exactly one place per client dialect
(see ``bastion.interfaces.http.errors``).
"""

from __future__ import annotations

from collections.abc import Mapping


class BastionError(Exception):
    status: int = 500
    type: str = "internal_server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})


class ClientError(BastionError):
    status = 400
    type = "invalid_request_error"


class InvalidRequestError(ClientError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(ClientError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(ClientError):
    status = 403
    type = "permission_error"


class NotFoundError(ClientError):
    status = 404
    type = "not_found_error"


class PayloadTooLargeError(ClientError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(ClientError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(BastionError):
    """A provider failed. ``retryable`` and ``fallback_ok`` drive the router."""

    status = 502
    type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str = "",
        retry_after: float | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param, headers=headers)
        if status is not None:
            self.status = status
        if error_type is not None:
            self.type = error_type
        self.provider = provider
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", _format_seconds(retry_after))

    @property
    def retryable(self) -> bool:
        """Worth another attempt on this or another deployment of the group."""
        return self.status in (408, 409, 429) or self.status >= 500

    @property
    def fallback_ok(self) -> bool:
        """Worth trying a fallback group: anything but a request the provider rejected."""
        return self.retryable or self.status in (401, 403, 404)


class UpstreamStatusError(UpstreamError):
    pass


class UpstreamTimeoutError(UpstreamError):
    status = 408
    type = "timeout"
    code = "timeout"


class UpstreamConnectionError(UpstreamError):
    status = 502
    type = "api_connection_error"
    code = "upstream_connection_error"


class ConfigError(Exception):
    """An invalid configuration. ``problems`` lists every finding, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


class BudgetExceededError(ClientError):
    """A key, team, user, member, end user or organization is over its max_budget.

    LiteLLM 1.109 answers 422 (older versions 400): ``status`` is set from
    ``general_settings.budget_exceeded_status_code`` when configured.
    """

    status = 422
    type = "budget_exceeded"
    code = "budget_exceeded"
