"""Shared by the teams/users/organizations e2e tests: a gateway with a SQLite (or
PostgreSQL) database and a master key, and a small client for the management API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.gateway import GatewayProcess

MASTER = "sk-admin-tenancy-master-6c1e"


def config(database_url: str) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/chat"}}],
        "general_settings": {"master_key": MASTER, "database_url": database_url},
    }


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'admin.db'}"


@contextmanager
def gateway(database_url: str) -> Iterator[GatewayProcess]:
    with GatewayProcess(config(database_url)) as gw:
        yield gw


class Admin:
    """httpx calls as one caller (a key), answers checked by the test."""

    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def ok(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        response = self.post(path, body) if body is not None else self.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def close(self) -> None:
        self.http.close()
