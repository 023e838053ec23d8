"""The master key a config sets: ``general_settings.master_key``, else ``LITELLM_MASTER_KEY``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bastion.config.model import ProxyConfig

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


def master_key_of(config: ProxyConfig, env: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if env is None else env
    return config.general_settings.master_key or environ.get(MASTER_KEY_ENV) or None
