"""Secrets in management answers: shown as ``sk****ef``, never in full (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "authorization")
MASK = "****"
_SHOWN_FROM = 16  # shorter values are masked entirely


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith("_name"):  # litellm_credential_name, aws_profile_name: names
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def mask_value(value: Any) -> Any:
    """``sk-abcdef…xyz`` -> ``sk****yz``: two characters each side of a long string."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) >= _SHOWN_FROM:
        return f"{value[:2]}{MASK}{value[-2:]}"
    return MASK


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every secret-looking field masked (in nested objects too, such
    as ``extra_headers``); the others as they are."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if is_secret_name(key):
            out[key] = mask_value(value)
        elif isinstance(value, Mapping):
            out[key] = masked(value)
        else:
            out[key] = value
    return out


def without_echoed_masks(patch: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` without the secrets sent back exactly as we showed them (``sk****ef``):
    a client that edits what it read must not overwrite the real value with its mask."""
    return {
        k: v
        for k, v in patch.items()
        if not (is_secret_name(k) and k in stored and v is not None and v == mask_value(stored[k]))
    }
