"""Secrets in management answers are masked, nested ones included; names are not."""

from __future__ import annotations

from bastion.services.admin.masking import masked


def test_secret_fields_are_masked_and_the_rest_shown() -> None:
    shown = masked(
        {
            "api_key": "sk-0123456789abcdefXY",
            "aws_secret_access_key": "short",
            "api_base": "https://example.test/v1",
            "litellm_credential_name": "vault",
            "vertex_credentials": {"private_key": "PEM"},
            "extra_headers": {"Authorization": "Bearer 0123456789abcdef", "x-team": "search"},
            "rpm": 10,
            "azure_ad_token": None,
        }
    )
    assert shown == {
        "api_key": "sk****XY",
        "aws_secret_access_key": "****",
        "api_base": "https://example.test/v1",
        "litellm_credential_name": "vault",
        "vertex_credentials": "****",
        "extra_headers": {"Authorization": "Be****ef", "x-team": "search"},
        "rpm": 10,
        "azure_ad_token": None,
    }


def test_stored_headers_are_encrypted_at_rest_like_keys() -> None:
    from bastion.storage.crypto import Cipher
    from bastion.storage.repositories.catalog import decrypt_params, encrypt_params

    cipher = Cipher("a-salt-key-for-this-test-0001")
    params = {"model": "openai/x", "extra_headers": {"Authorization": "Bearer hidden-token"}}
    stored = encrypt_params(params, cipher)
    assert "hidden-token" not in str(stored) and stored["model"] == "openai/x"
    assert decrypt_params(stored, cipher) == params
