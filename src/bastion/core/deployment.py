"""A deployment: one concrete upstream model a model group can route to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.providers.base import Provider


class Operation(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    IMAGE_GENERATION = "image_generation"
    AUDIO_SPEECH = "audio_speech"
    AUDIO_TRANSCRIPTION = "audio_transcription"
    MODERATION = "moderation"
    RESPONSES = "responses"
    RERANK = "rerank"


@dataclass(eq=False, slots=True)
class Deployment:
    id: str
    model_name: str
    provider_name: str
    upstream_model: str
    provider: Provider
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    weight: float | None = None
    mock_response: Any = None
    drop_params: bool | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    default_params: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    # Filled by the provider when the deployment is built: ready-made request parts.
    request_headers: dict[str, str] = field(default_factory=dict)
    request_head: bytes = b""
    missing_credential: str | None = None

    @property
    def mode(self) -> str:
        return str(self.model_info.get("mode") or "chat")

    @property
    def public_api_base(self) -> str:
        return self.api_base or ""
