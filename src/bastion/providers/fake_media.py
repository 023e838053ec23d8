"""The fake provider's answers for images, audio, moderations and the Responses API."""

from __future__ import annotations

import io
import time
import uuid
import wave
from typing import Any

import orjson

from bastion.core.deployment import Operation
from bastion.providers.base import ProviderCall, ProviderResponse

# A 1x1 transparent PNG.
PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)
MEDIA_OPERATIONS = frozenset(
    {
        Operation.IMAGE_GENERATION,
        Operation.AUDIO_SPEECH,
        Operation.AUDIO_TRANSCRIPTION,
        Operation.MODERATION,
        Operation.RESPONSES,
    }
)


def media_response(call: ProviderCall, text: str) -> ProviderResponse:
    body = call.body
    op = call.operation
    if op is Operation.IMAGE_GENERATION:
        requested = body.get("n")
        n = requested if isinstance(requested, int) and 0 < requested <= 10 else 1
        data = [{"b64_json": PNG_1X1_B64, "revised_prompt": str(body.get("prompt", ""))}] * n
        return _json({"created": int(time.time()), "data": data})
    if op is Operation.AUDIO_SPEECH:
        return ProviderResponse(200, silent_wav(0.1), b"audio/wav")
    if op is Operation.AUDIO_TRANSCRIPTION:
        sizes = ", ".join(f"{f.filename} ({len(f.data)} bytes)" for f in call.files)
        return _json({"text": f"Fake transcription of {sizes}"})
    if op is Operation.MODERATION:
        return _json(
            {
                "id": f"modr-{uuid.uuid4().hex[:24]}",
                "model": str(body.get("model")),
                "results": [{"flagged": False, "categories": {}, "category_scores": {}}],
            }
        )
    return _json(_response_object(body, text))


def _response_object(body: dict[str, Any], text: str) -> dict[str, Any]:
    words = max(1, len(text) // 4)
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": str(body.get("model")),
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 1, "output_tokens": words, "total_tokens": 1 + words},
    }


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(rate * seconds))
    return buffer.getvalue()


def _json(payload: dict[str, Any]) -> ProviderResponse:
    return ProviderResponse(200, orjson.dumps(payload))
