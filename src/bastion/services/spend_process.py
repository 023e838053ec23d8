"""Spend batches written by a child process, so the database work never holds the GIL
of the process that serves requests.

Turning a batch into SQL costs tens of microseconds a record in Python (SQLAlchemy's
parameter processing); in the serving process that cost throughput and put
millisecond stalls into the latency tail. The child is started on the first batch,
receives batches as orjson over a pipe, writes each in one transaction and answers
how many records were new. If it dies, the next batch starts another; a batch it
could not write is reported back, and the caller keeps it for the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bastion.storage.spend import SpendRecord
from bastion.storage.urls import DatabaseTarget

REPLY_TIMEOUT_S = 120.0
ENCODE_SLICE = 20
WRITER_NICENESS = 10


class SpendProcess:
    def __init__(self, target: DatabaseTarget, *, write_logs: bool = True) -> None:
        self._target = target
        self._write_logs = write_logs
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    async def apply(self, records: Iterable[SpendRecord]) -> int:
        payload = await _encode(list(records))
        async with self._lock:
            conn = self._connection()
            try:
                await asyncio.to_thread(conn.send_bytes, payload)
                ready = await asyncio.to_thread(conn.poll, REPLY_TIMEOUT_S)
                if not ready:
                    raise TimeoutError("the spend writer did not answer")
                reply = orjson.loads(await asyncio.to_thread(conn.recv_bytes))
            except (OSError, EOFError, TimeoutError):
                self._kill()
                raise
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return int(reply["applied"])

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send_bytes(b"")
            if self._process is not None:
                await asyncio.to_thread(self._process.join, 10)
            self._kill()

    def _connection(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self._kill()
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            self._process = context.Process(
                target=_writer_main,
                args=(self._target, child, self._write_logs),
                name="bastion-spend-writer",
                daemon=True,
            )
            self._process.start()
            child.close()
            self._conn = parent
        return self._conn

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        if self._conn is not None:
            self._conn.close()
        self._process = None
        self._conn = None


async def _encode(records: list[SpendRecord]) -> bytes:
    """The batch as one JSON array, encoded a slice at a time so that requests waiting
    on the event loop are served between slices (a whole batch at once is milliseconds)."""
    parts: list[bytes] = []
    for start in range(0, len(records), ENCODE_SLICE):
        rows = [r.log_row() for r in records[start : start + ENCODE_SLICE]]
        parts.append(orjson.dumps(rows, default=str)[1:-1])
        await asyncio.sleep(0)
    return b"[" + b",".join(p for p in parts if p) + b"]"


def _writer_main(target: DatabaseTarget, conn: Connection, write_logs: bool) -> None:
    # Background work: when it shares a core with the serving process, requests go first.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    asyncio.run(_serve(target, conn, write_logs))


async def _serve(target: DatabaseTarget, conn: Connection, write_logs: bool) -> None:
    from bastion.services.spend_writer import record_from_row
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
                records = [record_from_row(row) for row in orjson.loads(payload)]
                result = await database.apply_spend_batch(records, write_logs=write_logs)
                conn.send_bytes(orjson.dumps({"applied": result.applied}))
            except Exception as exc:
                conn.send_bytes(orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    finally:
        await database.dispose()
