"""The configuration, as one validated pydantic model in LiteLLM proxy's YAML shape.

Sections keep unknown keys (``extra="allow"``): LiteLLM has many settings Bastion
accepts without acting on. The loader reports those as warnings and refuses only
keys that look like typos of a known one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationInfo,
    field_validator,
)

from bastion.policy.durations import parse_duration

ModelMode = Literal[
    "chat",
    "completion",
    "embedding",
    "rerank",
    "image_generation",
    "audio_speech",
    "audio_transcription",
    "realtime",
    "moderation",
    "responses",
    "batch",
]

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class LiteLLMParams(_Section):
    model: str = Field(min_length=1)
    custom_llm_provider: str | None = None
    api_key: str | None = None
    api_base: str | None = None
    api_version: str | None = None
    organization: str | None = None
    azure_ad_token: str | None = None
    litellm_credential_name: str | None = None
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    weight: float | None = Field(default=None, ge=0)
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    max_retries: int | None = Field(default=None, ge=0)
    extra_headers: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    drop_params: bool | None = None
    mock_response: Any = None
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    aws_region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_profile_name: str | None = None
    aws_role_name: str | None = None
    aws_web_identity_token: str | None = None
    vertex_project: str | None = None
    vertex_location: str | None = None
    vertex_credentials: Any = None


class ModelInfo(_Section):
    id: str | None = None
    mode: ModelMode | None = None
    base_model: str | None = None
    access_groups: list[str] = Field(default_factory=list)
    max_tokens: int | None = Field(default=None, ge=1)
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    disable_background_health_check: bool = False
    health_check_model: str | None = None
    health_check_voice: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class ModelEntry(_Section):
    model_name: str = Field(min_length=1)
    litellm_params: LiteLLMParams
    model_info: ModelInfo = Field(default_factory=ModelInfo)


class CredentialEntry(_Section):
    credential_name: str = Field(min_length=1)
    credential_values: dict[str, Any] = Field(default_factory=dict)
    credential_info: dict[str, Any] = Field(default_factory=dict)


class RouterSettings(_Section):
    routing_strategy: RoutingStrategy = "simple-shuffle"
    routing_strategy_args: dict[str, Any] | None = None
    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    content_policy_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    max_fallbacks: int = Field(default=5, ge=0)
    num_retries: int | None = Field(default=None, ge=0)
    retry_after: float = Field(default=0, ge=0)
    retry_policy: dict[str, int] | None = None
    # {model group: retry_policy}; checked (with warnings) by routing/setup.py
    model_group_retry_policy: dict[str, Any] | None = None
    allowed_fails: int = Field(default=3, ge=0)
    allowed_fails_policy: dict[str, int] | None = None
    cooldown_time: float = Field(default=5, ge=0)
    disable_cooldowns: bool = False
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    model_group_alias: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    enable_pre_call_checks: bool = False
    redis_host: str | None = None
    redis_port: int | None = None
    redis_password: str | None = None
    redis_url: str | None = None


class LiteLLMSettings(_Section):
    drop_params: bool = False
    num_retries: int | None = Field(default=None, ge=0)
    request_timeout: PositiveFloat | None = None
    callbacks: list[Any] | str = Field(default_factory=list)
    success_callback: list[Any] | str = Field(default_factory=list)
    failure_callback: list[Any] | str = Field(default_factory=list)
    cache: bool = False
    cache_params: dict[str, Any] = Field(default_factory=dict)
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    set_verbose: bool = False
    json_logs: bool = False
    # Bastion's: a local price file in LiteLLM's model_prices_and_context_window.json format.
    model_cost_map_path: str | None = None
    # Never store message bodies (spend logs included), whatever else says so.
    turn_off_message_logging: bool = False
    # A stream's final usage object carries its cost (USD) as ``cost``.
    include_cost_in_streaming_usage: bool = False

    @field_validator("budget_duration")
    @classmethod
    def _budget_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # a ValueError names the field
        return value


class GeneralSettings(_Section):
    master_key: str | None = None
    database_url: str | None = None
    max_request_size_mb: PositiveFloat | None = None
    background_health_checks: bool = False
    health_check_interval: PositiveFloat = 300
    health_check_timeout: PositiveFloat = 60
    disable_spend_logs: bool = False
    store_prompts_in_spend_logs: bool = False
    # How long spend_logs rows are kept ("7d", "24h"…) and how often old ones are deleted.
    maximum_spend_logs_retention_period: str | None = None
    maximum_spend_logs_retention_interval: str | None = None

    @field_validator("maximum_spend_logs_retention_period", "maximum_spend_logs_retention_interval")
    @classmethod
    def _a_duration(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            parse_duration(value, field=str(info.field_name))  # a ValueError names the field
        return value


class ProxyConfig(_Section):
    model_list: list[ModelEntry] = Field(default_factory=list)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    litellm_settings: LiteLLMSettings = Field(default_factory=LiteLLMSettings)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    credential_list: list[CredentialEntry] = Field(default_factory=list)
    environment_variables: dict[str, Any] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)

    @field_validator("model_list", "credential_list", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator(
        "router_settings",
        "litellm_settings",
        "general_settings",
        "environment_variables",
        mode="before",
    )
    @classmethod
    def _null_section_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value
