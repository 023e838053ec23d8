"""Encryption at rest for provider credentials and model secrets.

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) with a key derived by
HKDF-SHA256 from ``LITELLM_SALT_KEY``, or from the master key when that is unset
(as LiteLLM does). HKDF does not stretch a weak passphrase: use a long random
salt key (e.g. ``openssl rand -base64 32``). Changing the salt key makes stored
secrets unreadable (:class:`DecryptionError`), so set it once, before storing any.

The secret and the derived key are never logged or put in a message.

``cryptography`` is imported on first use (several megabytes resident): a gateway that
stores no secret never loads it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bastion.storage.errors import DecryptionError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

SALT_KEY_ENV = "LITELLM_SALT_KEY"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
_HKDF_SALT = b"bastion-gateway"
_HKDF_INFO = b"bastion storage encryption v1"


class MissingEncryptionKeyError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "no encryption key: set LITELLM_SALT_KEY (or a master key) before storing "
            "credentials or model secrets in the database"
        )


def derive_key(secret: str) -> bytes:
    """The urlsafe-base64 Fernet key for ``secret`` (HKDF-SHA256, 32 bytes)."""
    if not secret:
        raise MissingEncryptionKeyError()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


class Cipher:
    """Encrypts and decrypts short strings; build one at startup and reuse it."""

    __slots__ = ("_fernet_instance", "_secret")

    def __init__(self, secret: str) -> None:
        if not secret:
            raise MissingEncryptionKeyError()
        self._secret = secret
        self._fernet_instance: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._fernet_instance is None:
            from cryptography.fernet import Fernet

            self._fernet_instance = Fernet(derive_key(self._secret))
        return self._fernet_instance

    def __repr__(self) -> str:
        return "Cipher(<redacted>)"

    @classmethod
    def from_environment(
        cls, master_key: str | None = None, env: Mapping[str, str] | None = None
    ) -> Cipher | None:
        """From ``LITELLM_SALT_KEY``, else the master key; None when neither is set."""
        environ = os.environ if env is None else env
        secret = environ.get(SALT_KEY_ENV) or master_key or environ.get(MASTER_KEY_ENV)
        return cls(secret) if secret else None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, what: str = "a stored secret") -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise DecryptionError(what) from None


def encrypt_value(value: str, secret: str) -> str:
    """Encrypt ``value`` with a key derived from ``secret`` (the salt or master key)."""
    return Cipher(secret).encrypt(value)


def decrypt_value(token: str, secret: str) -> str:
    """Decrypt what :func:`encrypt_value` produced; DecryptionError for the wrong key."""
    return Cipher(secret).decrypt(token)
