"""A mock OpenAI upstream for the non-chat endpoints: images, audio, moderations, responses.

Real HTTP on loopback (``mock_server.ServerThread``) with OpenAI's wire shapes (the Responses
API streams its typed SSE events), plus Azure's deployment paths. Records every request.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .mock_server import ServerThread

PNG_1X1_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="  # noqa: E501
SPEECH_BYTES = b"ID3\x04\x00mock-mp3-audio" + bytes(range(64))


@dataclass
class MediaRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class MockMediaUpstream(ServerThread):
    kind = "openai-media"

    def __init__(self, api_key: str = "sk-media") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[MediaRequest] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._port or 0

    @property
    def last(self) -> MediaRequest:
        with self._lock:
            return self.requests[-1]

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        for prefix in ("/v1", "/openai/deployments/{deployment}"):
            app.router.add_post(f"{prefix}/images/generations", self._images)
            app.router.add_post(f"{prefix}/audio/speech", self._speech)
            app.router.add_post(f"{prefix}/audio/transcriptions", self._transcription)
        app.router.add_post("/v1/moderations", self._moderation)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/openai/responses", self._responses)
        return app

    def _authorized(self, request: web.Request) -> bool:
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {self.api_key}" or request.headers.get("api-key") == self.api_key

    async def _record(self, request: web.Request) -> MediaRequest | web.Response:
        record = MediaRequest(request.path, dict(request.query), dict(request.headers))
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    record.files[name] = (value.filename, value.file.read())
                else:
                    record.form[name] = str(value)
        else:
            record.json = await request.json()
        with self._lock:
            self.requests.append(record)
        if not self._authorized(request):
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if "/openai/" in request.path and "api-version" not in request.query:
            return web.json_response({"error": {"message": "api-version missing"}}, status=400)
        return record

    async def _images(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if isinstance(record, web.Response):
            return record
        n = int(record.json.get("n") or 1)
        data = [{"b64_json": PNG_1X1_B64, "revised_prompt": record.json["prompt"]}] * n
        return web.json_response(
            {
                "created": int(time.time()),
                "data": data,
                "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110},
            }
        )

    async def _speech(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if isinstance(record, web.Response):
            return record
        return web.Response(body=SPEECH_BYTES, content_type="audio/mpeg")

    async def _transcription(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if isinstance(record, web.Response):
            return record
        name, data = record.files.get("file", ("", b""))
        return web.json_response({"text": f"transcribed {name} ({len(data)} bytes)"})

    async def _moderation(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if isinstance(record, web.Response):
            return record
        flagged = "kill" in json.dumps(record.json.get("input"))
        return web.json_response(
            {
                "id": f"modr-{uuid.uuid4().hex[:12]}",
                "model": record.json.get("model"),
                "results": [
                    {
                        "flagged": flagged,
                        "categories": {"violence": flagged},
                        "category_scores": {"violence": 0.9 if flagged else 0.01},
                    }
                ],
            }
        )

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if isinstance(record, web.Response):
            return record
        prompt = record.json["input"]
        text = f"Responses reply to: {prompt if isinstance(prompt, str) else 'items'}"
        response = {
            "id": f"resp_{uuid.uuid4().hex[:16]}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": record.json["model"],
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": 5,
                "output_tokens": 7,
                "total_tokens": 12,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if not record.json.get("stream"):
            return web.json_response(response)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        in_progress = {**response, "status": "in_progress", "output": []}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "sequence_number": 0, "response": in_progress},
        ]
        for i, word in enumerate(text.split(" ")):
            events.append(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": i + 1,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word if i == 0 else " " + word,
                }
            )
        events.append(
            {"type": "response.completed", "sequence_number": len(events), "response": response}
        )
        for event in events:
            await stream.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await stream.write_eof()
        return stream
