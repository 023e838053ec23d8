"""Fixtures for the end-to-end tests: one pool of mock upstreams per module."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.e2e.helpers import MockPool
from tests.support.claude_code import ClaudeCode, find_claude_code, missing_reason
from tests.support.gateway import GatewayProcess


@pytest.fixture(scope="module")
def mocks() -> Iterator[MockPool]:
    pool = MockPool()
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def claude_code() -> ClaudeCode:
    """Claude Code, or a skip saying why (a failure when BASTION_REQUIRE_SERVICES=1)."""
    found = find_claude_code()
    if found is None:
        if os.environ.get("BASTION_REQUIRE_SERVICES") == "1":
            pytest.fail(missing_reason())
        pytest.skip(missing_reason())
    return found


@pytest.fixture(autouse=True)
def _fresh_mocks(mocks: MockPool) -> None:
    """Each test starts with no queued faults and no recorded requests."""
    mocks.reset()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    """On failure, attach the tail of every gateway log the test used."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name, value in getattr(item, "funcargs", {}).items():
        gateways = (
            [value]
            if isinstance(value, GatewayProcess)
            else [
                v for v in getattr(value, "__dict__", {}).values() if isinstance(v, GatewayProcess)
            ]
        )
        for gw in gateways:
            report.sections.append((f"gateway log ({name})", gw.log()[-6000:]))
