"""multipart/form-data round trips, and the fake provider's media answers and health probes."""

from __future__ import annotations

import pytest

from bastion.app import build_runtime
from bastion.config.loader import load_config_mapping
from bastion.core.errors import InvalidRequestError
from bastion.dialects.multipart import FilePart, Form, encode_multipart, parse_multipart


def test_multipart_round_trip_keeps_binary_files_and_fields() -> None:
    payload = b"RIFF\x00\xff\r\n--not-a-boundary\r\n" + bytes(range(256))
    body, content_type = encode_multipart(
        Form(
            {"model": "whisper-1", "prompt": 'say "hi"'},
            [FilePart("file", "a b.wav", "audio/wav", payload)],
        )
    )
    form = parse_multipart(body, content_type)
    assert form.fields == {"model": "whisper-1", "prompt": 'say "hi"'}
    (part,) = form.files
    assert (part.field, part.filename, part.content_type, part.data) == (
        "file",
        "a b.wav",
        "audio/wav",
        payload,
    )


@pytest.mark.parametrize(
    "body, content_type",
    [(b"{}", "application/json"), (b"garbage", "multipart/form-data"), (b"", "")],
)
def test_non_multipart_bodies_are_400s(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_multipart(body, content_type)


async def test_fake_deployments_of_every_media_mode_are_healthy() -> None:
    modes = ["image_generation", "audio_speech", "audio_transcription", "moderation", "responses"]
    config = {
        "model_list": [
            {
                "model_name": mode,
                "litellm_params": {"model": f"fake/{mode}"},
                "model_info": {"mode": mode},
            }
            for mode in modes
        ]
    }
    report = await build_runtime(load_config_mapping(config)).health.check()
    assert sorted(e["mode"] for e in report.healthy) == sorted(modes)
    assert report.unhealthy == [] and report.skipped == []
