"""Model listing and health endpoints."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from bastion import __version__
from bastion.cache.service import ResponseCache
from bastion.core.errors import BastionError
from bastion.interfaces.http.asgi import Receive, Scope, Send, send_json
from bastion.interfaces.http.llm import send_error
from bastion.limits.limiter import RateLimiter
from bastion.policy.auth import Authenticator, extract_key
from bastion.routing.model_table import ModelTable
from bastion.services.health import HealthChecker, public_params
from bastion.services.shared_state import SharedState
from bastion.services.tenancy import Tenancy


class InfoEndpoints:
    def __init__(
        self,
        table: ModelTable,
        auth: Authenticator,
        health: HealthChecker,
        tenancy: Tenancy | None = None,
        *,
        limits: RateLimiter | None = None,
        cache: ResponseCache | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self.table = table
        self.auth = auth
        self.checker = health
        self.tenancy = tenancy
        self.limits = limits
        self.cache = cache
        self.shared = shared
        self.created = int(time.time())

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._authorized(scope, send):
            return
        data = [
            {"id": name, "object": "model", "created": self.created, "owned_by": "openai"}
            for name in self.table.public_names()
        ]
        await send_json(send, 200, {"object": "list", "data": data})

    async def model_info(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._authorized(scope, send):
            return
        wanted = _query(scope).get("litellm_model_id")
        data = []
        for deployment in self.table.all_deployments:
            if wanted and deployment.id != wanted:
                continue
            info: dict[str, Any] = {"id": deployment.id, "mode": deployment.mode, "db_model": False}
            info.update(deployment.model_info)
            data.append(
                {
                    "model_name": deployment.model_name,
                    "litellm_params": public_params(deployment.params),
                    "model_info": info,
                }
            )
        await send_json(send, 200, {"data": data})

    async def root(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /``: what this is and where to go (load balancers and clients probe it)."""
        await send_json(
            send,
            200,
            {
                "name": "Bastion",
                "version": __version__,
                "openai_base_url": "/v1",
                "anthropic_base_url": "/",
                "health": {"liveness": "/health/liveliness", "readiness": "/health/readiness"},
            },
        )

    async def liveliness(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, "I'm alive!")

    async def readiness(self, scope: Scope, receive: Receive, send: Send) -> None:
        db = "Not connected"
        if self.tenancy is not None:
            db = "connected" if await self.tenancy.database_reachable() else "disconnected"
        await send_json(
            send,
            503 if db == "disconnected" else 200,
            {
                "status": "unhealthy" if db == "disconnected" else "healthy",
                "db": db,
                "cache": self.cache.type if self.cache is not None else None,
                "litellm_version": __version__,
                "bastion_version": __version__,
                "success_callbacks": [],
                **({"rate_limits": self.limits.status()} if self.limits is not None else {}),
                **({"cache_details": self.cache.status()} if self.cache is not None else {}),
                **({"shared_state": self.shared.status()} if self.shared is not None else {}),
            },
        )

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._authorized(scope, send):
            return
        report = await self.checker.report(_query(scope).get("model"))
        await send_json(send, 200, report.as_json())

    async def _authorized(self, scope: Scope, send: Send) -> bool:
        try:
            self.auth.authenticate(extract_key(scope["headers"]))
        except BastionError as error:
            await send_error(send, error, "")
            return False
        return True


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    if not raw:
        return {}
    return {k: v[0] for k, v in parse_qs(raw.decode("latin-1")).items() if v}
