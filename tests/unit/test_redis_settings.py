"""Where Redis is: the LiteLLM ways of saying it, in their order of precedence."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.config.loader import load_config_mapping
from bastion.config.redis_settings import RedisSettings, resolve_redis_settings
from bastion.core.errors import ConfigError
from bastion.limits.setup import build_rate_limiter


def resolve(raw: dict[str, Any], env: dict[str, str] | None = None) -> RedisSettings | None:
    return resolve_redis_settings(load_config_mapping(raw).config, env or {})


def test_nothing_configured_means_no_redis() -> None:
    assert resolve({}) is None
    assert resolve({"litellm_settings": {"cache_params": {"type": "local"}}}) is None


def test_router_settings_win() -> None:
    settings = resolve(
        {
            "router_settings": {
                "redis_host": "r1",
                "redis_port": 6380,
                "redis_password": "pw",
                "redis_db": 2,
            },
            "litellm_settings": {"cache_params": {"type": "redis", "host": "r2"}},
        },
        {"REDIS_HOST": "r3"},
    )
    assert settings == RedisSettings(
        "router_settings.redis_host", host="r1", port=6380, password="pw", db=2
    )
    url = resolve({"router_settings": {"redis_url": "redis://:secret@r9:7000/1"}})
    assert url is not None and url.url == "redis://:secret@r9:7000/1"
    assert url.display == "redis://r9:7000/1"  # no password in logs or readiness


def test_cache_params_with_type_redis() -> None:
    settings = resolve(
        {
            "litellm_settings": {
                "cache_params": {
                    "type": "redis",
                    "host": "cache",
                    "port": "6390",
                    "username": "app",
                    "password": "pw",
                    "ssl": True,
                }
            }
        }
    )
    assert settings == RedisSettings(
        "litellm_settings.cache_params",
        host="cache",
        port=6390,
        password="pw",
        username="app",
        ssl=True,
    )
    assert settings.display == "rediss://cache:6390/0"
    # Missing parts come from the environment, as LiteLLM's cache does.
    from_env = resolve(
        {"litellm_settings": {"cache_params": {"type": "redis"}}},
        {"REDIS_HOST": "envhost", "REDIS_PORT": "1234", "REDIS_PASSWORD": "x"},
    )
    assert from_env is not None
    assert (from_env.host, from_env.port, from_env.password) == ("envhost", 1234, "x")


def test_environment() -> None:
    assert resolve({}, {"REDIS_URL": "redis://u:p@h:1/0"}) == RedisSettings(
        "REDIS_URL", url="redis://u:p@h:1/0"
    )
    assert resolve({}, {"REDIS_HOST": "h", "REDIS_PORT": "7", "REDIS_PASSWORD": "p"}) == (
        RedisSettings("REDIS_HOST", host="h", port=7, password="p")
    )


def test_bad_values_stop_startup_with_the_setting_named() -> None:
    config = load_config_mapping(
        {
            "litellm_settings": {"cache_params": {"type": "redis", "port": "sixty"}},
            "general_settings": {
                "global_max_parallel_requests": -1,
                "rate_limit_fail_closed": "yes",
            },
        }
    ).config
    with pytest.raises(ConfigError) as caught:
        build_rate_limiter(config, [], environ={})
    text = str(caught.value)
    assert "cache_params.port" in text
    assert "global_max_parallel_requests" in text
    assert "rate_limit_fail_closed" in text


def test_rate_limit_settings_are_not_reported_as_unknown() -> None:
    loaded = load_config_mapping(
        {
            "router_settings": {"redis_host": "h"},
            "general_settings": {
                "global_max_parallel_requests": 10,
                "rate_limit_fail_closed": True,
                "rate_limit_redis_prefix": "x:",
            },
        }
    )
    assert not [w for w in loaded.warnings if "redis" in w or "rate_limit" in w or "parallel" in w]


def test_the_same_server_named_as_a_url_or_as_host_and_port() -> None:
    plain = RedisSettings("router_settings.redis_host", host="127.0.0.1", port=6380, db=2)
    assert plain.same_server(RedisSettings("REDIS_URL", url="redis://127.0.0.1:6380/2"))
    assert plain.same_server(RedisSettings("x", url="redis://127.0.0.1:6380?db=2"))
    assert not plain.same_server(RedisSettings("x", url="redis://127.0.0.1:6380/3"))
    assert not plain.same_server(RedisSettings("x", url="rediss://127.0.0.1:6380/2"))
    secret = RedisSettings("a", host="cache", password="p@ss", username="svc")
    assert secret.same_server(RedisSettings("b", url="redis://svc:p%40ss@cache:6379/0"))
    assert not secret.same_server(RedisSettings("b", url="redis://svc:other@cache:6379/0"))
    socket_url = RedisSettings("a", url="unix:///run/redis.sock")
    assert socket_url.same_server(RedisSettings("b", url="unix:///run/redis.sock"))
    assert not socket_url.same_server(plain)
