"""The LiteLLM-format config loader: what loads, and what is refused with which message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.config.loader import LoadedConfig, load_config_file, load_config_text
from bastion.core.deployment import Deployment
from bastion.core.errors import ConfigError
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry
from bastion.routing.deployments import build_deployments

PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "OPENAI_BASE_URL",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_API_BASE",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_API_VERSION",
    "AZURE_AD_TOKEN",
    "GROQ_API_KEY",
    "OLLAMA_API_BASE",
)


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


def load(text: str) -> LoadedConfig:
    return load_config_text(textwrap.dedent(text), source="test.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.source == "test.yaml"
    return info.value.problems


def build(text: str) -> list[Deployment]:
    loaded = load(text)
    return build_deployments(loaded.config, ProviderRegistry(UpstreamHTTP()), "test.yaml")


def build_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build(text)
    return info.value.problems


def only(found: list[str], fragment: str) -> str:
    """The one problem line containing ``fragment``."""
    matching = [p for p in found if fragment in p]
    assert len(matching) == 1, f"expected one problem with {fragment!r} in {found}"
    return matching[0]


# --- configs that load -------------------------------------------------------------------


AZURE_CREDENTIAL_CONFIG = """
    credential_list:
      - credential_name: azure_credential_us_east
        credential_values:
          api_key: os.environ/TEST_AZURE_KEY
          api_base: os.environ/TEST_AZURE_BASE
          api_version: "2025-01-01-preview"
        credential_info:
          description: production Azure resource
    model_list:
      - model_name: gpt-4.1
        litellm_params:
          model: azure/gpt-4.1
          litellm_credential_name: azure_credential_us_east
          rpm: 600
          tpm: 100000
          timeout: 120
          stream_timeout: 30
          temperature: 0.2
        model_info:
          mode: chat
          base_model: azure/gpt-4.1
          access_groups: [default-models]
          supports_reasoning: true
      - model_name: gpt-4.1
        litellm_params:
          model: azure/gpt-4.1
          litellm_credential_name: azure_credential_us_east
          api_base: https://eastus2.openai.azure.com/
          api_version: "2025-04-01-preview"
      - model_name: text-embedding-3-small
        litellm_params:
          model: azure/text-embedding-3-small
          litellm_credential_name: azure_credential_us_east
        model_info:
          mode: embedding
      - model_name: gpt-realtime
        litellm_params:
          model: azure/gpt-realtime
          litellm_credential_name: azure_credential_us_east
        model_info:
          mode: realtime
          disable_background_health_check: true
      - model_name: gpt-4o-mini
        litellm_params:
          model: openai/gpt-4o-mini
          api_key: os.environ/TEST_OPENAI_KEY
    router_settings:
      routing_strategy: simple-shuffle
      num_retries: 3
      allowed_fails: 3
      cooldown_time: 30
      fallbacks:
        - gpt-4.1: [gpt-4o-mini]
      default_fallbacks: [gpt-4o-mini]
    litellm_settings:
      drop_params: true
      success_callback: ["prometheus"]
    general_settings:
      master_key: os.environ/TEST_MASTER_KEY
"""


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", "azure-secret-key")
    monkeypatch.setenv("TEST_AZURE_BASE", "https://eastus.openai.azure.com")
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-openai-test")
    monkeypatch.setenv("TEST_MASTER_KEY", "sk-master-test")


@pytest.mark.usefixtures("azure_env")
def test_realistic_config_loads_with_resolved_env_values() -> None:
    loaded = load(AZURE_CREDENTIAL_CONFIG)
    config = loaded.config

    assert [w for w in loaded.warnings if "environment variable" in w] == []
    assert config.general_settings.master_key == "sk-master-test"
    assert config.credential_list[0].credential_values == {
        "api_key": "azure-secret-key",
        "api_base": "https://eastus.openai.azure.com",
        "api_version": "2025-01-01-preview",
    }
    assert [m.model_name for m in config.model_list] == [
        "gpt-4.1",
        "gpt-4.1",
        "text-embedding-3-small",
        "gpt-realtime",
        "gpt-4o-mini",
    ]
    assert config.model_list[4].litellm_params.api_key == "sk-openai-test"
    assert config.router_settings.fallbacks == [{"gpt-4.1": ["gpt-4o-mini"]}]
    assert config.router_settings.default_fallbacks == ["gpt-4o-mini"]
    assert config.router_settings.num_retries == 3
    assert config.router_settings.cooldown_time == 30
    assert config.litellm_settings.drop_params is True


@pytest.mark.usefixtures("azure_env")
def test_model_info_modes_and_capability_flags_are_kept() -> None:
    config = load(AZURE_CREDENTIAL_CONFIG).config
    modes = [m.model_info.mode for m in config.model_list]
    assert modes == ["chat", None, "embedding", "realtime", None]
    first = config.model_list[0].model_info
    assert first.base_model == "azure/gpt-4.1"
    assert first.access_groups == ["default-models"]
    # Open-ended capability flags are kept, not refused.
    assert first.model_extra == {"supports_reasoning": True}
    assert config.model_list[3].model_info.disable_background_health_check is True


@pytest.mark.usefixtures("azure_env")
def test_credentials_fill_azure_deployments_and_explicit_params_win() -> None:
    deployments = build(AZURE_CREDENTIAL_CONFIG)
    first, second, embedding = deployments[0], deployments[1], deployments[2]

    assert first.provider_name == "azure"
    assert first.upstream_model == "gpt-4.1"
    assert first.api_base == "https://eastus.openai.azure.com"
    assert first.api_version == "2025-01-01-preview"
    assert first.api_key == "azure-secret-key"
    assert first.request_headers["api-key"] == "azure-secret-key"
    assert first.missing_credential is None
    assert (first.rpm, first.tpm, first.timeout, first.stream_timeout) == (600, 100000, 120, 30)
    # A litellm_params field that is not a deployment setting is a default request param.
    assert first.default_params == {"temperature": 0.2}
    # The deployment's own api_base/api_version beat the credential's.
    assert second.api_base == "https://eastus2.openai.azure.com"
    assert second.api_version == "2025-04-01-preview"
    assert second.api_key == "azure-secret-key"
    assert embedding.mode == "embedding"
    # Entries without model_info.id get distinct stable ids.
    assert len({d.id for d in deployments}) == len(deployments)
    assert build(AZURE_CREDENTIAL_CONFIG)[0].id == first.id


def test_missing_env_var_is_a_warning_naming_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASTION_TEST_UNSET_KEY", raising=False)
    loaded = load(
        """
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: openai/gpt-4o
              api_key: os.environ/BASTION_TEST_UNSET_KEY
        """
    )
    assert loaded.warnings == [
        "model_list[0].litellm_params.api_key: environment variable BASTION_TEST_UNSET_KEY "
        "is not set"
    ]
    assert loaded.config.model_list[0].litellm_params.api_key is None


def test_environment_variables_section_is_exported_and_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # setenv first so monkeypatch restores the environment after the loader writes to it.
    monkeypatch.setenv("BASTION_TEST_EXPORTED", "before")
    monkeypatch.setenv("BASTION_TEST_EXPORTED_NUM", "before")
    loaded = load(
        """
        environment_variables:
          BASTION_TEST_EXPORTED: sk-from-config
          BASTION_TEST_EXPORTED_NUM: 42
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: openai/gpt-4o
              api_key: os.environ/BASTION_TEST_EXPORTED
        """
    )
    import os

    assert os.environ["BASTION_TEST_EXPORTED"] == "sk-from-config"
    assert os.environ["BASTION_TEST_EXPORTED_NUM"] == "42"
    assert loaded.config.model_list[0].litellm_params.api_key == "sk-from-config"
    assert loaded.warnings == []


def test_include_merges_model_list_from_another_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "extra.yaml").write_text(
        textwrap.dedent(
            """
            model_list:
              - model_name: included-model
                litellm_params:
                  model: fake/included
            router_settings:
              num_retries: 7
              cooldown_time: 11
            """
        )
    )
    main = tmp_path / "config.yaml"
    main.write_text(
        textwrap.dedent(
            """
            include:
              - models/extra.yaml
            model_list:
              - model_name: main-model
                litellm_params:
                  model: fake/main
            router_settings:
              num_retries: 1
            """
        )
    )
    loaded = load_config_file(main)
    names = [m.model_name for m in loaded.config.model_list]
    assert names == ["main-model", "included-model"]
    # The including file wins on a key both set; the included file fills the rest.
    assert loaded.config.router_settings.num_retries == 1
    assert loaded.config.router_settings.cooldown_time == 11
    assert loaded.source == str(main)


def test_include_of_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    main = tmp_path / "config.yaml"
    main.write_text("include: [nope.yaml]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(main)
    assert "include: cannot read" in info.value.problems[0]
    assert "nope.yaml" in info.value.problems[0]


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path / "absent.yaml")
    assert info.value.problems == ["file not found"]


def test_empty_file_and_null_sections_load() -> None:
    assert load("").config.model_list == []
    config = load(
        """
        model_list:
        router_settings:
        litellm_settings:
        general_settings:
        credential_list:
        environment_variables:
        """
    ).config
    assert config.model_list == []
    assert config.router_settings.routing_strategy == "simple-shuffle"
    assert config.router_settings.max_fallbacks == 5


def test_unknown_non_typo_keys_are_warnings_not_errors() -> None:
    loaded = load(
        """
        some_future_section: {a: 1}
        router_settings:
          brand_new_router_knob: true
        litellm_settings:
          completely_unrelated_thing: 1
          s3_callback_params: {s3_bucket_name: logs}
        general_settings:
          my_custom_setting: x
        model_list:
          - model_name: m
            litellm_params:
              model: fake/m
              input_type: text
            model_info:
              supports_audio_output: true
        """
    )
    assert sorted(loaded.warnings) == sorted(
        [
            "some_future_section: not a setting Bastion knows; ignored",
            "router_settings.brand_new_router_knob: not a setting Bastion knows; ignored",
            "litellm_settings.completely_unrelated_thing: not a setting Bastion knows; ignored",
            "general_settings.my_custom_setting: not a setting Bastion knows; ignored",
            "litellm_settings.s3_callback_params: accepted, but not acted on by this version",
        ]
    )


def test_settings_accepted_but_not_acted_on_are_named_in_warnings() -> None:
    loaded = load(
        """
        router_settings:
          routing_strategy: least-busy
          redis_host: localhost
        litellm_settings:
          success_callback: [prometheus]
          max_budget: 100
          cache: false
          fallbacks: [{a: [b]}]
        general_settings:
          allowed_ips: [10.0.0.1]
        model_list:
          - model_name: a
            litellm_params: {model: fake/a}
          - model_name: b
            litellm_params: {model: fake/b}
        """
    )
    joined = "\n".join(loaded.warnings)
    assert "router_settings.routing_strategy" not in joined  # every strategy is acted on
    assert "router_settings.redis_host" not in joined  # Redis counts the rate limits
    for name in (
        "litellm_settings.success_callback",
        "general_settings.allowed_ips",
    ):
        assert name in joined
    assert "litellm_settings.max_budget" not in joined  # the global budget is enforced
    assert "litellm_settings.cache" not in joined  # false: nothing asked for
    assert "litellm_settings.fallbacks" not in joined  # read like router_settings.fallbacks


def test_per_deployment_num_retries_is_accepted_and_not_sent_upstream() -> None:
    # LiteLLM reads litellm_params.num_retries (per-deployment retries): a valid file.
    loaded = load(
        """
        model_list:
          - model_name: m
            litellm_params:
              model: fake/m
              num_retries: 3
        """
    )
    assert loaded.warnings == []
    deployment = build_deployments(loaded.config, ProviderRegistry(UpstreamHTTP()))[0]
    assert "num_retries" not in deployment.default_params


def test_litellm_only_params_are_not_request_defaults() -> None:
    # Settings LiteLLM reads from litellm_params must not reach the provider as request fields.
    deployment = build(
        """
        model_list:
          - model_name: m
            litellm_params:
              model: openai/gpt-4o
              api_key: sk-test
              guardrails: [pii-mask]
              cache: {no-cache: true}
              litellm_trace_id: trace-1
              tags: [team-a]
              aws_region_name: us-east-1
              temperature: 0.2
              max_tokens: 512
        """
    )[0]
    assert deployment.default_params == {"temperature": 0.2, "max_tokens": 512}


# --- broken configs ----------------------------------------------------------------------


def test_yaml_syntax_error_gives_line_and_column() -> None:
    found = problems(
        """\
        model_list:
          - model_name: a
            litellm_params:
              model: openai/gpt-4o
             api_key: [
        """
    )
    assert len(found) == 1
    assert found[0].startswith("line 5, column 6: not valid YAML")


def test_top_level_must_be_a_mapping() -> None:
    assert problems("- model_name: a\n- model_name: b\n") == [
        "the top level must be a mapping, not list"
    ]


def test_missing_model_name_names_the_entry() -> None:
    found = problems(
        """
        model_list:
          - litellm_params:
              model: openai/gpt-4o
        """
    )
    assert found == ["model_list[0].model_name: required but missing"]


def test_missing_litellm_params_model_names_the_exact_path() -> None:
    found = problems(
        """
        model_list:
          - model_name: a
            litellm_params: {model: fake/a}
          - model_name: b
            litellm_params: {model: fake/b}
          - model_name: c
            litellm_params:
              api_base: http://localhost:8000
        """
    )
    assert found == ["model_list[2].litellm_params.model: required but missing"]


def test_router_settings_typo_suggests_the_real_key() -> None:
    found = problems("router_settings:\n  num_retires: 3\n")
    assert found == ["router_settings.num_retires: unknown setting; did you mean 'num_retries'?"]


def test_litellm_params_typo_suggests_the_real_key() -> None:
    found = problems(
        """
        model_list:
          - model_name: a
            litellm_params:
              model: openai/gpt-4o
              api_bse: https://example.test/v1
        """
    )
    assert found == [
        "model_list[0].litellm_params.api_bse: unknown setting; did you mean 'api_base'?"
    ]


def test_routing_strategy_typo_lists_options_and_suggests() -> None:
    line = only(
        problems("router_settings:\n  routing_strategy: simple-shufle\n"), "routing_strategy"
    )
    assert line.startswith("router_settings.routing_strategy: 'simple-shufle' is not one of")
    assert "least-busy" in line
    assert line.endswith("did you mean 'simple-shuffle'?")


def test_negative_rpm_is_refused_with_the_value() -> None:
    found = problems(
        """
        model_list:
          - model_name: a
            litellm_params: {model: fake/a, rpm: -5}
        """
    )
    assert found == [
        "model_list[0].litellm_params.rpm: Input should be greater than or equal to 0 (got -5)"
    ]


def test_invalid_model_info_mode_is_refused() -> None:
    line = only(
        problems(
            """
            model_list:
              - model_name: a
                litellm_params: {model: fake/a}
                model_info: {mode: embeding}
            """
        ),
        "mode",
    )
    assert line.startswith("model_list[0].model_info.mode: 'embeding' is not one of")
    assert line.endswith("did you mean 'embedding'?")


def test_unknown_provider_prefix_suggests_the_close_one() -> None:
    found = build_problems(
        """
        model_list:
          - model_name: gpt-4o
            litellm_params:
              model: opnai/gpt-4o
        """
    )
    assert found == [
        "model_list[0].litellm_params.model: unknown provider 'opnai'; did you mean 'openai/'?"
    ]


def test_planned_provider_says_not_supported_by_this_version() -> None:
    line = only(
        build_problems(
            """
            model_list:
              - model_name: claude
                litellm_params:
                  model: sagemaker/my-endpoint
                  aws_region_name: us-east-1
            """
        ),
        "model_list[0]",
    )
    assert line.startswith("model_list[0].litellm_params.model: provider 'sagemaker'")
    assert "not supported by this version" in line


def test_unknown_credential_name_lists_known_ones() -> None:
    found = build_problems(
        """
        credential_list:
          - credential_name: azure_us_east
            credential_values: {api_key: k, api_base: https://r.openai.azure.com}
        model_list:
          - model_name: gpt-4.1
            litellm_params:
              model: azure/gpt-4.1
              litellm_credential_name: azure_us_west
        """
    )
    assert found == [
        "model_list[0].litellm_params.litellm_credential_name: no credential named "
        "'azure_us_west' in credential_list (known: azure_us_east)"
    ]


def test_duplicate_model_info_id_is_refused() -> None:
    found = build_problems(
        """
        model_list:
          - model_name: a
            litellm_params: {model: fake/a}
            model_info: {id: shared-id}
          - model_name: b
            litellm_params: {model: fake/b}
            model_info: {id: shared-id}
        """
    )
    assert found == ["model_list[1].model_info.id: 'shared-id' is already used by model_list[0]"]


def test_fallbacks_to_an_unknown_group_are_refused() -> None:
    found = build_problems(
        """
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: fake/gpt-4o}
          - model_name: gpt-4o-mini
            litellm_params: {model: fake/gpt-4o-mini}
        router_settings:
          fallbacks:
            - gpt-4o: [gpt-4o-mini, gtp-4o-mini]
            - ghost-group: [gpt-4o]
          default_fallbacks: [nobody]
        """
    )
    assert sorted(found) == sorted(
        [
            "router_settings.fallbacks[0].gpt-4o: no model group named 'gtp-4o-mini' "
            "(known: gpt-4o, gpt-4o-mini)",
            "router_settings.fallbacks[1]: no model group named 'ghost-group' "
            "(known: gpt-4o, gpt-4o-mini)",
            "router_settings.default_fallbacks[0]: no model group named 'nobody' "
            "(known: gpt-4o, gpt-4o-mini)",
        ]
    )


def test_azure_without_api_base_is_refused_with_a_hint() -> None:
    line = only(
        build_problems(
            """
            model_list:
              - model_name: gpt-4.1
                litellm_params: {model: azure/gpt-4.1, api_key: k}
            """
        ),
        "model_list[0]",
    )
    assert line.startswith("model_list[0].litellm_params: azure deployments need api_base")


def test_every_problem_is_reported_at_once() -> None:
    text = """
        router_settings:
          num_retires: 3
          routing_strategy: simple-shufle
        model_list:
          - model_name: a
            litellm_params:
              model: openai/gpt-4o
              api_bse: http://x
              rpm: -5
          - litellm_params: {model: fake/b}
          - model_name: c
            litellm_params: {}
    """
    with pytest.raises(ConfigError) as info:
        load(text)
    found = info.value.problems
    for fragment in (
        "router_settings.num_retires",
        "router_settings.routing_strategy",
        "model_list[0].litellm_params.api_bse",
        "model_list[0].litellm_params.rpm",
        "model_list[1].model_name",
        "model_list[2].litellm_params.model",
    ):
        only(found, fragment)
    assert len(found) == 6
    # The exception text lists each problem on its own line, under the source.
    message = str(info.value)
    assert message.startswith("invalid configuration in test.yaml:\n")
    assert message.count("\n  - ") == 6


def test_build_reports_every_deployment_problem_at_once() -> None:
    found = build_problems(
        """
        model_list:
          - model_name: a
            litellm_params: {model: opnai/gpt-4o}
          - model_name: b
            litellm_params: {model: sagemaker/my-endpoint}
          - model_name: c
            litellm_params: {model: fake/c, litellm_credential_name: nope}
          - model_name: d
            litellm_params: {model: fake/d}
        router_settings:
          fallbacks: [{d: [ghost]}]
        """
    )
    assert [p.split(":", 1)[0] for p in found] == [
        "model_list[0].litellm_params.model",
        "model_list[1].litellm_params.model",
        "model_list[2].litellm_params.litellm_credential_name",
        "router_settings.fallbacks[0].d",
    ]


# --- secrets stay out of error messages --------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "path"),
    [
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n"
            "      model: openai/gpt-4o\n      api_key: [sk-live-SECRETVALUE]\n",
            "model_list[0].litellm_params.api_key",
        ),
        (
            "general_settings:\n  master_key: {value: sk-live-SECRETVALUE}\n",
            "general_settings.master_key",
        ),
        (
            "router_settings:\n  redis_password: [sk-live-SECRETVALUE]\n",
            "router_settings.redis_password",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n"
            "      model: openai/gpt-4o\n      aws_secret_access_key: [sk-live-SECRETVALUE]\n",
            "model_list[0].litellm_params.aws_secret_access_key",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n"
            "      model: openai/gpt-4o\n"
            "      extra_headers: 'Authorization: Bearer sk-live-SECRETVALUE'\n",
            "model_list[0].litellm_params.extra_headers",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n"
            "      model: openai/gpt-4o\n"
            "      headers: {Authorization: [Bearer, sk-live-SECRETVALUE]}\n",
            "model_list[0].litellm_params.headers.Authorization",
        ),
    ],
)
def test_invalid_secret_values_are_redacted(snippet: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(snippet, source="test.yaml")
    line = only(info.value.problems, path)
    assert "<redacted>" in line
    assert "SECRETVALUE" not in str(info.value)


def test_resolved_env_secret_never_appears_in_build_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASTION_TEST_SECRET", "sk-live-SECRETVALUE")
    found = build_problems(
        """
        model_list:
          - model_name: a
            litellm_params:
              model: opnai/gpt-4o
              api_key: os.environ/BASTION_TEST_SECRET
          - model_name: a
            litellm_params:
              model: azure/gpt-4o
              api_key: os.environ/BASTION_TEST_SECRET
        """
    )
    assert len(found) == 2
    assert not any("SECRETVALUE" in p for p in found)


def test_non_secret_invalid_values_are_shown() -> None:
    found = problems("router_settings:\n  cooldown_time: soon\n")
    line = only(found, "router_settings.cooldown_time")
    assert "(got 'soon')" in line


def test_token_counts_are_not_treated_as_secrets() -> None:
    text = (
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/gpt-4o\n"
        "    model_info:\n      max_tokens: zero\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="test.yaml")
    line = only(info.value.problems, "model_list[0].model_info.max_tokens")
    assert "'zero'" in line and "<redacted>" not in line
