"""The lean Redis client of the per-request calls, against the real Redis: replies reach
their own callers under concurrency, queued writes ride behind calls (or leave after the
linger), scripts load themselves, errors, auth, timeouts and lost connections."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def _replies() -> tuple[list[asyncio.Future[Any]], asyncio.Event, Callable[[Any], None]]:
    got: list[asyncio.Future[Any]] = []
    arrived = asyncio.Event()

    def then(reply: asyncio.Future[Any]) -> None:
        got.append(reply)
        arrived.set()

    return got, arrived, then


async def test_queued_writes_ride_behind_the_next_call_in_one_write(
    redis_url: str, redis_prefix: str
) -> None:
    client = _client(redis_url)
    try:
        await client.call("PING")  # connected
        protocol = client._protocol
        assert protocol is not None and protocol._transport is not None
        writes: list[bytes] = []
        real_write = protocol._transport.write

        def counting_write(data: bytes) -> None:
            writes.append(data)
            real_write(data)

        protocol._transport.write = counting_write  # type: ignore[method-assign]
        got, _, then = _replies()
        for i in range(3):
            client.queue("SET", f"{redis_prefix}q{i}", str(i), then=then)
        assert writes == []  # waiting for a call to carry them
        assert await client.call("MGET", *(f"{redis_prefix}q{i}" for i in range(3))) == [
            None,
            None,
            None,
        ]  # the call goes first, its writes right behind it
        assert len(writes) == 1
        await asyncio.sleep(0)
        assert [r.result() for r in got] == [b"OK"] * 3
        assert await client.call("GET", f"{redis_prefix}q2") == b"2"
    finally:
        await client.close()


async def test_queued_writes_leave_on_their_own_without_a_call(
    redis_url: str, redis_prefix: str
) -> None:
    client = _client(redis_url)
    try:
        got, arrived, then = _replies()
        client.queue("SET", f"{redis_prefix}alone", "x", then=then)
        await asyncio.wait_for(arrived.wait(), 2)  # connected and sent after the linger
        assert got[0].result() == b"OK"
        check = _client(redis_url)
        assert await check.call("GET", f"{redis_prefix}alone") == b"x"
        await check.close()
    finally:
        await client.close()


async def test_a_queued_script_the_server_does_not_know_is_sent_whole(
    redis_url: str, redis_prefix: str
) -> None:
    script = LuaScript.of(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    client = _client(redis_url)
    try:
        got, arrived, then = _replies()
        client.queue_script(script, [f"{redis_prefix}qs"], [4], then)
        await asyncio.wait_for(arrived.wait(), 2)
        assert got[0].result() == 4
        assert await client.call("SCRIPT", "EXISTS", script.sha) == [1]  # EVAL loaded it
    finally:
        await client.close()


async def test_queued_writes_to_an_unreachable_server_fail_to_their_callbacks() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RespClient("127.0.0.1", port)
    got, arrived, then = _replies()
    client.queue("SET", "k", "v", then=then)
    client.queue("SET", "k2", "v")  # nobody looks at this failure: dropped quietly
    await asyncio.wait_for(arrived.wait(), 2)
    assert isinstance(got[0].exception(), OSError)
    await client.close()


async def test_a_queued_write_that_gets_no_answer_times_out(
    redis_url: str, redis_prefix: str
) -> None:
    client = _client(redis_url)
    client.timeout = 0.2
    try:
        got, arrived, then = _replies()
        client.queue("BLPOP", f"{redis_prefix}never", 0, then=then)
        started = time.monotonic()
        await asyncio.wait_for(arrived.wait(), 3)
        assert isinstance(got[0].exception(), TimeoutError)
        assert time.monotonic() - started < 1.5
        assert await client.call("PING") == b"PONG"  # a new connection
    finally:
        await client.close()
