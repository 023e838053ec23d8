"""OpenAI-compatible vendors: one row each. Adding a vendor is adding a row."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.deployment import Operation


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    api_base: str | None
    api_key_env: tuple[str, ...] = ()
    api_base_env: tuple[str, ...] = ()
    requires_api_key: bool = True
    # Appended to a user-given api_base that lacks it (Ollama users write the bare host).
    base_path: str = ""
    unsupported_params: frozenset[str] = frozenset()
    supports_embeddings: bool = True
    supports_completions: bool = True
    # Beyond chat, completions and embeddings: images, audio, moderations, responses.
    extra_operations: frozenset[Operation] = frozenset()


_NO_LOGIT = frozenset({"logit_bias", "logprobs", "top_logprobs"})
OPENAI_MEDIA_OPERATIONS = frozenset(
    {
        Operation.IMAGE_GENERATION,
        Operation.AUDIO_SPEECH,
        Operation.AUDIO_TRANSCRIPTION,
        Operation.MODERATION,
        Operation.RESPONSES,
    }
)

VENDORS: tuple[Vendor, ...] = (
    Vendor(
        "openai",
        "https://api.openai.com/v1",
        ("OPENAI_API_KEY",),
        ("OPENAI_API_BASE", "OPENAI_BASE_URL"),
        extra_operations=OPENAI_MEDIA_OPERATIONS,
    ),
    Vendor(
        "text-completion-openai",
        "https://api.openai.com/v1",
        ("OPENAI_API_KEY",),
        ("OPENAI_API_BASE", "OPENAI_BASE_URL"),
    ),
    Vendor(
        "groq",
        "https://api.groq.com/openai/v1",
        ("GROQ_API_KEY",),
        ("GROQ_API_BASE",),
        unsupported_params=_NO_LOGIT | {"functions", "function_call"},
        supports_completions=False,
    ),
    Vendor(
        "mistral",
        "https://api.mistral.ai/v1",
        ("MISTRAL_API_KEY",),
        ("MISTRAL_API_BASE",),
        unsupported_params=_NO_LOGIT | {"user", "functions", "function_call"},
        supports_completions=False,
    ),
    Vendor(
        "deepseek",
        "https://api.deepseek.com/v1",
        ("DEEPSEEK_API_KEY",),
        ("DEEPSEEK_API_BASE",),
        supports_embeddings=False,
    ),
    Vendor(
        "together_ai",
        "https://api.together.xyz/v1",
        ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY"),
        ("TOGETHER_AI_API_BASE",),
    ),
    Vendor(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"),
        ("FIREWORKS_AI_API_BASE",),
    ),
    Vendor(
        "openrouter",
        "https://openrouter.ai/api/v1",
        ("OPENROUTER_API_KEY", "OR_API_KEY"),
        ("OPENROUTER_API_BASE",),
        supports_embeddings=False,
    ),
    Vendor(
        "xai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("XAI_API_BASE",), supports_embeddings=False
    ),
    Vendor(
        "perplexity",
        "https://api.perplexity.ai",
        ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
        ("PERPLEXITY_API_BASE",),
        unsupported_params=_NO_LOGIT,
        supports_embeddings=False,
        supports_completions=False,
    ),
    Vendor(
        "cerebras",
        "https://api.cerebras.ai/v1",
        ("CEREBRAS_API_KEY",),
        ("CEREBRAS_API_BASE",),
        supports_embeddings=False,
    ),
    Vendor(
        "sambanova", "https://api.sambanova.ai/v1", ("SAMBANOVA_API_KEY",), ("SAMBANOVA_API_BASE",)
    ),
    Vendor(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        ("DEEPINFRA_API_KEY",),
        ("DEEPINFRA_API_BASE",),
    ),
    Vendor(
        "nvidia_nim",
        "https://integrate.api.nvidia.com/v1",
        ("NVIDIA_NIM_API_KEY",),
        ("NVIDIA_NIM_API_BASE",),
    ),
    Vendor("nebius", "https://api.studio.nebius.ai/v1", ("NEBIUS_API_KEY",), ("NEBIUS_API_BASE",)),
    Vendor(
        "hyperbolic",
        "https://api.hyperbolic.xyz/v1",
        ("HYPERBOLIC_API_KEY",),
        ("HYPERBOLIC_API_BASE",),
    ),
    Vendor(
        "github", "https://models.inference.ai.azure.com", ("GITHUB_API_KEY",), ("GITHUB_API_BASE",)
    ),
    Vendor(
        "hosted_vllm",
        None,
        ("HOSTED_VLLM_API_KEY",),
        ("HOSTED_VLLM_API_BASE",),
        requires_api_key=False,
        base_path="/v1",
    ),
    Vendor(
        "vllm", None, ("VLLM_API_KEY",), ("VLLM_API_BASE",), requires_api_key=False, base_path="/v1"
    ),
    Vendor(
        "ollama",
        "http://localhost:11434/v1",
        ("OLLAMA_API_KEY",),
        ("OLLAMA_API_BASE",),
        requires_api_key=False,
        base_path="/v1",
    ),
    Vendor(
        "ollama_chat",
        "http://localhost:11434/v1",
        ("OLLAMA_API_KEY",),
        ("OLLAMA_API_BASE",),
        requires_api_key=False,
        base_path="/v1",
    ),
    Vendor(
        "lm_studio",
        "http://localhost:1234/v1",
        ("LM_STUDIO_API_KEY",),
        ("LM_STUDIO_API_BASE",),
        requires_api_key=False,
        base_path="/v1",
    ),
    Vendor(
        "llamafile",
        "http://127.0.0.1:8080/v1",
        ("LLAMAFILE_API_KEY",),
        ("LLAMAFILE_API_BASE",),
        requires_api_key=False,
        base_path="/v1",
    ),
    Vendor(
        "openai_like",
        None,
        ("OPENAI_LIKE_API_KEY",),
        requires_api_key=False,
        extra_operations=OPENAI_MEDIA_OPERATIONS,
    ),
    Vendor(
        "custom_openai", None, (), requires_api_key=False, extra_operations=OPENAI_MEDIA_OPERATIONS
    ),
    Vendor(
        "litellm_proxy",
        None,
        ("LITELLM_PROXY_API_KEY",),
        ("LITELLM_PROXY_API_BASE",),
        requires_api_key=False,
    ),
)

VENDORS_BY_NAME: dict[str, Vendor] = {v.name: v for v in VENDORS}

# Vendors not known to accept OpenAI's ``stream_options`` (several send usage in the
# last chunk anyway). The gateway asks for a usage chunk on a client's behalf only
# from the others, so a client's stream never fails over a field it did not send.
NO_STREAM_OPTIONS = frozenset(
    {
        "mistral",
        "perplexity",
        "ollama",
        "ollama_chat",
        "lm_studio",
        "llamafile",
        "github",
        "nebius",
        "hyperbolic",
    }
)
