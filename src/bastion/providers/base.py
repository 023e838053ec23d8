"""What a provider adapter is: one small Protocol, implemented once per API family."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.multipart import FilePart


@dataclass(slots=True)
class ProviderCall:
    """One call's input. The optional fields are per-request overrides of the deployment's."""

    operation: Operation
    body: dict[str, Any]
    stream: bool = False
    dialect: Dialect = Dialect.OPENAI
    # The body as the client sent it, for providers that pass it through untouched.
    raw: bytes | None = None
    # Client headers a provider may forward (anthropic-version, anthropic-beta…).
    client_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # The uploaded files of a multipart request (audio transcriptions); its other
    # fields are in ``body``.
    files: list[FilePart] = dataclasses.field(default_factory=list)
    timeout: float | None = None
    drop_params: bool | None = None
    also_drop: frozenset[str] = frozenset()


@dataclass(slots=True)
class ProviderResponse:
    status: int
    body: bytes
    content_type: bytes = b"application/json"


class ProviderStream(Protocol):
    """An open upstream stream. Iterating yields bytes in the client's dialect (SSE)."""

    content_type: bytes

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    name: str
    # Client dialects this provider takes as they are (the body is not translated);
    # every provider takes OpenAI's.
    dialects: frozenset[Dialect]

    def configure(self, deployment: Deployment) -> None:
        """Fill defaults (base URL, key from the environment) and precompute headers.

        Sets ``deployment.missing_credential`` when the deployment cannot be called
        yet; raises ValueError for a deployment that can never work.
        """

    def supports(self, operation: Operation) -> bool: ...

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        """Non-streaming call. Raises UpstreamError on failure."""

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        """Streaming call. Raises UpstreamError if the stream cannot start."""
