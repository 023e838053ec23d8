"""The few checks an Anthropic Messages body needs before routing."""

from __future__ import annotations

from typing import Any

from bastion.core.errors import InvalidRequestError


def validate_messages_request(body: dict[str, Any]) -> bool:
    """Raises InvalidRequestError naming the field; returns whether a stream is wanted."""
    validate_model_and_messages(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError(
            "max_tokens: Field required (a positive integer)", param="max_tokens"
        )
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidRequestError("stream: must be true or false", param="stream")
    return stream


def validate_model_and_messages(body: dict[str, Any]) -> None:
    """What every Messages-shaped body needs: a printable model and a list of messages."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: Field required", param="model")
    if len(model) > 512 or not model.isprintable():
        raise InvalidRequestError(
            "model: must be printable text of at most 512 characters", param="model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequestError("messages: Field required (a list)", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"messages.{index}: each message needs a 'role' and 'content'",
                param=f"messages.{index}",
            )
