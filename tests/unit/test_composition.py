"""What the composition root makes of a config: defaults, warnings, litellm_settings aliases."""

from __future__ import annotations

from bastion.app import build_runtime
from bastion.config.loader import load_config_mapping


def runtime_for(config: dict[str, object]):  # type: ignore[no-untyped-def]
    loaded = load_config_mapping(config)
    return loaded, build_runtime(loaded)


def test_request_defaults_from_litellm_params_and_extra_body_and_unused_warned() -> None:
    loaded, runtime = runtime_for(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": {
                        "model": "hosted_vllm/llama",
                        "api_base": "http://127.0.0.1:9/v1",
                        "temperature": 0.2,
                        "top_k": 5,
                        "extra_body": {"chat_template_kwargs": {"enable_thinking": False}},
                        "totally_unknown_knob": 1,
                    },
                }
            ]
        }
    )
    (deployment,) = runtime.deployments
    assert deployment.default_params == {
        "temperature": 0.2,
        "top_k": 5,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert any(
        "model_list[0].litellm_params.totally_unknown_knob" in w and "not sent upstream" in w
        for w in loaded.warnings
    )


def test_router_settings_read_from_litellm_settings_when_absent_from_router_settings() -> None:
    _, runtime = runtime_for(
        {
            "model_list": [
                {"model_name": "a", "litellm_params": {"model": "fake/a"}},
                {"model_name": "b", "litellm_params": {"model": "fake/b"}},
            ],
            "litellm_settings": {
                "allowed_fails": 7,
                "cooldown_time": 42,
                "model_group_alias": {"nice": "a"},
                "fallbacks": [{"a": ["b"]}],
            },
            "router_settings": {"cooldown_time": 9},
        }
    )
    assert runtime.router.cooldowns.allowed_fails == 7
    assert runtime.router.cooldowns.cooldown_time == 9  # router_settings wins
    assert runtime.table.lookup("nice") == runtime.table.lookup("a")
    assert runtime.router.fallback_chain("a") == ["b"]


def test_the_startup_migration_shortcut_knows_the_newest_revision() -> None:
    from bastion.services.tenancy import LATEST_REVISION
    from bastion.storage.migrator import head_revision

    assert head_revision() == LATEST_REVISION
