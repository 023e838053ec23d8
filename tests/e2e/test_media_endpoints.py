"""Images, audio, moderations and the Responses API through the gateway to OpenAI and Azure."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.mocks.openai_media_upstream import PNG_1X1_B64, SPEECH_BYTES, MockMediaUpstream
from tests.support.gateway import GatewayProcess

MASTER = "sk-master-media"


@pytest.fixture(scope="module")
def media() -> Iterator[MockMediaUpstream]:
    with MockMediaUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(media: MockMediaUpstream) -> Iterator[GatewayProcess]:
    def openai_entry(name: str, mode: str) -> dict[str, object]:
        return {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/up-{name}",
                "api_base": f"{media.base_url}/v1",
                "api_key": media.api_key,
            },
            "model_info": {"mode": mode},
        }

    config = {
        "model_list": [
            openai_entry("img", "image_generation"),
            openai_entry("tts", "audio_speech"),
            openai_entry("stt", "audio_transcription"),
            openai_entry("omni-moderation-latest", "moderation"),
            openai_entry("resp", "responses"),
            {
                "model_name": "azure-img",
                "litellm_params": {
                    "model": "azure/dalle-deploy",
                    "api_base": media.base_url,
                    "api_key": media.api_key,
                    "api_version": "2025-04-01-preview",
                },
            },
            {
                "model_name": "azure-stt",
                "litellm_params": {
                    "model": "azure/whisper-deploy",
                    "api_base": media.base_url,
                    "api_key": media.api_key,
                    "api_version": "2025-04-01-preview",
                },
            },
            {"model_name": "groq-chat", "litellm_params": {"model": "groq/llama", "api_key": "k"}},
        ],
        "general_settings": {"master_key": MASTER},
    }
    with GatewayProcess(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER, max_retries=0)


def test_image_generation(client: openai.OpenAI, media: MockMediaUpstream) -> None:
    result = client.images.generate(model="img", prompt="a lighthouse", n=2, size="256x256")
    assert [d.b64_json for d in result.data or []] == [PNG_1X1_B64, PNG_1X1_B64]
    assert media.last.path == "/v1/images/generations"
    assert media.last.json["model"] == "up-img"
    assert media.last.headers["Authorization"] == f"Bearer {media.api_key}"


def test_speech_returns_the_audio_bytes(client: openai.OpenAI, media: MockMediaUpstream) -> None:
    audio = client.audio.speech.create(model="tts", voice="alloy", input="hello there")
    assert audio.content == SPEECH_BYTES
    assert audio.response.headers["content-type"].startswith("audio/mpeg")
    assert media.last.json == {"model": "up-tts", "voice": "alloy", "input": "hello there"}


def test_transcription_multipart_is_rewritten_for_the_deployment(
    client: openai.OpenAI, media: MockMediaUpstream
) -> None:
    audio = b"RIFF" + bytes(range(256)) * 8
    result = client.audio.transcriptions.create(
        model="stt", file=("clip.wav", audio, "audio/wav"), language="en"
    )
    assert result.text == f"transcribed clip.wav ({len(audio)} bytes)"
    assert media.last.form == {"model": "up-stt", "language": "en"}
    assert media.last.files["file"] == ("clip.wav", audio)


def test_moderation_with_and_without_a_model(
    client: openai.OpenAI, gateway: GatewayProcess, media: MockMediaUpstream
) -> None:
    result = client.moderations.create(model="omni-moderation-latest", input="I will kill it")
    assert result.results[0].flagged is True
    response = httpx.post(
        f"{gateway.url}/v1/moderations",
        json={"input": "a kind word"},
        headers={"Authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["flagged"] is False
    assert media.last.json["model"] == "up-omni-moderation-latest"


def test_responses_api_plain_and_streamed(client: openai.OpenAI, media: MockMediaUpstream) -> None:
    response = client.responses.create(model="resp", input="hi there")
    assert response.output_text == "Responses reply to: hi there"
    assert media.last.json["model"] == "up-resp"
    events = list(client.responses.create(model="resp", input="stream me", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Responses reply to: stream me"


def test_azure_deployments_for_images_and_transcriptions(
    client: openai.OpenAI, media: MockMediaUpstream
) -> None:
    client.images.generate(model="azure-img", prompt="x")
    assert media.last.path == "/openai/deployments/dalle-deploy/images/generations"
    assert media.last.query == {"api-version": "2025-04-01-preview"}
    assert media.last.headers["api-key"] == media.api_key
    client.audio.transcriptions.create(model="azure-stt", file=("a.mp3", b"ID3abc", "audio/mpeg"))
    assert media.last.path == "/openai/deployments/whisper-deploy/audio/transcriptions"


def test_bad_media_requests_are_clear_400s(gateway: GatewayProcess) -> None:
    auth = {"Authorization": f"Bearer {MASTER}"}
    missing_prompt = httpx.post(
        f"{gateway.url}/v1/images/generations", json={"model": "img"}, headers=auth
    )
    assert missing_prompt.status_code == 400
    assert missing_prompt.json()["error"]["param"] == "prompt"
    no_file = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        data={"model": "stt"},
        files={"other": ("x.txt", b"x")},
        headers=auth,
    )
    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"
    not_multipart = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions", json={"model": "stt"}, headers=auth
    )
    assert not_multipart.status_code == 400
    unsupported = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"model": "groq-chat", "prompt": "x"},
        headers=auth,
    )
    assert unsupported.status_code == 400
    assert "does not support image_generation" in unsupported.json()["error"]["message"]
