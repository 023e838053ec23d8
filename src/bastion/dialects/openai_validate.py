"""The few checks an OpenAI-dialect body needs before routing; the provider checks the rest."""

from __future__ import annotations

from typing import Any

from bastion.core.deployment import Operation
from bastion.core.errors import InvalidRequestError
from bastion.dialects.rerank import validate_rerank_request


def validate_request(operation: Operation, body: dict[str, Any]) -> bool:
    """Raises InvalidRequestError naming the field; returns whether the client wants a stream."""
    if operation is Operation.MODERATION and "model" not in body:
        body["model"] = DEFAULT_MODERATION_MODEL  # OpenAI's default when none is named
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string", param="model"
        )
    if len(model) > 512 or not model.isprintable():
        raise InvalidRequestError(
            "'model' must be printable text of at most 512 characters", param="model"
        )
    if operation is Operation.CHAT:
        _check_messages(body.get("messages"))
    elif operation is Operation.COMPLETION:
        prompt = body.get("prompt")
        if not isinstance(prompt, (str, list)):
            raise InvalidRequestError(
                "'prompt' is required: a string, a list of strings or token arrays",
                param="prompt",
            )
    elif operation in _REQUIRED_TEXT:
        field, what = _REQUIRED_TEXT[operation]
        value = body.get(field)
        if not isinstance(value, (str, list)) or not value:
            raise InvalidRequestError(f"'{field}' is required: {what}", param=field)
    elif operation is Operation.EMBEDDING:
        value = body.get("input")
        if not isinstance(value, (str, list)) or (isinstance(value, list) and not value):
            raise InvalidRequestError(
                "'input' is required: a string, a non-empty list of strings or token arrays",
                param="input",
            )
    elif operation is Operation.RERANK:
        validate_rerank_request(body)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be true or false", param="stream")
    if stream and operation not in _STREAMABLE:
        raise InvalidRequestError(
            f"{operation.value} requests cannot be streamed here", param="stream"
        )
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError("'stream_options' must be an object", param="stream_options")
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidRequestError("'n' must be a positive integer", param="n")
    return stream


_REQUIRED_TEXT: dict[Operation, tuple[str, str]] = {
    Operation.IMAGE_GENERATION: ("prompt", "the text description of the image"),
    Operation.AUDIO_SPEECH: ("input", "the text to speak"),
    Operation.MODERATION: ("input", "the text (or list of texts and images) to classify"),
    Operation.RESPONSES: ("input", "a string or a list of input items"),
}
_STREAMABLE = frozenset({Operation.CHAT, Operation.COMPLETION, Operation.RESPONSES})
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"


def validate_transcription(fields: dict[str, Any], file_fields: list[str]) -> None:
    if not fields.get("model"):
        raise InvalidRequestError("'model' is required (a form field)", param="model")
    if "file" not in file_fields:
        raise InvalidRequestError("'file' is required: the audio file to transcribe", param="file")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty list", param="messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError(
                f"messages[{index}] must be an object with 'role' and 'content'",
                param=f"messages[{index}]",
            )
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequestError(
                f"messages[{index}].role is required (system, developer, user, assistant, tool)",
                param=f"messages[{index}].role",
            )
