"""How much CPU did processes that are not ours use while we measured? (Noise detector.)

On a 2-core machine any other busy process (a test suite, a build) distorts the numbers.
Foreign CPU = the machine's user+system time (from /proc/stat) minus the CPU time of our
own processes: this runner and its reaped children (wrk), plus the live services (mock,
gateway) read from /proc/<pid>/stat. Interrupt time is left out on both sides, since
loopback networking is accounted there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from processes import process_tree

_TICK = float(os.sysconf("SC_CLK_TCK"))
T = TypeVar("T")


def _system_busy_s() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(v) for v in fields[:3])
    return (user + nice + system) / _TICK


def _pid_cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _ours_s(service_pids: list[int]) -> float:
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return own + sum(_pid_cpu_s(p) for root in service_pids for p in process_tree(root))


@dataclass
class CpuSample:
    wall: float
    busy: float
    ours: float


def sample(service_pids: list[int]) -> CpuSample:
    return CpuSample(time.monotonic(), _system_busy_s(), _ours_s(service_pids))


def foreign_cpu_pct(before: CpuSample, after: CpuSample) -> float:
    """Percent of one core used by processes that are not ours between the two samples."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    foreign = (after.busy - before.busy) - (after.ours - before.ours)
    return max(0.0, foreign / wall * 100)


def measure_foreign(service_pids: list[int], work: Callable[[], T]) -> tuple[T, float]:
    """Run work(); return its result and the foreign CPU percent during it."""
    before = sample(service_pids)
    result = work()
    return result, foreign_cpu_pct(before, sample(service_pids))


def wait_for_idle(max_wait_s: float, threshold_pct: float, window_s: float = 2.0) -> float:
    """Wait until other processes use under threshold_pct of a core over a window.

    Returns the last measured foreign CPU percent (still high if max_wait_s ran out).
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = sample([])
        time.sleep(window_s)
        busy = foreign_cpu_pct(before, sample([]))
        if busy < threshold_pct or time.monotonic() >= deadline:
            return busy
