"""The lean Redis client of the rate limiter, against the real Redis: replies reach their
own callers under concurrency, scripts load themselves, errors, auth, timeouts and lost
connections."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bastion.storage.resp_client import LuaScript, RespClient


def _client(redis_url: str) -> RespClient:
    return RespClient.like(Redis.from_url(redis_url))


async def test_concurrent_calls_each_get_their_own_reply(redis_url: str, redis_prefix: str) -> None:
    client = _client(redis_url)
    try:
        payloads = [uuid.uuid4().hex for _ in range(300)]
        replies = await asyncio.gather(*(client.call("ECHO", p) for p in payloads))
        assert replies == [p.encode() for p in payloads]
        counts = await asyncio.gather(
            *(client.call("INCR", f"{redis_prefix}n") for _ in range(200))
        )
        assert sorted(counts) == list(range(1, 201))
    finally:
        await client.close()


async def test_a_script_the_server_does_not_know_is_loaded_and_run(
    redis_url: str, redis_prefix: str
) -> None:
    source = f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    script = LuaScript(source, hashlib.sha1(source.encode()).hexdigest())
    client = _client(redis_url)
    try:
        assert await client.evalsha(script, [f"{redis_prefix}s"], [5]) == 5
        assert await client.evalsha(script, [f"{redis_prefix}s"], [2]) == 7  # now known
    finally:
        await client.close()


async def test_an_error_reply_is_a_redis_response_error_and_the_connection_goes_on(
    redis_url: str,
) -> None:
    client = _client(redis_url)
    try:
        with pytest.raises(ResponseError, match="unknown command"):
            await client.call("NO-SUCH-COMMAND")
        assert await client.call("PING") == b"PONG"
    finally:
        await client.close()


async def test_acl_user_and_database_from_the_url(redis_url: str, redis_prefix: str) -> None:
    admin = Redis.from_url(redis_url)
    user, secret = f"bastion-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await admin.execute_command("ACL", "SETUSER", user, "on", f">{secret}", "~*", "+@all")
    try:
        good = RespClient.like(Redis.from_url(f"redis://{user}:{secret}@127.0.0.1:6379/3"))
        assert (good.port, good._db) == (6379, 3)
        await good.call("SET", f"{redis_prefix}db3", "x")
        assert await good.call("GET", f"{redis_prefix}db3") == b"x"
        assert await admin.get(f"{redis_prefix}db3") is None  # written in database 3
        await good.call("DEL", f"{redis_prefix}db3")
        await good.close()

        bad = RespClient.like(Redis.from_url(f"redis://{user}:wrong@127.0.0.1:6379/0"))
        with pytest.raises(ResponseError, match="WRONGPASS"):
            await bad.call("PING")
        await bad.close()
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_a_call_that_times_out_fails_and_the_next_one_reconnects(
    redis_url: str, redis_prefix: str
) -> None:
    client = _client(redis_url)
    client.timeout = 0.2
    try:
        with pytest.raises(TimeoutError):
            await client.call("BLPOP", f"{redis_prefix}never", 0)
        assert await client.call("PING") == b"PONG"
    finally:
        await client.close()


async def test_calls_in_flight_fail_when_the_server_drops_the_connection(
    redis_url: str, redis_prefix: str
) -> None:
    client = _client(redis_url)
    admin = Redis.from_url(redis_url)
    try:
        name = f"bastion-test-{uuid.uuid4().hex[:8]}"
        await client.call("CLIENT", "SETNAME", name)
        blocked = asyncio.ensure_future(client.call("BLPOP", f"{redis_prefix}never", 0))
        await asyncio.sleep(0.05)
        clients = await admin.client_list()
        mine = next(c for c in clients if c.get("name") == name)
        await admin.client_kill_filter(_id=mine["id"])
        with pytest.raises(ConnectionError):
            await blocked
        assert await client.call("PING") == b"PONG"  # a new connection
    finally:
        await client.close()
        await admin.aclose()


async def test_an_unreachable_server_is_an_os_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RespClient("127.0.0.1", port)
    with pytest.raises(OSError):
        await client.call("PING")


def test_like_follows_the_redis_py_client() -> None:
    assert RespClient.like(Redis(unix_socket_path="/tmp/redis.sock")).path == "/tmp/redis.sock"
    secure = RespClient.like(Redis.from_url("rediss://cache.example:6380/2"))
    assert secure._ssl is not None and secure.port == 6380


@pytest.fixture
def unix_socket_redis(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    path = tmp_path / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(path), "--save", ""],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        for _ in range(100):
            if path.exists():
                break
            time.sleep(0.05)
        yield path
    finally:
        server.kill()
        server.wait(10)


async def test_a_unix_socket_server(unix_socket_redis: Path) -> None:
    client = RespClient.like(Redis(unix_socket_path=str(unix_socket_redis)))
    assert await client.call("PING") == b"PONG"
    await client.close()
