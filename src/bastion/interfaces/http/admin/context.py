"""What every management endpoint needs, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.config.model import ProxyConfig
from bastion.policy.auth import Authenticator
from bastion.services.model_catalog import ModelCatalog
from bastion.storage.database import Database


@dataclass
class AdminContext:
    config: ProxyConfig
    database: Database
    auth: Authenticator
    # Reload the in-memory auth snapshot after a change, so the next request sees it.
    refresh_keys: Callable[[], Awaitable[None]]
    clock: Callable[[], datetime]
    # Config plus stored models (/model/*, /credentials); None in tests that need neither.
    models: ModelCatalog | None = None
    # Re-read the config file in every worker (POST /config/reload); the outcome as JSON.
    reload_config: Callable[[], dict[str, Any]] | None = None
