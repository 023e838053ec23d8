"""New virtual keys: the secret handed out once and the hash the database keeps.

Shared by every endpoint that issues a key (``/key/generate``, ``/user/new`` with
``auto_create_key``), so all keys look alike: ``sk-`` + 22 url-safe characters, as
LiteLLM's do, stored as sha256 hex.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from bastion.storage.repositories import hash_key, key_display_name


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    key: str  # shown to the caller once, never stored
    token: str  # sha256 hex of ``key``: the primary key of virtual_keys
    key_name: str  # display form, ``sk-...abcd``


def new_key_material() -> KeyMaterial:
    key = "sk-" + secrets.token_urlsafe(16)[:22]
    return KeyMaterial(key=key, token=hash_key(key), key_name=key_display_name(key))
