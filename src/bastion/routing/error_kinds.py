"""Which kind of failure an upstream error is, in LiteLLM's exception vocabulary. Pure.

The kind picks the retry count (``retry_policy``), the failures a deployment may have
before it cools down (``allowed_fails_policy``) and, for two kinds of 400, a dedicated
fallback list:

    ErrorKind
    ├── CONTEXT_WINDOW   400: the prompt does not fit the model   → context_window_fallbacks
    ├── CONTENT_POLICY   400: a safety/content filter refused it  → content_policy_fallbacks
    ├── BAD_REQUEST      any other 4xx the provider rejected (400, 413, 422…)
    ├── AUTHENTICATION   401, 403
    ├── NOT_FOUND        404
    ├── TIMEOUT          408, Bastion's own timeouts
    ├── RATE_LIMIT       429
    ├── BAD_GATEWAY      502, connection refused or broken
    ├── SERVICE_UNAVAILABLE  503
    └── INTERNAL         other 5xx, 409

Providers word the two special 400s differently; the markers below are the ones
OpenAI, Azure OpenAI, Anthropic, Bedrock, Gemini and common self-hosted servers use.
"""

from __future__ import annotations

from enum import StrEnum

from bastion.core.errors import UpstreamError, UpstreamTimeoutError


class ErrorKind(StrEnum):
    CONTEXT_WINDOW = "ContextWindowExceededError"
    CONTENT_POLICY = "ContentPolicyViolationError"
    BAD_REQUEST = "BadRequestError"
    AUTHENTICATION = "AuthenticationError"
    NOT_FOUND = "NotFoundError"
    TIMEOUT = "Timeout"
    RATE_LIMIT = "RateLimitError"
    BAD_GATEWAY = "BadGatewayError"
    SERVICE_UNAVAILABLE = "ServiceUnavailableError"
    INTERNAL = "InternalServerError"


_CONTEXT_CODES = frozenset({"context_length_exceeded"})
_CONTEXT_MARKERS = (
    "maximum context length",  # OpenAI, Azure, vLLM: "This model's maximum context length is"
    "context_length_exceeded",
    "prompt is too long",  # Anthropic: "prompt is too long: 208310 tokens > 200000 maximum"
    "exceed context limit",  # Anthropic: "input length and `max_tokens` exceed context limit"
    "model's maximum context limit",
    "input is too long",  # Bedrock: "Input is too long for requested model."
    "too many input tokens",
    "prompt has too many tokens",
    "exceeds the maximum number of tokens allowed",  # Gemini
    "exceeds the available context size",  # llama.cpp
    "context window",  # "exceeds the context window", "reduce the length… context window"
)
_CONTENT_CODES = frozenset(
    {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}
)
_CONTENT_MARKERS = (
    "content_policy_violation",
    "content management policy",  # Azure: "…triggering Azure OpenAI's content management policy"
    "content filtering policy",  # Anthropic: "Output blocked by content filtering policy"
    "content_filter",
    "rejected as a result of our safety system",  # OpenAI images
    "rejected as a result of the safety system",
    "failed as a result of our safety system",
    "responsibleaipolicyviolation",
)


def classify(error: UpstreamError) -> ErrorKind:
    """The kind of an upstream failure (see the module docstring)."""
    status = error.status
    if isinstance(error, UpstreamTimeoutError) or status == 408:
        return ErrorKind.TIMEOUT
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (401, 403):
        return ErrorKind.AUTHENTICATION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 502:
        return ErrorKind.BAD_GATEWAY
    if status == 503:
        return ErrorKind.SERVICE_UNAVAILABLE
    if status >= 500 or status == 409:
        return ErrorKind.INTERNAL
    if 400 <= status < 500:
        return classify_rejection(error.code, error.message)
    return ErrorKind.INTERNAL


def classify_rejection(code: str | None, message: str) -> ErrorKind:
    """A rejected request (4xx): a context-window overflow, a content-policy refusal or
    another bad request, from the provider's error ``code`` and message."""
    if code:
        lowered_code = code.lower()
        if lowered_code in _CONTEXT_CODES:
            return ErrorKind.CONTEXT_WINDOW
        if lowered_code in _CONTENT_CODES:
            return ErrorKind.CONTENT_POLICY
    text = message.lower()
    if any(marker in text for marker in _CONTENT_MARKERS):
        return ErrorKind.CONTENT_POLICY
    if any(marker in text for marker in _CONTEXT_MARKERS):
        return ErrorKind.CONTEXT_WINDOW
    return ErrorKind.BAD_REQUEST
