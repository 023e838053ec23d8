"""API-key extraction, master-key authentication and OpenAI request validation."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.deployment import Operation
from bastion.core.errors import AuthenticationError, InvalidRequestError
from bastion.dialects.openai_validate import validate_request
from bastion.policy.auth import (
    KEY_HEADERS,
    MASTER,
    OPEN,
    Authenticator,
    PrincipalKind,
    extract_key,
)

Headers = list[tuple[bytes, bytes]]

# --- extract_key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer sk-abc")], "sk-abc"),
        ([(b"authorization", b"bearer sk-abc")], "sk-abc"),
        ([(b"authorization", b"BEARER   sk-abc  ")], "sk-abc"),
        ([(b"authorization", b"sk-abc")], "sk-abc"),
        ([(b"authorization", b"  sk-abc ")], "sk-abc"),
        ([(b"x-api-key", b"sk-anthropic-style")], "sk-anthropic-style"),
        ([(b"api-key", b"azure-style-key")], "azure-style-key"),
        ([(b"x-goog-api-key", b"gemini-style-key")], "gemini-style-key"),
        ([(b"x-litellm-api-key", b"Bearer sk-litellm")], "sk-litellm"),
        ([(b"x-api-key", b"Bearer sk-prefixed")], "sk-prefixed"),
    ],
)
def test_extract_key_header_forms(headers: Headers, expected: str) -> None:
    noise = [(b"content-type", b"application/json"), (b"user-agent", b"openai-python")]
    assert extract_key(noise + headers + noise) == expected


def test_extract_key_none_when_absent_or_empty() -> None:
    assert extract_key([]) is None
    assert extract_key([(b"content-type", b"application/json")]) is None
    assert extract_key([(b"authorization", b"")]) is None
    assert extract_key([(b"authorization", b"Bearer ")]) is None
    # HTTP servers strip trailing whitespace: an empty bearer token arrives as "Bearer".
    assert extract_key([(b"authorization", b"Bearer")]) is None
    assert extract_key([(b"authorization", b"   ")]) is None


@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        (KEY_HEADERS[i], KEY_HEADERS[j])
        for i in range(len(KEY_HEADERS))
        for j in range(i + 1, len(KEY_HEADERS))
    ],
)
def test_extract_key_precedence_ignores_header_order(higher: bytes, lower: bytes) -> None:
    expected = "key-from-" + higher.decode()
    both_orders: list[Headers] = [
        [(higher, expected.encode()), (lower, b"other")],
        [(lower, b"other"), (higher, expected.encode())],
    ]
    for headers in both_orders:
        assert extract_key(headers) == expected


def test_key_header_order_is_litellms() -> None:
    assert KEY_HEADERS == (
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"x-litellm-api-key",
    )


def test_empty_higher_header_falls_through_to_the_next() -> None:
    for empty in (b"", b"Bearer ", b"Bearer", b"bearer"):
        headers = [(b"authorization", empty), (b"x-api-key", b"sk-real")]
        assert extract_key(headers) == "sk-real"
    # A key that merely starts with the letters "Bearer" is still a key.
    assert extract_key([(b"authorization", b"Bearerish-key")]) == "Bearerish-key"


def test_first_occurrence_of_a_repeated_header_wins() -> None:
    headers = [(b"x-api-key", b"first"), (b"x-api-key", b"second")]
    assert extract_key(headers) == "first"


# --- Authenticator ------------------------------------------------------------------------


@pytest.mark.parametrize("master", [None, ""])
def test_open_mode_lets_everyone_in(master: str | None) -> None:
    auth = Authenticator(master)
    assert auth.open_access
    assert auth.authenticate(None) is OPEN
    assert auth.authenticate("anything") is OPEN
    assert OPEN.kind is PrincipalKind.OPEN


def test_master_key_authenticates_as_master() -> None:
    auth = Authenticator("sk-master-1234")
    assert not auth.open_access
    principal = auth.authenticate("sk-master-1234")
    assert principal is MASTER
    assert principal.kind is PrincipalKind.MASTER
    assert principal.is_admin


@pytest.mark.parametrize(
    "wrong", ["sk-wrong", "sk-master-123", "sk-master-12345", "SK-MASTER-1234", "", "sk-ü"]
)
def test_wrong_key_is_401_without_echoing_keys(wrong: str) -> None:
    auth = Authenticator("sk-master-1234")
    with pytest.raises(AuthenticationError) as info:
        auth.authenticate(wrong)
    error = info.value
    assert error.status == 401
    assert error.type == "authentication_error"
    assert error.code == "invalid_api_key"
    assert "sk-master-1234" not in error.message
    if wrong:
        assert wrong not in error.message


def test_missing_key_is_401_saying_how_to_send_it() -> None:
    auth = Authenticator("sk-master-1234")
    with pytest.raises(AuthenticationError) as info:
        auth.authenticate(None)
    assert info.value.status == 401
    assert "Authorization: Bearer" in info.value.message
    assert "x-api-key" in info.value.message
    assert "sk-master-1234" not in info.value.message


def test_extract_then_authenticate_end_to_end() -> None:
    auth = Authenticator("sk-master-1234")
    for name in KEY_HEADERS:
        assert auth.authenticate(extract_key([(name, b"sk-master-1234")])) is MASTER


# --- validate_request ---------------------------------------------------------------------

CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def invalid(operation: Operation, body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        validate_request(operation, body)
    error = info.value
    assert error.status == 400
    assert error.type == "invalid_request_error"
    return error


def test_valid_bodies_pass_and_report_streaming() -> None:
    assert validate_request(Operation.CHAT, CHAT) is False
    assert validate_request(Operation.CHAT, {**CHAT, "stream": True}) is True
    assert validate_request(Operation.CHAT, {**CHAT, "stream": False, "n": 2}) is False
    assert validate_request(Operation.CHAT, {**CHAT, "stream": None}) is False
    assert (
        validate_request(
            Operation.CHAT, {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        )
        is True
    )
    assert validate_request(Operation.COMPLETION, {"model": "m", "prompt": "p"}) is False
    assert (
        validate_request(Operation.COMPLETION, {"model": "m", "prompt": ["a", "b"], "stream": True})
        is True
    )
    assert validate_request(Operation.EMBEDDING, {"model": "e", "input": "text"}) is False
    assert validate_request(Operation.EMBEDDING, {"model": "e", "input": [[1, 2, 3]]}) is False
    # Messages with tool and developer roles and array content are fine.
    assert (
        validate_request(
            Operation.CHAT,
            {
                "model": "m",
                "messages": [
                    {"role": "developer", "content": "be nice"},
                    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "42"},
                ],
            },
        )
        is False
    )


@pytest.mark.parametrize("model", [None, "", 42, ["gpt-4o"], {"name": "gpt-4o"}])
def test_missing_or_non_string_model(model: Any) -> None:
    body = {k: v for k, v in CHAT.items() if k != "model"}
    if model is not None:
        body["model"] = model
    error = invalid(Operation.CHAT, body)
    assert error.param == "model"
    assert "'model' is required" in error.message


@pytest.mark.parametrize(
    "model", ["gpt-4o\n", "gpt\x00-4o", "gpt-4o\r\nX-Injected: 1", "gpt\x1b[31m", "x" * 513]
)
def test_model_with_control_chars_or_too_long(model: str) -> None:
    error = invalid(Operation.CHAT, {**CHAT, "model": model})
    assert error.param == "model"
    assert "printable" in error.message


@pytest.mark.parametrize("operation", [o for o in Operation if o is not Operation.MODERATION])
def test_model_is_checked_for_every_operation(operation: Operation) -> None:
    assert invalid(operation, {"prompt": "p", "input": "i", "messages": []}).param == "model"


def test_moderation_without_model_uses_openais_default() -> None:
    body: dict[str, Any] = {"input": "text"}
    validate_request(Operation.MODERATION, body)
    assert body["model"] == "omni-moderation-latest"
    assert invalid(Operation.MODERATION, {"input": "t", "model": ""}).param == "model"


@pytest.mark.parametrize(
    "operation, field",
    [
        (Operation.IMAGE_GENERATION, "prompt"),
        (Operation.AUDIO_SPEECH, "input"),
        (Operation.MODERATION, "input"),
        (Operation.RESPONSES, "input"),
    ],
)
def test_media_operations_name_their_required_field(operation: Operation, field: str) -> None:
    assert invalid(operation, {"model": "m"}).param == field


@pytest.mark.parametrize(
    "operation", [Operation.IMAGE_GENERATION, Operation.AUDIO_SPEECH, Operation.MODERATION]
)
def test_only_chat_completions_and_responses_stream(operation: Operation) -> None:
    body = {"model": "m", "prompt": "p", "input": "i", "stream": True}
    assert invalid(operation, body).param == "stream"
    assert validate_request(Operation.RESPONSES, {"model": "m", "input": "i", "stream": True})


@pytest.mark.parametrize("messages", [None, [], "hello", {"role": "user"}])
def test_missing_or_empty_messages(messages: Any) -> None:
    body: dict[str, Any] = {"model": "gpt-4o"}
    if messages is not None:
        body["messages"] = messages
    error = invalid(Operation.CHAT, body)
    assert error.param == "messages"
    assert "non-empty list" in error.message


def test_message_that_is_not_an_object_names_its_index() -> None:
    error = invalid(
        Operation.CHAT, {"model": "m", "messages": [{"role": "user", "content": "a"}, "just text"]}
    )
    assert error.param == "messages[1]"


@pytest.mark.parametrize(
    "message",
    [
        {"content": "no role"},
        {"role": "", "content": "x"},
        {"role": 3, "content": "x"},
        {"role": None},
    ],
)
def test_message_without_role_names_the_field(message: dict[str, Any]) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, message],
    }
    error = invalid(Operation.CHAT, body)
    assert error.param == "messages[2].role"
    assert "messages[2].role is required" in error.message


@pytest.mark.parametrize("stream", ["true", 1, 0, "yes", [True], {}])
def test_stream_must_be_a_bool(stream: Any) -> None:
    error = invalid(Operation.CHAT, {**CHAT, "stream": stream})
    assert error.param == "stream"
    assert "true or false" in error.message


def test_embeddings_cannot_stream() -> None:
    error = invalid(Operation.EMBEDDING, {"model": "e", "input": "x", "stream": True})
    assert error.param == "stream"
    assert "cannot be streamed" in error.message
    assert (
        validate_request(Operation.EMBEDDING, {"model": "e", "input": "x", "stream": False})
        is False
    )


@pytest.mark.parametrize("options", ["include_usage", ["include_usage"], True, 1])
def test_stream_options_must_be_an_object(options: Any) -> None:
    error = invalid(Operation.CHAT, {**CHAT, "stream": True, "stream_options": options})
    assert error.param == "stream_options"


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", True, False, [1]])
def test_bad_n(n: Any) -> None:
    error = invalid(Operation.CHAT, {**CHAT, "n": n})
    assert error.param == "n"
    assert "positive integer" in error.message


@pytest.mark.parametrize("prompt", [None, 42, {"text": "p"}])
def test_completion_needs_a_prompt(prompt: Any) -> None:
    body: dict[str, Any] = {"model": "m"}
    if prompt is not None:
        body["prompt"] = prompt
    error = invalid(Operation.COMPLETION, body)
    assert error.param == "prompt"


@pytest.mark.parametrize("value", [None, [], 42, {"text": "x"}])
def test_embeddings_need_input(value: Any) -> None:
    body: dict[str, Any] = {"model": "e"}
    if value is not None:
        body["input"] = value
    error = invalid(Operation.EMBEDDING, body)
    assert error.param == "input"
    assert "'input' is required" in error.message


def test_messages_are_not_required_for_other_operations() -> None:
    assert (
        validate_request(Operation.EMBEDDING, {"model": "e", "input": "x", "messages": "ignored"})
        is False
    )
