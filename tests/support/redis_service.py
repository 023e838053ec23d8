"""The real Redis for tests (127.0.0.1:6379, or BASTION_TEST_REDIS_URL).

Skipped with the reason when unreachable, unless ``BASTION_REQUIRE_SERVICES=1``
(CI), where that fails instead. Every test writes under its own key prefix and
deletes only keys under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _ping(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        asyncio.run(_ping(REDIS_URL))
    except Exception as exc:
        reason = (
            f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}); "
            "start it or set BASTION_TEST_REDIS_URL"
        )
        if os.environ.get("BASTION_REQUIRE_SERVICES", "") not in ("", "0", "false"):
            pytest.fail(f"{reason} [BASTION_REQUIRE_SERVICES=1]")
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"bastion-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    asyncio.run(delete_prefix(redis_url, prefix))


class PrivateRedis:
    """A redis-server of this test's own (the shared one must not be stopped)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    @contextlib.contextmanager
    def monitor(self) -> Iterator[list[str]]:
        """The commands clients send meanwhile (upper-case names, in order; commands run
        by scripts are left out), read from ``MONITOR`` in a thread over a plain socket
        (redis-py's client drops the connection, and with it the monitor, on a read
        timeout)."""
        seen: list[str] = []
        stop = threading.Event()
        ready = threading.Event()

        def watch() -> None:
            with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
                sock.sendall(b"MONITOR\r\n")
                sock.settimeout(0.2)
                pending = b""
                while not stop.is_set():
                    try:
                        data = sock.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:  # the server was stopped
                        return
                    if not data:
                        return
                    pending += data
                    *lines, pending = pending.split(b"\r\n")
                    for line in lines:
                        if line == b"+OK":
                            ready.set()
                        elif b"] " in line and b" lua]" not in line:
                            command = line.split(b"] ", 1)[1].split(b" ", 1)[0]
                            seen.append(command.strip(b'"').decode().upper())

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        ready.wait(5)
        try:
            yield seen
        finally:
            time.sleep(0.3)  # the last commands reach the monitor
            stop.set()
            thread.join(5)
