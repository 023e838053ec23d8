"""Deployment health: one small real call per deployment, by its ``model_info.mode``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bastion.core.deployment import Deployment, Operation
from bastion.core.errors import BastionError
from bastion.dialects.multipart import FilePart
from bastion.providers.base import Provider, ProviderCall
from bastion.providers.fake_media import silent_wav

logger = logging.getLogger("bastion.health")

_PROBES: dict[str, tuple[Operation, dict[str, Any]]] = {
    "chat": (Operation.CHAT, {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}),
    "completion": (Operation.COMPLETION, {"prompt": "ping", "max_tokens": 1}),
    "embedding": (Operation.EMBEDDING, {"input": ["ping"]}),
    "rerank": (Operation.RERANK, {"query": "ping", "documents": ["ping"], "top_n": 1}),
    "image_generation": (Operation.IMAGE_GENERATION, {"prompt": "a dot", "n": 1}),
    "audio_speech": (Operation.AUDIO_SPEECH, {"input": "ping", "voice": "alloy"}),
    "audio_transcription": (Operation.AUDIO_TRANSCRIPTION, {}),
    "moderation": (Operation.MODERATION, {"input": "ping"}),
    "responses": (Operation.RESPONSES, {"input": "ping", "max_output_tokens": 16}),
}
_SECRET_WORDS = ("key", "secret", "token", "password", "credential")


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """litellm_params without anything secret, for health and model-info answers."""
    return {k: v for k, v in params.items() if not any(word in k.lower() for word in _SECRET_WORDS)}


@dataclass
class HealthReport:
    healthy: list[dict[str, Any]] = field(default_factory=list)
    unhealthy: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    checked_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "healthy_endpoints": self.healthy,
            "unhealthy_endpoints": self.unhealthy,
            "healthy_count": len(self.healthy),
            "unhealthy_count": len(self.unhealthy),
            "skipped_endpoints": self.skipped,
            "checked_at": self.checked_at,
        }


class HealthChecker:
    def __init__(
        self,
        deployments: list[Deployment],
        fake_provider: Provider,
        *,
        timeout: float = 60.0,
        background_interval: float | None = None,
    ) -> None:
        self.deployments = deployments
        self._fake = fake_provider
        self.timeout = timeout
        self.background_interval = background_interval
        self.latest: HealthReport | None = None
        self._task: asyncio.Task[None] | None = None

    def start_background(self) -> None:
        if self.background_interval and self._task is None:
            self._task = asyncio.create_task(self._loop(self.background_interval))

    def reconfigure(
        self,
        deployments: list[Deployment],
        *,
        timeout: float,
        background_interval: float | None,
    ) -> None:
        """Check these deployments with these settings from now on (a config reload).

        A running background loop starts over, so its next report covers the new
        deployments; the last report is served until then.
        """
        self.deployments = deployments
        self.timeout = timeout
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if background_interval is None:
            self.latest = None
        self.background_interval = background_interval
        self.start_background()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def report(self, model: str | None = None) -> HealthReport:
        """The background result when background checks run, else a fresh check."""
        if self.latest is not None and model is None:
            return self.latest
        return await self.check(model)

    async def check(self, model: str | None = None) -> HealthReport:
        targets = [
            d
            for d in self.deployments
            if (model is None or model in (d.model_name, d.params.get("model")))
            and ("*" not in d.model_name or d.model_info.get("health_check_model"))
        ]
        report = HealthReport(checked_at=time.time())
        results = await asyncio.gather(*(self._check_one(d) for d in targets))
        for deployment, (state, error) in zip(targets, results, strict=True):
            entry = _describe(deployment)
            if state == "healthy":
                report.healthy.append(entry)
            elif state == "skipped":
                report.skipped.append({**entry, "reason": error})
            else:
                report.unhealthy.append({**entry, "error": error})
        return report

    async def _check_one(self, deployment: Deployment) -> tuple[str, str]:
        if deployment.model_info.get("disable_background_health_check"):
            return "skipped", "disable_background_health_check is set"
        probe = _PROBES.get(deployment.mode)
        if probe is None:
            return "skipped", f"no health check for mode '{deployment.mode}' in this version"
        operation, template = probe
        if deployment.missing_credential and deployment.mock_response is None:
            return "unhealthy", deployment.missing_credential
        check_model = deployment.model_info.get("health_check_model")
        if check_model:
            # Probe this model instead (how a wildcard deployment is checked).
            upstream = str(check_model).removeprefix(f"{deployment.provider_name}/")
            deployment = dataclasses.replace(deployment, upstream_model=upstream)
        body: dict[str, Any] = {"model": deployment.model_name, **template}
        files: list[FilePart] = []
        if operation is Operation.AUDIO_SPEECH:
            body["voice"] = deployment.model_info.get("health_check_voice") or "alloy"
        elif operation is Operation.AUDIO_TRANSCRIPTION:
            files = [FilePart("file", "ping.wav", "audio/wav", silent_wav(0.5))]
        call = ProviderCall(operation, body, files=files)
        provider = self._fake if deployment.mock_response is not None else deployment.provider
        try:
            await asyncio.wait_for(provider.send(deployment, call), self.timeout)
        except TimeoutError:
            return "unhealthy", f"no answer within {self.timeout:g}s"
        except BastionError as exc:
            return "unhealthy", exc.message
        except Exception as exc:  # a health check must report, never crash
            logger.exception("health check of %s failed unexpectedly", deployment.model_name)
            return "unhealthy", f"{type(exc).__name__}: {exc}"
        return "healthy", ""

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                self.latest = await self.check()
                if self.latest.unhealthy:
                    logger.warning(
                        "background health check: %d of %d deployments unhealthy",
                        len(self.latest.unhealthy),
                        len(self.latest.unhealthy) + len(self.latest.healthy),
                    )
            except Exception:
                logger.exception("background health check failed")
            await asyncio.sleep(interval)


def _describe(deployment: Deployment) -> dict[str, Any]:
    return {
        "model": deployment.params.get("model"),
        "model_name": deployment.model_name,
        "model_id": deployment.id,
        "api_base": deployment.api_base,
        "mode": deployment.mode,
        "custom_llm_provider": deployment.provider_name,
    }
