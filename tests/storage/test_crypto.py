"""Encryption at rest: round trip, wrong key, key source."""

from __future__ import annotations

import pytest

from bastion.storage import Cipher, DecryptionError, decrypt_value, encrypt_value
from bastion.storage.crypto import MissingEncryptionKeyError, derive_key
from bastion.storage.repositories.catalog import decrypt_params, encrypt_params, is_secret_param


def test_round_trip() -> None:
    token = encrypt_value("sk-provider-ü-secret", "salt-1")
    assert "sk-provider" not in token
    assert decrypt_value(token, "salt-1") == "sk-provider-ü-secret"
    # Fernet tokens are randomised: the same value encrypts differently each time.
    assert encrypt_value("x", "salt-1") != encrypt_value("x", "salt-1")


def test_wrong_key_fails_clearly_without_leaking() -> None:
    token = encrypt_value("sk-provider-secret", "right-salt")
    with pytest.raises(DecryptionError) as info:
        decrypt_value(token, "wrong-salt")
    message = str(info.value)
    assert "LITELLM_SALT_KEY" in message
    assert "right-salt" not in message and "wrong-salt" not in message
    with pytest.raises(DecryptionError):
        decrypt_value("not-a-token", "right-salt")


def test_key_derivation_is_stable_and_secret_free_repr() -> None:
    assert derive_key("abc") == derive_key("abc") != derive_key("abd")
    assert "abc" not in repr(Cipher("abc"))
    with pytest.raises(MissingEncryptionKeyError):
        derive_key("")


def test_salt_key_wins_over_master_key() -> None:
    env = {"LITELLM_SALT_KEY": "salt", "LITELLM_MASTER_KEY": "sk-master"}
    cipher = Cipher.from_environment(None, env)
    assert cipher is not None
    token = cipher.encrypt("v")
    assert decrypt_value(token, "salt") == "v"
    fallback = Cipher.from_environment("sk-config-master", {})
    assert fallback is not None and decrypt_value(fallback.encrypt("v"), "sk-config-master") == "v"
    from_env_master = Cipher.from_environment(None, {"LITELLM_MASTER_KEY": "sk-m"})
    assert from_env_master is not None
    assert decrypt_value(from_env_master.encrypt("v"), "sk-m") == "v"
    assert Cipher.from_environment(None, {}) is None


def test_params_encryption_only_touches_secrets() -> None:
    assert is_secret_param("api_key") and is_secret_param("aws_session_token")
    assert not is_secret_param("litellm_credential_name") and not is_secret_param("api_base")
    cipher = Cipher("s")
    params = {
        "model": "m",
        "api_key": "k",
        "vertex_credentials": {"a": 1},
        "rpm": 5,
        "x_token": None,
    }
    stored = encrypt_params(params, cipher)
    assert stored["model"] == "m" and stored["rpm"] == 5 and stored["x_token"] is None
    assert stored["api_key"] != "k" and isinstance(stored["vertex_credentials"], str)
    assert decrypt_params(stored, cipher) == params
    with pytest.raises(DecryptionError, match=r"litellm_params\.api_key"):
        decrypt_params(stored, Cipher("other"))
    with pytest.raises(MissingEncryptionKeyError):
        encrypt_params(params, None)
