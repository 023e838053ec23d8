"""Where wrk, the mock and the gateway run: CPU layouts per scenario (taskset / affinity).

On this kind of machine (2 vCPUs of a VM) waking a process on the *other* core is slow and
erratic: an idle vCPU halts, and waking it goes through the hypervisor. A request that
ping-pongs between cores pays that on every hop. So:

- ``auto`` (default): at 1 connection everything shares one core. Only one process runs at
  a time then (wrk waits for the gateway, which waits for the mock), so sharing costs no
  throughput, and the added latency is the gateway's own work, not cross-core wake-ups.
  At more connections, ``split``.
- ``split``: wrk and the mock on the first core, the gateway alone on the last: the
  gateway's throughput on a core of its own ("one worker"), the load generator unable to
  steal from it.
- ``same``: everything on one core, always.
- ``wrk-alone``: wrk on the first core, the mock and the gateway on the last.
- ``none``: no pinning; the scheduler decides.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from processes import process_tree

MODES = ["auto", "split", "same", "wrk-alone", "none"]
# (wrk, mock, gateway): "first" = every CPU but the last, "last" = the last CPU.
_LAYOUTS = {
    "split": ("first", "first", "last"),
    "same": ("last", "last", "last"),
    "wrk-alone": ("first", "last", "last"),
}


@dataclass(frozen=True)
class Layout:
    """CPU lists (taskset syntax) for each process; None means not pinned."""

    wrk: str | None
    mock: str | None
    gateway: str | None

    def describe(self) -> str:
        if self.wrk is None:
            return "not pinned"
        if self.wrk == self.mock == self.gateway:
            return f"wrk, mock and gateway all on CPU {self.wrk}"
        return f"wrk on CPU {self.wrk}, mock on CPU {self.mock}, gateway on CPU {self.gateway}"


@dataclass(frozen=True)
class PinPlan:
    mode: str
    single: Layout  # for 1 connection
    multi: Layout  # for more

    def layout(self, connections: int) -> Layout:
        return self.single if connections == 1 else self.multi

    def describe(self) -> str:
        if self.single == self.multi:
            return f"{self.mode}: {self.single.describe()}"
        return (
            f"{self.mode}: at 1 connection {self.single.describe()}; "
            f"at more, {self.multi.describe()}"
        )


def plan(mode: str) -> PinPlan:
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "none" or len(cpus) < 2:
        if mode != "none":
            print("only one CPU available: running without pinning", flush=True)
        free = Layout(None, None, None)
        return PinPlan("none", free, free)
    sets = {"first": ",".join(map(str, cpus[:-1])), "last": str(cpus[-1])}

    def layout(name: str) -> Layout:
        wrk, mock, gateway = (sets[which] for which in _LAYOUTS[name])
        return Layout(wrk, mock, gateway)

    if mode == "auto":
        return PinPlan(mode, layout("same"), layout("split"))
    return PinPlan(mode, layout(mode), layout(mode))


def _cpu_set(cpus: str | None) -> set[int]:
    if cpus is None:
        return set(os.sched_getaffinity(0))
    return {int(c) for c in cpus.split(",")}


# Background processes of the gateway (its spend writer): not part of the serving worker.
BACKGROUND_NAMES = ("bastion-spend",)


def pin_tree(root: int, cpus: str | None) -> None:
    """Move every thread of every process under root to cpus (None: any CPU we may use).

    The gateway's background processes go to the other CPUs instead: the targets are
    for one serving worker, and a deployment's writer runs wherever the OS puts it, not
    on the worker's core. (``--pin-background with-gateway`` keeps them together.)
    """
    wanted = _cpu_set(cpus)
    others = set(os.sched_getaffinity(0)) - wanted
    for pid in process_tree(root):
        target = wanted
        if others and BACKGROUND_WITH_GATEWAY is False and _is_background(pid):
            target = others
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), target)


BACKGROUND_WITH_GATEWAY = False  # set by run.py's --pin-background


def background_pids(root: int) -> list[int]:
    return [pid for pid in process_tree(root) if _is_background(pid)]


def _is_background(pid: int) -> bool:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return name.startswith(BACKGROUND_NAMES)
