"""Spend batches written by a child process, so the database work never holds the GIL
of the process that serves requests.

Turning a batch into SQL costs tens of microseconds a record in Python; in the serving
process that cost throughput and put millisecond stalls into the latency tail. The child
is started on the first batch, receives batches over a socket pair (JSON arrays of the
records the spend writer encoded when it queued them), writes each in one transaction
and answers how many records were new. If it dies, the next batch starts another; a
batch it could not write is reported back, and the caller keeps it for the next try.

The serving side talks to the socket through the event loop (no threads: a thread
handing the GIL back and forth with the request loop showed up as latency spikes).

The child yields the CPU to requests (:mod:`bastion.services.writer_priority`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import struct
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bastion.services.writer_priority import lower_priority
from bastion.storage.spend import SpendRecord
from bastion.storage.urls import DatabaseTarget

logger = logging.getLogger("bastion.spend")

REPLY_TIMEOUT_S = 120.0
# Records per message (and per transaction): bounds the writer's memory and the time a
# transaction holds its locks when it catches up on a large backlog.
MAX_MESSAGE_RECORDS = 5_000
_HEADER = struct.Struct("!i")  # multiprocessing.Connection's framing: a signed length


class SpendProcess:
    def __init__(self, target: DatabaseTarget, *, write_logs: bool = True) -> None:
        self._target = target
        self._write_logs = write_logs
        self._process: Any = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None

    def start_soon(self) -> None:
        """Start the writer now, in the background, rather than with the first batch: its
        imports then run while the gateway is quiet, not under the first load."""
        self._starting = asyncio.create_task(self._start())

    async def _start(self) -> None:
        try:
            async with self._lock:
                await self._connection()
        except Exception as exc:  # the first batch tries again
            logger.warning("could not start the spend writer: %s: %s", type(exc).__name__, exc)

    async def apply(self, records: list[bytes]) -> int:
        """Write encoded records (``spend_writer.encode_record``); returns how many were new."""
        applied = 0
        for start in range(0, len(records), MAX_MESSAGE_RECORDS):
            applied += await self._send(records[start : start + MAX_MESSAGE_RECORDS])
        return applied

    async def _send(self, records: list[bytes]) -> int:
        payload = b"[" + b",".join(records) + b"]"
        async with self._lock:
            reader, writer = await self._connection()
            try:
                writer.write(_HEADER.pack(len(payload)))
                writer.write(payload)
                await writer.drain()
                reply = orjson.loads(await asyncio.wait_for(_read_message(reader), REPLY_TIMEOUT_S))
            except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
                self._kill()
                raise
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return int(reply["applied"])

    async def close(self) -> None:
        async with self._lock:
            if self._streams is not None:
                _, writer = self._streams
                with contextlib.suppress(OSError):
                    writer.write(_HEADER.pack(0))
                    await writer.drain()
            if self._process is not None:
                await asyncio.to_thread(self._process.join, 10)
            self._kill()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._process is None or not self._process.is_alive() or self._streams is None:
            self._kill()
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe(duplex=True)  # a Unix socket pair
            self._process = context.Process(
                target=_writer_main,
                args=(self._target, child, self._write_logs),
                name="bastion-spend-writer",
                daemon=True,
            )
            self._process.start()
            child.close()
            sock = socket.socket(fileno=os.dup(parent.fileno()))
            parent.close()
            sock.setblocking(False)
            self._streams = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return self._streams

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        if self._streams is not None:
            _, writer = self._streams
            writer.transport.abort()
        self._process = None
        self._streams = None


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return await reader.readexactly(size)


def _writer_main(target: DatabaseTarget, conn: Connection, write_logs: bool) -> None:
    # The gateway decides when the writer stops (it sends an empty message after the last
    # batch): a Ctrl-C or a SIGTERM sent to the whole process group must not kill it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lower_priority()  # before any thread starts: the database driver's thread inherits it
    asyncio.run(_serve(target, conn, write_logs))


async def _serve(target: DatabaseTarget, conn: Connection, write_logs: bool) -> None:
    from bastion.storage.database import Database

    database = Database.connect(target)
    try:
        while True:
            try:
                payload = conn.recv_bytes()
            except EOFError:
                return
            if not payload:
                return
            try:
                records = [SpendRecord.from_wire(values) for values in orjson.loads(payload)]
                result = await database.apply_spend_batch(records, write_logs=write_logs)
                conn.send_bytes(orjson.dumps({"applied": result.applied}))
            except Exception as exc:
                conn.send_bytes(orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    finally:
        await database.dispose()
