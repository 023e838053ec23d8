"""The Bedrock mock itself: it accepts what botocore signs, refuses what AWS would refuse,
and streams frames botocore's own decoder reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from tests.mocks.bedrock_upstream import MockBedrockUpstream, aws_error, corrupt_frame

KEY, SECRET = "AKIDMOCKTEST0000001", "mock-secret/0123456789abcdef"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockBedrockUpstream]:
    with MockBedrockUpstream(credentials={KEY: SECRET}, api_keys=("bedrock-key",)) as up:
        yield up


@pytest.fixture(autouse=True)
def _fresh(mock: MockBedrockUpstream) -> None:
    mock.clear()
    mock.clear_faults()


def signed(
    mock: MockBedrockUpstream,
    path: str,
    body: Any,
    *,
    secret: str = SECRET,
    region: str = "us-east-1",
    token: str | None = None,
) -> tuple[str, bytes, dict[str, str]]:
    url = mock.base_url + path
    data = json.dumps(body).encode()
    request = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, secret, token), "bedrock", region).add_auth(request)
    return url, data, dict(request.headers)


def test_accepts_what_botocore_signs(mock: MockBedrockUpstream) -> None:
    url, data, headers = signed(mock, f"{PATH}/converse", CONVERSE)
    r = httpx.post(url, content=data, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["output"]["message"]["content"] == [{"text": "[bedrock] Mock reply to: hi"}]
    seen = mock.last_request
    assert seen.authenticated and seen.access_key == KEY and seen.model_id == SONNET


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"secret": "wrong"}, "InvalidSignatureException"),
        ({"region": "eu-west-1"}, "InvalidSignatureException"),
        ({"token": "unexpected"}, "UnrecognizedClientException"),
    ],
)
def test_refuses_bad_signatures(
    mock: MockBedrockUpstream, change: dict[str, Any], error_type: str
) -> None:
    url, data, headers = signed(mock, f"{PATH}/converse", CONVERSE, **change)
    r = httpx.post(url, content=data, headers=headers)
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"].startswith(error_type)
    assert set(r.json()) == {"message"}
    assert not mock.last_request.authenticated


def test_refuses_a_tampered_body_and_a_missing_signature(mock: MockBedrockUpstream) -> None:
    url, _, headers = signed(mock, f"{PATH}/converse", CONVERSE)
    tampered = json.dumps({"messages": [{"role": "user", "content": [{"text": "ho"}]}]})
    r = httpx.post(url, content=tampered, headers=headers)
    assert r.status_code == 403 and "does not match" in r.json()["message"]
    r = httpx.post(url, json=CONVERSE)
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException")
    r = httpx.post(url, json=CONVERSE, headers={"Authorization": "Bearer bedrock-key"})
    assert r.status_code == 200


def test_rejects_what_bedrock_rejects(mock: MockBedrockUpstream) -> None:
    bad = {"messages": [{"role": "assistant", "content": [{"text": "x"}]}], "model": "m"}
    url, data, headers = signed(mock, f"{PATH}/converse", bad)
    r = httpx.post(url, content=data, headers=headers)
    assert r.status_code == 400 and "extraneous key [model]" in r.json()["message"]
    url, data, headers = signed(mock, f"{PATH}/invoke", {"messages": [], "max_tokens": 1})
    r = httpx.post(url, content=data, headers=headers)
    assert r.status_code == 400 and "anthropic_version" in r.json()["message"]
    mock.enqueue(aws_error(503, "ServiceUnavailableException", "busy"))
    url, data, headers = signed(mock, f"{PATH}/converse", CONVERSE)
    r = httpx.post(url, content=data, headers=headers)
    assert r.status_code == 503
    assert r.headers["x-amzn-errortype"].startswith("ServiceUnavailableException")


def decode(raw: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return list(buffer)


def test_streams_are_event_stream_frames(mock: MockBedrockUpstream) -> None:
    url, data, headers = signed(mock, f"{PATH}/converse-stream", CONVERSE)
    r = httpx.post(url, content=data, headers=headers)
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = [m.headers[":event-type"] for m in decode(r.content)]
    assert events[0] == "messageStart" and events[-2:] == ["messageStop", "metadata"]
    invoke = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    url, data, headers = signed(mock, f"{PATH}/invoke-with-response-stream", invoke)
    messages = decode(httpx.post(url, content=data, headers=headers).content)
    inner = [json.loads(base64.b64decode(json.loads(m.payload)["bytes"])) for m in messages]
    assert inner[0]["type"] == "message_start" and inner[-1]["type"] == "message_stop"


def test_corrupt_frame_fault_breaks_the_crc(mock: MockBedrockUpstream) -> None:
    mock.enqueue(corrupt_frame(2))
    url, data, headers = signed(mock, f"{PATH}/converse-stream", CONVERSE)
    raw = httpx.post(url, content=data, headers=headers).content
    with pytest.raises(Exception, match=r"[Cc]hecksum"):
        decode(raw)
    assert mock.streams[0].outcome == "corrupt"
