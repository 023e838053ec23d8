"""The spend writer's CPU priority: background work that yields to requests.

The writer process may share cores with the gateway. It runs niced, so a busy
gateway gets most of the CPU while the writer still gets enough to keep up (spend
never piles up in memory): at nice 5 it may take a quarter of a core it shares with
one busy gateway process, several times what it needs per request.

A niced task still runs a whole time slice once picked, and with the default slice
(about 1.5-3 ms) that showed in the latency tail of requests on the same core; so,
where the kernel supports it (Linux 6.12+, EEVDF), the writer also asks for the
shortest slice (0.1 ms). On one saturated core the writer still costs requests some
tail latency (its CPU has to come from somewhere); on a machine with a spare core it
costs them nothing.

Idle priority (``SCHED_IDLE``) would yield better still, but an idle task on a
saturated core barely runs, and leaving that policy when the writer falls behind
needs privilege (``CAP_SYS_NICE``) that a gateway should not require.

Both settings are per thread on Linux: they are made before the writer starts any
thread (the database driver runs its own), which inherit them. Both are best effort.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform

NICENESS = 5
SLICE_NS = 100_000  # the kernel's minimum custom slice
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}


PROCESS_NAME = b"bastion-spend"  # what ps/top show (and bench/pinning.py looks for)


def lower_priority() -> bool:
    """Name the process, nice the calling thread and ask for short slices; True if short
    slices were granted."""
    _name_process()
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)
    return short_slices()


def _name_process() -> None:
    if platform.system() != "Linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)  # PR_SET_NAME


def short_slices() -> bool:
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None or not hasattr(os, "getpriority"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        attr = _SchedAttr(
            size=ctypes.sizeof(_SchedAttr),
            sched_policy=0,  # SCHED_OTHER
            sched_nice=os.getpriority(os.PRIO_PROCESS, 0),
            sched_runtime=SLICE_NS,
        )
        return int(libc.syscall(number, 0, ctypes.byref(attr), 0)) == 0
    except (OSError, AttributeError):
        return False


class _SchedAttr(ctypes.Structure):
    """``struct sched_attr`` of sched_setattr(2)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]
