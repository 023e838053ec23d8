"""Plumbing for providers that translate OpenAI's dialect into their own wire format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson

from bastion.core.deployment import Deployment
from bastion.core.errors import UpstreamStatusError
from bastion.dialects.openai_params import GATEWAY_FIELDS
from bastion.dialects.translate_common import Target
from bastion.providers.base import ProviderCall, ProviderStream


def request_fields(deployment: Deployment, call: ProviderCall) -> dict[str, Any]:
    """The client's fields with the deployment's defaults under them, gateway fields removed."""
    out = {k: v for k, v in deployment.default_params.items() if k not in call.also_drop}
    for name, value in call.body.items():
        if name in GATEWAY_FIELDS or name in call.also_drop:
            continue
        out[name] = value
    return out


def target_of(deployment: Deployment, call: ProviderCall) -> Target:
    drop = deployment.drop_params if call.drop_params is None else call.drop_params
    label = f"deployment '{deployment.model_name}' ({deployment.provider_name})"
    return Target(label, drop_params=bool(drop))


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def now() -> int:
    return int(time.time())


def load_object(body: bytes, provider: str) -> dict[str, Any]:
    """An upstream's 2xx JSON body; anything else is the upstream's fault (502)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamStatusError(
            f"{provider} answered with a body that is not a JSON object",
            status=502,
            provider=provider,
        )
    return data


class StreamTranslator(Protocol):
    def feed(self, data: bytes) -> bytes:
        """Upstream bytes in (split anywhere), client-dialect SSE bytes out (maybe none)."""

    def finish(self) -> bytes:
        """The tail to send once the upstream stream has ended cleanly."""


class TranslatedStream:
    """An upstream stream in a provider's own format, relayed in OpenAI's dialect."""

    content_type = b"text/event-stream"

    def __init__(self, upstream: ProviderStream, translator: StreamTranslator) -> None:
        self._upstream = upstream
        self._translator = translator

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._upstream:
            out = self._translator.feed(chunk)
            if out:
                yield out
        tail = self._translator.finish()
        if tail:
            yield tail

    async def aclose(self) -> None:
        await self._upstream.aclose()
