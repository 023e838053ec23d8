"""OpenAI-dialect clients of Claude on Bedrock's InvokeModel (LiteLLM's ``bedrock/invoke/…``).

A deployment whose model carries LiteLLM's ``invoke/`` route asks for InvokeModel rather
than Converse. For an OpenAI chat body that means the native Anthropic provider's
translation (``openai_to_anthropic``), re-enveloped exactly as for Anthropic-dialect
clients (``invoke_body``: no ``model``/``stream``, ``anthropic_version:
bedrock-2023-05-31``). The answer is Anthropic's ``message`` JSON, translated back; a
stream's ``chunk`` events are first turned into Anthropic SSE by ``InvokeTranslator``
(as for Anthropic clients), then into OpenAI chunks by ``AnthropicStreamTranslator``.
"""

from __future__ import annotations

from bastion.core.deployment import Deployment
from bastion.dialects.anthropic_bedrock import invoke_body
from bastion.dialects.anthropic_response_to_openai import anthropic_to_openai_response
from bastion.dialects.anthropic_stream_to_openai import AnthropicStreamTranslator
from bastion.dialects.openai_to_anthropic import AnthropicRequest, openai_to_anthropic
from bastion.providers.anthropic import TranslatedAnthropicStream, default_max_tokens
from bastion.providers.base import ProviderCall, ProviderStream
from bastion.providers.translated import include_usage

PROVIDER = "bedrock"


def invoke_request(
    deployment: Deployment, call: ProviderCall, *, label: str, drop_params: bool
) -> AnthropicRequest:
    """The InvokeModel body (and JSON-mode flag) for an OpenAI chat call; 400s on bad input."""
    request = openai_to_anthropic(
        {**deployment.default_params, **call.body},
        model=deployment.upstream_model,
        stream=call.stream,
        label=label,
        drop_params=drop_params,
        also_drop=call.also_drop,
        default_max_tokens=default_max_tokens(deployment.model_info),
    )
    # Defaults are already under the body; the client's anthropic-beta header still counts.
    request.body = invoke_body(
        request.body, call.client_headers, drop_params=drop_params, label=label
    )
    return request


def openai_answer(body: bytes, request: AnthropicRequest) -> bytes:
    """The ``chat.completion`` bytes for InvokeModel's Anthropic ``message`` answer."""
    return anthropic_to_openai_response(body, json_mode=request.json_mode, provider=PROVIDER)


def openai_stream(
    anthropic_sse: ProviderStream,
    deployment: Deployment,
    call: ProviderCall,
    request: AnthropicRequest,
) -> ProviderStream:
    """An Anthropic SSE stream (decoded from event-stream frames) relayed as OpenAI chunks."""
    translator = AnthropicStreamTranslator(
        include_usage=include_usage(call.body),
        json_mode=request.json_mode,
        model=deployment.upstream_model,
        provider=PROVIDER,
    )
    return TranslatedAnthropicStream(anthropic_sse, translator)
