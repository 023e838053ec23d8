"""A lean, pipelined Redis client for the calls a request makes.

Every request that has limits, shared budgets or a Redis response cache makes one
Redis call before it goes upstream (the admission script, which also reads the
budget totals and the cache entry) and leaves a few writes behind (settling its
counters, adding its spend, storing its answer). Through redis-py's asyncio client
such a call cost about 60 µs of gateway CPU and, with 32 requests arriving together,
0.6-0.9 ms of latency at the median. Here one connection writes each command as it
comes and matches replies in order (Redis answers a connection's commands in order),
parsed by hiredis: about 9 µs and 0.15 ms (``bench/README.md``).

- :meth:`RespClient.call` sends at once and waits for the reply (the admission).
- :meth:`RespClient.queue` is for writes nobody waits on (settling counters, adding
  spend, storing an answer): they wait in an outbox and leave behind the next
  :meth:`call`, in its socket write, or after :data:`LINGER_S` when no call comes.
  Their replies reach callbacks. Under load a request's writes then cost no system
  call and no wake-up of Redis of their own: every message to Redis is one request's
  admission, carrying the writes of the requests that finished since.

No timer per call: a watchdog looks at the oldest call in flight every half
timeout, and when it has waited longer than the timeout the connection is dropped,
which fails every call in flight with :class:`TimeoutError` (the users' Redis link
then marks Redis down and falls back). The next call connects again.

Only what the gateway needs: commands in, replies out, EVALSHA that loads its script
when the server does not know it, AUTH and SELECT on connect, TLS or a Unix socket.
Health pings and the periodic routing sync stay on redis-py, whose connection
settings this one copies (:meth:`RespClient.like`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl as ssl_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.exceptions import NoScriptError, ResponseError

CALL_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 0.5
# How long queued writes wait for a call to carry them before they leave on their own.
LINGER_S = 0.002

OnReply = Callable[["asyncio.Future[Any]"], None]


@dataclass(frozen=True)
class LuaScript:
    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> LuaScript:
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self._reader = hiredis.Reader()
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._sent_at: collections.deque[float] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._timeout = timeout
        self._watchdog: asyncio.TimerHandle | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        pending, sent_at = self._pending, self._sent_at
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            waiting = pending.popleft()
            sent_at.popleft()
            if waiting.done():  # its caller was cancelled: the reply is dropped in order
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                error = NoScriptError if message.startswith("NOSCRIPT") else ResponseError
                waiting.set_exception(error(message))
            else:
                waiting.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:
            self.lost = exc or ConnectionError("connection to Redis closed")
        self._transport = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        failure = self.lost
        while self._pending:
            waiting = self._pending.popleft()
            if not waiting.done():
                if isinstance(failure, TimeoutError):
                    waiting.set_exception(TimeoutError(str(failure)))
                else:
                    waiting.set_exception(ConnectionError(f"connection to Redis lost: {failure}"))
        self._sent_at.clear()

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(
        self,
        args: tuple[Any, ...],
        behind: Sequence[tuple[bytes, asyncio.Future[Any]]] = (),
    ) -> asyncio.Future[Any]:
        """Write one command, and the packed commands ``behind`` it, in one write."""
        waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.send_many([(hiredis.pack_command(args), waiting), *behind])
        return waiting

    def send_many(self, batch: Sequence[tuple[bytes, asyncio.Future[Any]]]) -> None:
        """Packed commands, in one write."""
        if self._transport is None:
            raise ConnectionError("not connected to Redis")
        loop = asyncio.get_running_loop()
        now = loop.time()
        for _, waiting in batch:
            self._pending.append(waiting)
            self._sent_at.append(now)
        if len(batch) == 1:
            self._transport.write(batch[0][0])
        else:
            self._transport.write(b"".join(packed for packed, _ in batch))
        self._watch(loop)

    def close(self, reason: BaseException | None = None) -> None:
        if reason is not None and self.lost is None:
            self.lost = reason
        if self._transport is not None:
            self._transport.abort()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout / 2, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        if not self._sent_at:
            return
        if loop.time() - self._sent_at[0] > self._timeout:
            self.close(TimeoutError(f"Redis did not answer within {self._timeout:g}s"))
            return
        self._watch(loop)


class RespClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str | None = None,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        ssl: ssl_module.SSLContext | None = None,
        timeout: float = CALL_TIMEOUT_S,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self._username, self._password, self._db, self._ssl = username, password, db, ssl
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._outbox: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._linger: asyncio.TimerHandle | None = None
        self._connect_tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def like(cls, client: Any) -> RespClient:
        """One reaching the same server, as the same user, as a redis-py client."""
        kwargs = client.connection_pool.connection_kwargs
        context = None
        if "ssl" in client.connection_pool.connection_class.__name__.lower():
            context = ssl_module.create_default_context()
            if kwargs.get("ssl_cert_reqs") in ("none", ssl_module.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
        return cls(
            kwargs.get("host") or "localhost",
            int(kwargs.get("port") or 6379),
            path=kwargs.get("path"),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            db=int(kwargs.get("db") or 0),
            ssl=context,
        )

    async def call(self, *args: Any) -> Any:
        """Send now, with the queued writes behind it, and wait for the reply."""
        protocol = self._protocol
        if protocol is None or not protocol.open:
            protocol = await self._connect()
        if not self._outbox:
            return await protocol.send(args)
        behind, self._outbox = self._outbox, []
        return await protocol.send(args, behind)

    def queue(self, *args: Any, then: OnReply | None = None) -> asyncio.Future[Any]:
        """Send behind the next :meth:`call`, or within :data:`LINGER_S`; ``then`` gets
        the future when the reply (or the failure) is in. Never raises; a failure no
        ``then`` looks at is dropped silently."""
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[Any] = loop.create_future()
        waiting.add_done_callback(then or _retrieve)
        self._outbox.append((hiredis.pack_command(args), waiting))
        if self._linger is None:
            self._linger = loop.call_later(LINGER_S, self._flush)
        return waiting

    def queue_script(
        self, script: LuaScript, keys: Sequence[Any], args: Sequence[Any], then: OnReply
    ) -> None:
        """EVALSHA through :meth:`queue`; a server that does not know the script gets it
        whole (EVAL, which also loads it)."""

        def loaded(reply: asyncio.Future[Any]) -> None:
            if not reply.cancelled() and isinstance(reply.exception(), NoScriptError):
                self.queue("EVAL", script.source, len(keys), *keys, *args, then=then)
            else:
                then(reply)

        self.queue("EVALSHA", script.sha, len(keys), *keys, *args, then=loaded)

    async def evalsha(self, script: LuaScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or flushed server: load it, once
            await self.call("SCRIPT", "LOAD", script.source)
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._outbox:
            self._flush()
        if self._connect_tasks:
            await asyncio.gather(*self._connect_tasks, return_exceptions=True)
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None

    def _flush(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        protocol = self._protocol
        if protocol is not None and protocol.open:
            protocol.send_many(batch)
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(batch))
        self._connect_tasks.add(task)
        task.add_done_callback(self._connect_tasks.discard)

    async def _connect_and_send(self, batch: list[tuple[bytes, asyncio.Future[Any]]]) -> None:
        try:
            protocol = await self._connect()
            protocol.send_many(batch)
        except Exception as exc:  # every failure reaches the callers
            failure = exc if isinstance(exc, OSError) else ConnectionError(str(exc))
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(failure)

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.open:
                return self._protocol
            loop = asyncio.get_running_loop()
            timeout = self.timeout
            if self.path:
                opening = loop.create_unix_connection(lambda: _Protocol(timeout), self.path)
            else:
                opening = loop.create_connection(
                    lambda: _Protocol(timeout),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
            _, protocol = await asyncio.wait_for(opening, CONNECT_TIMEOUT_S)
            try:
                if self._password:
                    user = (self._username,) if self._username else ()
                    auth = ("AUTH", *user, self._password)
                    await asyncio.wait_for(protocol.send(auth), self.timeout)
                if self._db:
                    await asyncio.wait_for(protocol.send(("SELECT", self._db)), self.timeout)
            except BaseException:
                protocol.close()
                raise
            self._protocol = protocol
            return protocol


def _retrieve(reply: asyncio.Future[Any]) -> None:
    if not reply.cancelled():
        reply.exception()
