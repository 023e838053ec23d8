"""``POST /v1/messages/count_tokens``: Anthropic's token counting, answered in its dialect.

Authentication, body limits and error bodies are those of ``/v1/messages``; the
query string (Claude Code appends ``?beta=true``) is ignored.
"""

from __future__ import annotations

import logging
import uuid

import orjson

from bastion import __version__
from bastion.core.dialect import Dialect
from bastion.core.errors import BastionError
from bastion.dialects.anthropic_tokens import validate_count_tokens_request
from bastion.interfaces.http.asgi import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    parse_json_object,
    read_body,
    send_response,
)
from bastion.interfaces.http.llm import anthropic_headers, send_error
from bastion.policy.auth import Authenticator, extract_key
from bastion.services.token_count import TokenCountService

logger = logging.getLogger("bastion.http")


class CountTokensEndpoint:
    def __init__(
        self, service: TokenCountService, auth: Authenticator, max_body_bytes: int
    ) -> None:
        self.service = service
        self.auth = auth
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        call_id = str(uuid.uuid4())
        try:
            self.auth.authenticate(extract_key(scope["headers"]))
            raw = await read_body(scope, receive, self.max_body_bytes)
            body = parse_json_object(raw)
            validate_count_tokens_request(body)
            tokens, deployment = await self.service.count(
                body, raw=raw, client_headers=anthropic_headers(scope)
            )
        except ClientDisconnected:
            return
        except BastionError as error:
            await send_error(send, error, call_id, Dialect.ANTHROPIC)
            return
        except Exception:
            logger.exception("unexpected error counting tokens")
            internal = BastionError("the gateway hit an unexpected error; it has been logged")
            await send_error(send, internal, call_id, Dialect.ANTHROPIC)
            return
        headers = [
            (b"x-litellm-call-id", call_id.encode()),
            (b"x-litellm-model-id", deployment.id.encode()),
            (b"x-litellm-version", __version__.encode()),
        ]
        await send_response(send, 200, orjson.dumps({"input_tokens": tokens}), headers)
