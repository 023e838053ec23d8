"""A stream relayed unchanged while its usage is picked out, charged when it ends.

Only events that carry a usage object are parsed: a byte search finds them, so
the other chunks cost one ``in`` test. When the gateway asked the provider for a
usage chunk the client did not ask for, that chunk is removed before the client
sees it. With ``cost_of`` (``litellm_settings.include_cost_in_streaming_usage``) the
usage a client does see carries the call's cost so far as ``cost`` (USD): in every
OpenAI-dialect chunk with a usage object and in Anthropic's ``message_delta``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson

from bastion.core.dialect import Dialect
from bastion.core.usage import Usage
from bastion.dialects.usage import usage_from_anthropic, usage_from_openai
from bastion.providers.base import ProviderStream

_USAGE_MARKS = (b'"usage":{', b'"usage": {')
MAX_CARRY = 1 << 20  # past this, bytes without an event boundary are passed on as they are


class MeteredStream:
    def __init__(
        self,
        upstream: ProviderStream,
        dialect: Dialect,
        on_end: Callable[[Usage | None], None],
        *,
        strip_usage_chunk: bool = False,
        cost_of: Callable[[Usage], Decimal] | None = None,
    ) -> None:
        self._upstream = upstream
        self._dialect = dialect
        self._on_end = on_end
        self._strip = strip_usage_chunk
        self._cost_of = cost_of
        self._openai_usage: Any = None
        self._anthropic_usage: dict[str, Any] = {}
        self._ended = False
        self._carry = b""
        self.content_type = upstream.content_type

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Bytes go out whole events at a time: the incomplete end of a chunk waits for
        # the rest (a client can do nothing with half an event anyway), so a usage
        # event is always seen whole, however the upstream's bytes were split.
        async for piece in self._upstream:
            data = self._carry + piece if self._carry else piece
            end = _events_end(data)
            if end < len(data) and len(data) - end <= MAX_CARRY:
                self._carry = data[end:]
                data = data[:end]
            else:
                self._carry = b""
            if not data:
                continue
            if _USAGE_MARKS[0] in data or _USAGE_MARKS[1] in data:
                data = self._read_usage(data)
                if not data:
                    continue
            yield data
        if self._carry:
            rest = self._read_usage(self._carry)
            self._carry = b""
            if rest:
                yield rest

    async def aclose(self) -> None:
        try:
            await self._upstream.aclose()
        finally:
            if not self._ended:
                self._ended = True
                self._on_end(self._usage())

    def _usage(self) -> Usage | None:
        if self._dialect is Dialect.ANTHROPIC:
            return usage_from_anthropic(self._anthropic_usage) if self._anthropic_usage else None
        return usage_from_openai(self._openai_usage) if self._openai_usage else None

    def _read_usage(self, chunk: bytes) -> bytes:
        events = chunk.replace(b"\r\n", b"\n").split(b"\n\n")
        kept: list[bytes] = []
        for event in events:
            if _USAGE_MARKS[0] not in event and _USAGE_MARKS[1] not in event:
                kept.append(event)
                continue
            data = _data_of(event)
            if self._dialect is Dialect.ANTHROPIC:
                self._take_anthropic(data)
                if self._cost_of is not None and _is_message_delta(data):
                    usage = usage_from_anthropic(self._anthropic_usage)
                    event = _with_cost(event, data, self._cost_of(usage))
                kept.append(event)
            elif isinstance(data, dict) and isinstance(data.get("usage"), dict):
                self._openai_usage = data["usage"]
                if not (self._strip and not data.get("choices")):
                    if self._cost_of is not None:
                        cost = self._cost_of(usage_from_openai(data["usage"]))
                        event = _with_cost(event, data, cost)
                    kept.append(event)
            else:
                kept.append(event)
        return b"\n\n".join(kept)

    def _take_anthropic(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        usage = data.get("usage")
        if usage is None and isinstance(data.get("message"), dict):
            usage = data["message"].get("usage")
        if isinstance(usage, dict):
            self._anthropic_usage.update({k: v for k, v in usage.items() if v is not None})


def _is_message_delta(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("type") == "message_delta"
        and isinstance(data.get("usage"), dict)
    )


def _with_cost(event: bytes, data: dict[str, Any], amount: Decimal) -> bytes:
    """The event with ``usage.cost`` set; its other lines (``event:``, ``id:``) kept."""
    data["usage"]["cost"] = float(amount)
    lines = [line for line in event.split(b"\n") if not line.startswith(b"data:")]
    lines.append(b"data: " + orjson.dumps(data))
    return b"\n".join(line for line in lines if line)


def _data_of(event: bytes) -> Any:
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    try:
        return orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None


def _events_end(data: bytes) -> int:
    """Where the last complete SSE event in ``data`` ends (0 if none)."""
    if data.endswith(b"\n\n"):
        return len(data)
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
