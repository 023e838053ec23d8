"""The ASGI application: an explicit route table over plain ASGI callables.

The data plane is served without a web framework on purpose: the request path
must add well under a millisecond, and per-request framework objects
(Request, Response, middleware stacks) cost more than the routing itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from bastion.core.deployment import Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError, NotFoundError
from bastion.core.heap import settle_heap
from bastion.interfaces.http.asgi import Receive, Scope, Send
from bastion.interfaces.http.info import InfoEndpoints
from bastion.interfaces.http.llm import LLMEndpoints, send_error

logger = logging.getLogger("bastion.http")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

_AZURE_PREFIX = "/openai/deployments/"
_AZURE_OPERATIONS = {
    "chat/completions": Operation.CHAT,
    "completions": Operation.COMPLETION,
    "embeddings": Operation.EMBEDDING,
    "images/generations": Operation.IMAGE_GENERATION,
    "audio/speech": Operation.AUDIO_SPEECH,
    "audio/transcriptions": Operation.AUDIO_TRANSCRIPTION,
}


class LazyApp:
    """An ASGI app built on its first request (the control plane: not needed to start)."""

    def __init__(self, build: Callable[[], Handler]) -> None:
        self._build = build
        self._app: Handler | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


class LifespanHooks(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class BastionApp:
    def __init__(
        self,
        llm: LLMEndpoints,
        info: InfoEndpoints,
        hooks: LifespanHooks,
        count_tokens: Handler | None = None,
        control_plane: Handler | None = None,
    ) -> None:
        # Paths the data plane does not serve (management API, UI) go to control_plane.
        self.control_plane = control_plane
        self.llm = llm
        self.info = info
        self.hooks = hooks
        self.routes: dict[tuple[str, str], Handler] = {}
        for prefix in ("", "/v1"):
            for path, operation in (
                ("/chat/completions", Operation.CHAT),
                ("/completions", Operation.COMPLETION),
                ("/embeddings", Operation.EMBEDDING),
                ("/images/generations", Operation.IMAGE_GENERATION),
                ("/audio/speech", Operation.AUDIO_SPEECH),
                ("/audio/transcriptions", Operation.AUDIO_TRANSCRIPTION),
                ("/moderations", Operation.MODERATION),
                ("/responses", Operation.RESPONSES),
                ("/rerank", Operation.RERANK),
            ):
                self.routes[("POST", prefix + path)] = self._llm_handler(operation)
            self.routes[("GET", prefix + "/models")] = info.models
            self.routes[("GET", prefix + "/model/info")] = info.model_info
        messages = self._llm_handler(Operation.CHAT, Dialect.ANTHROPIC)
        self.routes[("POST", "/v1/messages")] = messages
        self.routes[("POST", "/messages")] = messages
        if count_tokens is not None:
            self.routes[("POST", "/v1/messages/count_tokens")] = count_tokens
            self.routes[("POST", "/messages/count_tokens")] = count_tokens
        self.routes[("GET", "/")] = info.root
        self.routes[("GET", "/health/liveliness")] = info.liveliness
        self.routes[("GET", "/health/liveness")] = info.liveliness
        self.routes[("GET", "/health/readiness")] = info.readiness
        self.routes[("GET", "/health")] = info.health
        self._paths = {path for _, path in self.routes}

    def _llm_handler(self, operation: Operation, dialect: Dialect = Dialect.OPENAI) -> Handler:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            await self.llm.handle(scope, receive, send, operation, dialect=dialect)

        return handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        handler = self.routes.get((method, path))
        if handler is None and len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
            handler = self.routes.get((method, path))
        if handler is None and method == "HEAD":
            handler = self.routes.get(("GET", path))
        if handler is not None:
            await handler(scope, receive, send)
            return
        if method == "POST" and path.startswith(_AZURE_PREFIX):
            model, _, rest = path[len(_AZURE_PREFIX) :].partition("/")
            operation = _AZURE_OPERATIONS.get(rest)
            if model and operation is not None:
                await self.llm.handle(scope, receive, send, operation, path_model=model)
                return
        if path in self._paths:
            await send_error(send, _method_not_allowed(method, path), "")
            return
        if self.control_plane is not None:
            await self.control_plane(scope, receive, send)
            return
        await send_error(send, NotFoundError(f"no endpoint {method} {path} on this gateway"), "")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.hooks.start()
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                settle_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.hooks.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def _method_not_allowed(method: str, path: str) -> InvalidRequestError:
    error = InvalidRequestError(f"{method} is not allowed on {path}")
    error.status = 405
    return error
