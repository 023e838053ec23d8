"""Which price-table names a deployment may be listed under.

A deployment is priced by ``model_info.base_model`` when set (an Azure deployment's
upstream name is whatever the operator called it), else by its provider and upstream
model. Pure functions of those strings, so they are tested without any table.
"""

from __future__ import annotations

import re

# LiteLLM provider prefix → genai-prices provider id. Providers not listed here are not
# looked up in genai-prices (self-hosted servers such as hosted_vllm or ollama have no
# list price; a model name alone would borrow another vendor's).
GENAI_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "chatgpt": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "gemini": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "xai": "x-ai",
    "novita": "novita",
    "moonshot": "moonshotai",
    "voyage": "voyageai",
    "databricks": "databricks",
    "cloudflare": "cloudflare",
    "meta_llama": "meta",
    "zai": "zai",
    "minimax": "minimax",
    "baseten": "baseten",
    "elevenlabs": "elevenlabs",
    "github_copilot": "github-copilot",
}

# Names LiteLLM's cost map lists a provider's models under, besides its own prefix.
_FILE_PREFIX_ALIASES: dict[str, tuple[str, ...]] = {
    "bedrock_converse": ("bedrock",),
    "vertex_ai_beta": ("vertex_ai",),
    "text-completion-openai": ("openai",),
    "cohere_chat": ("cohere",),
    "azure_text": ("azure",),
}
_BEDROCK_ROUTES = ("converse/", "invoke/", "converse_like/")
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")


def split_prefix(model: str) -> tuple[str | None, str]:
    """``azure/gpt-4o`` → (``azure``, ``gpt-4o``); a name with no known prefix → (None, name)."""
    prefix, sep, rest = model.partition("/")
    if sep and (prefix in GENAI_PROVIDERS or prefix in _FILE_PREFIX_ALIASES):
        return prefix, rest
    return None, model


def bedrock_model_id(model: str) -> str:
    """A Bedrock model or inference profile id without LiteLLM's route or an ARN around it.

    ``converse/us.anthropic.claude-…-v1:0`` and
    ``arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-…-v1:0`` both
    give ``us.anthropic.claude-…-v1:0``.
    """
    for route in _BEDROCK_ROUTES:
        if model.startswith(route):
            model = model[len(route) :]
            break
    if model.startswith("arn:"):
        model = model.rsplit("/", 1)[-1]
    return model


def bedrock_vendor_model(model: str) -> str | None:
    """``us.anthropic.claude-sonnet-4-5-20250929-v1:0`` → ``claude-sonnet-4-5-20250929``.

    The vendor's own name for a model Bedrock resells, to price it at the vendor's list
    price when the Bedrock table lacks it. None for Amazon's own models.
    """
    bare = _BEDROCK_REGION.sub("", model)
    vendor, sep, name = bare.partition(".")
    if not sep or vendor != "anthropic":
        return None
    return _BEDROCK_VERSION.sub("", name)


def provider_family(provider: str) -> str:
    """One name for a provider's variants: ``bedrock_converse`` is ``bedrock``, LiteLLM's
    ``vertex_ai-anthropic_models`` is ``vertex_ai``, ``text-completion-openai`` is ``openai``."""
    for family in ("bedrock", "vertex_ai"):
        if provider.startswith(family):
            return family
    aliases = _FILE_PREFIX_ALIASES.get(provider)
    return aliases[0] if aliases else provider


def upstream_name(provider: str, model: str) -> str:
    if provider in ("bedrock", "bedrock_converse"):
        return bedrock_model_id(model)
    return model


def file_keys(provider: str, model: str, base_model: str | None) -> list[str]:
    """Keys to try, in order, in a LiteLLM ``model_prices_and_context_window.json``."""
    keys: list[str] = []
    if base_model:
        prefix, bare = split_prefix(base_model)
        keys.append(base_model)
        if prefix is None:
            owners = (provider, *_FILE_PREFIX_ALIASES.get(provider, ()))
            keys[:0] = [f"{p}/{base_model}" for p in owners]
        else:
            keys.append(bare)
    else:
        name = upstream_name(provider, model)
        for p in (provider, *_FILE_PREFIX_ALIASES.get(provider, ())):
            keys.append(f"{p}/{name}")
        keys.append(name)
    unique = list(dict.fromkeys(keys))
    return unique + [k.lower() for k in unique if k.lower() not in unique]


def genai_refs(provider: str, model: str, base_model: str | None) -> list[tuple[str | None, str]]:
    """``(genai provider id or None to infer, model)`` pairs to try, in order."""
    refs: list[tuple[str | None, str]] = []
    if base_model:
        prefix, bare = split_prefix(base_model)
        owner = prefix or provider
        bare = upstream_name(owner, bare)
        refs.append((GENAI_PROVIDERS.get(owner), bare))
        if owner in ("bedrock", "bedrock_converse") and (vendor := bedrock_vendor_model(bare)):
            refs.append(("anthropic", vendor))
        refs.append((None, bare))
        return list(dict.fromkeys(refs))
    genai_provider = GENAI_PROVIDERS.get(provider)
    if genai_provider is None:
        return []
    name = upstream_name(provider, model)
    refs.append((genai_provider, name))
    if genai_provider == "aws" and (vendor := bedrock_vendor_model(name)):
        refs.append(("anthropic", vendor))
    return refs
