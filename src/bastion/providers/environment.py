"""Provider settings read from the environment (a key or base URL a config leaves out)."""

from __future__ import annotations

import os


def first_env(names: tuple[str, ...]) -> str | None:
    """The first of these environment variables that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None
