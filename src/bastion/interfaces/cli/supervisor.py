"""``bastion serve --workers N``: uvicorn's supervisor, with SIGHUP forwarded to the workers.

uvicorn's own supervisor (``Multiprocess``) answers SIGHUP with a rolling restart:
each worker is replaced by a fresh process once that one is ready. Bastion reloads
in place instead (bastion/reload.py): the supervisor forwards SIGHUP to every
worker, and each re-reads the config file and swaps it in. Nothing is restarted,
so keep-alive connections stay open, in-flight requests and streams are not
handed a shutdown, and a worker's in-memory state (cooldowns, latency samples,
local rate-limit counters, the response cache, the key cache) survives; a broken
file is refused by each worker, which keeps serving. SIGTERM, SIGINT, SIGTTIN and
SIGTTOU keep uvicorn's meaning.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from bastion.reload import SUPERVISOR_ENV

logger = logging.getLogger("bastion.supervisor")


class ReloadingSupervisor(Multiprocess):
    def handle_hup(self) -> None:
        pids = [p.pid for p in self.processes if p.pid is not None]
        logger.info("SIGHUP: asking %d workers to reload the config file", len(pids))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:  # it just died: its replacement reads the file anew
                logger.info("worker %d is gone; its replacement reads the current file", pid)


def run_workers(app: str, workers: int, options: dict[str, Any]) -> None:
    """What ``uvicorn.run(app, factory=True, workers=N)`` does, with our supervisor."""
    config = uvicorn.Config(app, factory=True, workers=workers, **options)
    # The workers (spawned processes) learn who forwards SIGHUP to them.
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    sock = config.bind_socket()
    if "target" in inspect.signature(Multiprocess.__init__).parameters:  # older uvicorn
        supervisor = ReloadingSupervisor(  # type: ignore[call-arg,unused-ignore]
            config, target=uvicorn.Server(config).run, sockets=[sock]
        )
    else:
        supervisor = ReloadingSupervisor(config, sockets=[sock])
    supervisor.run()
