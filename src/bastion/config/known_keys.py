"""LiteLLM settings Bastion accepts in a config file without a model field for them.

They keep a file that LiteLLM reads loadable unchanged. Keys listed here are not
reported as unknown; keys close to one of these or to a modelled field, and in
neither, are reported as likely typos.
"""

from __future__ import annotations

TOP_LEVEL = frozenset(
    {
        "model_list",
        "router_settings",
        "litellm_settings",
        "general_settings",
        "credential_list",
        "environment_variables",
        "include",
        "guardrails",
        "mcp_servers",
        "files_settings",
        "finetune_settings",
        "assistant_settings",
        "vector_store_registry",
        "search_tools",
        "prompts",
    }
)

ROUTER_SETTINGS = frozenset(
    {
        "redis_db",
        "redis_username",
        "cache_responses",
        "cache_kwargs",
        "caching_groups",
        "client_ttl",
        "polling_interval",
        "provider_budget_config",
        "optional_pre_call_checks",
        "set_verbose",
        "debug_level",
        "default_max_parallel_requests",
        "default_priority",
        "enable_tag_filtering",
        "tag_filtering_match_any",
        "alerting_config",
        "assistants_config",
        "deployment_affinity",
        "router_general_settings",
        "ignore_invalid_deployments",
        "default_litellm_params",
    }
)

LITELLM_SETTINGS = frozenset(
    {
        "service_callbacks",
        "s3_callback_params",
        "max_end_user_budget",
        "redact_user_api_key_info",
        "redact_messages_in_exceptions",
        "require_auth_for_metrics_endpoint",
        "default_team_settings",
        "default_key_generate_params",
        "upperbound_key_generate_params",
        "default_internal_user_params",
        "default_max_internal_user_budget",
        "max_internal_user_budget",
        "internal_user_budget_duration",
        "modify_params",
        "telemetry",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "fallbacks",
        "default_fallbacks",
        "allowed_fails",
        "cooldown_time",
        "disable_cooldowns",
        "enable_preview_features",
        "langfuse_default_tags",
        "force_ipv4",
        "ssl_verify",
        "ssl_certificate",
        "disable_end_user_cost_tracking",
        "disable_add_transform_inline_image_block",
        "enable_json_schema_validation",
        "prometheus_initialize_budget_metrics",
        "mcp_aliases",
        "guardrails",
        "upperbound",
        "max_user_budget",
        "default_user_params",
        "global_disable_no_log_param",
        "key_generation_settings",
        "public_teams",
        "retry_policy",
        "model_group_alias",
        "tag_budget_config",
        "logging_callback_params",
        "request_timeout",
        "user_header_name",
        "check_provider_endpoint",
        "cache_responses",
        "add_function_to_prompt",
        "suppress_debug_info",
        "disable_token_counter",
        "callback_settings",
        "prometheus_metrics_config",
        "custom_prometheus_metadata_labels",
        "otel_config",
    }
)

GENERAL_SETTINGS = frozenset(
    {
        "enable_jwt_auth",
        "litellm_jwtauth",
        "allowed_ips",
        "allowed_routes",
        "public_routes",
        "admin_only_routes",
        "max_parallel_requests",
        "global_max_parallel_requests",
        "alerting",
        "alert_types",
        "alert_to_webhook_url",
        "alerting_threshold",
        "alerting_args",
        "proxy_batch_write_at",
        "store_model_in_db",
        "allow_requests_on_db_unavailable",
        "database_connection_pool_limit",
        "database_connection_timeout",
        "database_args",
        "custom_auth",
        "custom_key_generate",
        "custom_sso",
        "ui_access_mode",
        "disable_master_key_return",
        "disable_reset_budget",
        "disable_retry_on_max_parallel_request_limit_error",
        "enforce_user_param",
        "enable_oauth2_auth",
        "forward_openai_org_id",
        "forward_client_headers_to_llm_api",
        "infer_model_from_keys",
        "key_management_system",
        "key_management_settings",
        "use_redis_transaction_buffer",
        "use_shared_health_check",
        "user_header_name",
        "proxy_budget_rescheduler_min_time",
        "proxy_budget_rescheduler_max_time",
        "pass_through_endpoints",
        "enable_public_model_hub",
        "disable_prisma_schema_update",
        "disable_error_logs",
        "disable_adding_master_key_hash_to_db",
        "allow_user_auth",
        "require_auth",
        "cors_allow_origins",
        "enable_auth_for_metrics",
        "service_account_settings",
        "role_permissions",
        "master_key_hash",
        "litellm_key_header_name",
        "supported_db_objects",
        "default_team_disabled",
        "spend_report_frequency",
        "embedding_model",
        "reject_clientside_metadata_tags",
        "user_api_key_cache_ttl",
        "use_x_forwarded_for",
        "mcp_client_side_auth_header_name",
        "health_check_details",
        "max_response_size_mb",
        "budget_exceeded_status_code",
    }
)

LITELLM_PARAMS = frozenset(
    {
        "order",
        "region_name",
        "tenant_id",
        "client_id",
        "client_secret",
        "azure_username",
        "azure_password",
        "azure_scope",
        "azure_ad_token_provider",
        "use_in_pass_through",
        "use_litellm_proxy",
        "merge_reasoning_content_in_choices",
        "model_info",
        "base_model",
        "input_cost_per_second",
        "output_cost_per_second",
        "cache_creation_input_token_cost",
        "cache_read_input_token_cost",
        "input_cost_per_pixel",
        "output_cost_per_pixel",
        # Cost fields bastion.policy.pricing reads (its _above_*_tokens tiers are not
        # mistaken for typos, and deployments.unused_params skips every *_cost* field).
        "output_cost_per_reasoning_token",
        "input_cost_per_audio_token",
        "output_cost_per_audio_token",
        "input_cost_per_image",
        "output_cost_per_image",
        "input_cost_per_character",
        "input_cost_per_request",
        "cache_creation_input_token_cost_above_1hr",
        "cache_read_input_audio_token_cost",
        "input_cost_per_image_token",
        "output_cost_per_image_token",
        "tags",
        "budget_duration",
        "max_budget",
        "configurable_clientside_auth_params",
        "litellm_trace_id",
        "aws_bedrock_runtime_endpoint",
        "aws_sts_endpoint",
        "aws_role_session_name",
        "aws_external_id",
        "aws_session_name",
        "model_id",
        "vertex_ai_project",
        "vertex_ai_location",
        "watsonx_region_name",
        "auto_router_config",
        "auto_router_config_path",
        "auto_router_default_model",
        "auto_router_embedding_model",
        "stream",
        "cache",
        "guardrails",
        "positive_model_list",
        "api_type",
        "num_retries",
    }
)

# Capability flags and cost fields are open-ended: never typos.
MODEL_INFO: frozenset[str] = frozenset()

# Settings Bastion reads from litellm_settings although LiteLLM documents them under
# router_settings too (router_settings wins when both are set).
LITELLM_SETTINGS_ROUTER_ALIASES = frozenset(
    {
        "max_end_user_budget",  # read by the budget checks, not the router
        "fallbacks",
        "default_fallbacks",
        "allowed_fails",
        "cooldown_time",
        "disable_cooldowns",
        "model_group_alias",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "retry_policy",
        "request_timeout",
    }
)

# Modelled settings this version accepts but does not act on yet: a warning names them.
NOT_YET_ACTED_ON: dict[str, frozenset[str]] = {
    "router_settings": frozenset(),
    "litellm_settings": frozenset(
        {
            "callbacks",
            "success_callback",
            "failure_callback",
        }
    ),
    "general_settings": frozenset(),
}

# Known general_settings that Bastion acts on although they have no model field.
GENERAL_SETTINGS_ACTED_ON = frozenset(
    {
        "proxy_batch_write_at",
        "budget_exceeded_status_code",
        "store_model_in_db",
        # services/alerts.py (budget alerts)
        "alerting",
        "alert_types",
        "alert_to_webhook_url",
    }
)

# Rate limits (bastion.limits): Bastion's own general_settings, and LiteLLM's that it acts on.
_RATE_LIMIT_SETTINGS = frozenset({"rate_limit_fail_closed", "rate_limit_redis_prefix"})
GENERAL_SETTINGS = GENERAL_SETTINGS | _RATE_LIMIT_SETTINGS
GENERAL_SETTINGS_ACTED_ON = (
    GENERAL_SETTINGS_ACTED_ON | _RATE_LIMIT_SETTINGS | {"global_max_parallel_requests"}
)
