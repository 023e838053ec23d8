"""Provider lookup by LiteLLM model prefix (``openai/``, ``azure/``, ``groq/``…)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable

from bastion.providers.azure import AZURE_VENDOR, AzureOpenAIProvider
from bastion.providers.base import Provider
from bastion.providers.fake import FakeProvider
from bastion.providers.http import UpstreamHTTP
from bastion.providers.openai_compatible import OpenAICompatibleProvider
from bastion.providers.vendors import VENDORS


def _loader(module: str, factory: str) -> Callable[[UpstreamHTTP], Provider]:
    def load(http: UpstreamHTTP) -> Provider:
        make: Callable[[UpstreamHTTP], Provider] = getattr(
            importlib.import_module(f"bastion.providers.{module}"), factory
        )
        return make(http)

    return load


# Providers with their own API (and heavy client libraries: botocore, google-auth) are
# imported when a deployment first names them, so a gateway pays only for what it uses.
LAZY_PROVIDERS: dict[str, tuple[Callable[[UpstreamHTTP], Provider], tuple[str, ...]]] = {
    "anthropic": (_loader("anthropic", "AnthropicProvider"), ()),
    "gemini": (_loader("gemini", "GeminiProvider"), ()),
    "vertex_ai": (_loader("vertex", "VertexProvider"), ("vertex_ai_beta",)),
    "cohere": (_loader("cohere", "CohereProvider"), ("cohere_chat",)),
    "azure_ai": (_loader("azure_ai", "make_azure_ai_provider"), ()),
    "bedrock": (_loader("bedrock", "BedrockProvider"), ("bedrock_converse",)),
}
_LAZY_ALIASES = {
    alias: name for name, (_, aliases) in LAZY_PROVIDERS.items() for alias in (name, *aliases)
}

# Prefixes LiteLLM knows whose adapters are not in this build yet: named, so the
# error says "not supported yet" instead of "unknown".
PLANNED_PROVIDERS = frozenset(
    {
        "sagemaker",
        "huggingface",
        "replicate",
        "watsonx",
        "databricks",
        "cloudflare",
        "ai21",
        "voyage",
        "jina_ai",
        "predibase",
        "triton",
    }
)

_OPENAI_NAME_PREFIXES = (
    "gpt-",
    "o1",
    "o3",
    "o4",
    "chatgpt-",
    "text-embedding-",
    "davinci",
    "babbage",
    "dall-e",
    "whisper",
    "tts-",
    "omni-moderation",
    "text-moderation",
    "ft:gpt",
    "codex-",
    "computer-use",
)
_INFERRED = (("claude", "anthropic"), ("gemini", "gemini"), ("command", "cohere"))


class UnknownProviderError(ValueError):
    pass


class ProviderRegistry:
    def __init__(self, http: UpstreamHTTP) -> None:
        self._http = http
        self._providers: dict[str, Provider] = {}
        for vendor in VENDORS:
            self.register(OpenAICompatibleProvider(vendor, http))
        self.register(AzureOpenAIProvider(AZURE_VENDOR, http))
        self.register(FakeProvider())

    def register(self, provider: Provider, *aliases: str) -> None:
        self._providers[provider.name] = provider
        for alias in aliases:
            self._providers[alias] = provider

    def get(self, name: str) -> Provider | None:
        if name not in self._providers and name in _LAZY_ALIASES:
            return self._load(name)
        return self._providers.get(name)

    def _load(self, name: str) -> Provider:
        canonical = _LAZY_ALIASES[name]
        make, aliases = LAZY_PROVIDERS[canonical]
        provider = make(self._http)
        self.register(provider, *aliases)
        return provider

    @property
    def fake(self) -> Provider:
        return self._providers["fake"]

    def names(self) -> list[str]:
        return sorted(set(self._providers) | set(_LAZY_ALIASES))

    def resolve(self, model: str, custom_llm_provider: str | None = None) -> tuple[Provider, str]:
        """The provider for a ``litellm_params.model`` string, and the model it calls."""
        if custom_llm_provider:
            provider = self._lookup(custom_llm_provider)
            prefix = f"{custom_llm_provider}/"
            return provider, model.removeprefix(prefix)
        prefix, sep, rest = model.partition("/")
        if sep and (
            prefix in self._providers or prefix in _LAZY_ALIASES or prefix in PLANNED_PROVIDERS
        ):
            return self._lookup(prefix), rest
        if sep and not _looks_like_model_path(prefix):
            return self._lookup(prefix), rest
        return self._lookup(infer_provider(model)), model

    def _lookup(self, name: str) -> Provider:
        provider = self.get(name)
        if provider is not None:
            return provider
        if name in PLANNED_PROVIDERS:
            raise UnknownProviderError(
                f"provider '{name}' is not supported by this version of Bastion yet"
            )
        match = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        hint = (
            f"; did you mean '{match[0]}/'?"
            if match
            else (f"; known providers: {', '.join(self.names())}")
        )
        raise UnknownProviderError(f"unknown provider '{name}'{hint}")


def infer_provider(model: str) -> str:
    lowered = model.lower()
    if lowered.startswith(_OPENAI_NAME_PREFIXES):
        return "openai"
    for start, provider in _INFERRED:
        if lowered.startswith(start):
            return provider
    raise UnknownProviderError(
        f"cannot tell which provider serves '{model}'; write it with a provider prefix, "
        f"for example 'openai/{model}' or 'hosted_vllm/{model}'"
    )


def _looks_like_model_path(prefix: str) -> bool:
    # "meta-llama/Llama-3" style names (a vendor org, not a provider) contain capitals or dots;
    # an unknown lower-case identifier before the slash is treated as a mistyped provider.
    return prefix != prefix.lower() or "." in prefix or "-" in prefix
