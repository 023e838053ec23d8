"""``bastion reload``: ask a running gateway to re-read its config file (SIGHUP), and the
pid file ``bastion serve --pidfile`` keeps so it can be found."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

PIDFILE_ENV = "BASTION_PIDFILE"


def add_reload_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reload = sub.add_parser(
        "reload",
        help="reload a running gateway's config file (sends it SIGHUP)",
        description="Send SIGHUP to a running gateway: every worker re-reads the config "
        "file; a broken file is refused (see the gateway's log) and the old config kept.",
    )
    which = reload.add_mutually_exclusive_group()
    which.add_argument("--pid", type=int, help="the gateway's process id")
    which.add_argument(
        "--pidfile",
        default=os.environ.get(PIDFILE_ENV),
        help=f"the file `bastion serve --pidfile` wrote (default: ${PIDFILE_ENV})",
    )


def run_reload(args: argparse.Namespace) -> int:
    pid = args.pid
    if pid is None:
        if not args.pidfile:
            print(
                "bastion reload: say which gateway: --pid PID or --pidfile FILE "
                f"(the file given to `bastion serve --pidfile`, or ${PIDFILE_ENV})",
                file=sys.stderr,
            )
            return 2
        try:
            pid = read_pidfile(Path(args.pidfile))
        except ValueError as exc:
            print(f"bastion reload: {exc}", file=sys.stderr)
            return 1
    if pid <= 1:
        print(f"bastion reload: {pid} is not a gateway's process id", file=sys.stderr)
        return 1
    if not _looks_like_bastion(pid):
        print(
            f"bastion reload: process {pid} is not a running bastion gateway "
            "(a stale pid file?); nothing was sent",
            file=sys.stderr,
        )
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"bastion reload: no process {pid} (a stale pid file?)", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"bastion reload: not allowed to signal process {pid}", file=sys.stderr)
        return 1
    print(
        f"sent SIGHUP to the gateway (pid {pid}): it reloads its config file; "
        "its log says whether the file was applied or refused"
    )
    return 0


def read_pidfile(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such pid file (is the gateway running?)") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    if not text.isdigit():
        raise ValueError(f"{path}: not a pid file (expected a process id)")
    return int(text)


@contextlib.contextmanager
def pidfile(path: str | None) -> Iterator[None]:
    """Write this process's id to ``path`` while serving; removed at exit if still ours."""
    if not path:
        yield
        return
    file = Path(path)
    file.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if read_pidfile(file) == os.getpid():
                file.unlink()


def _looks_like_bastion(pid: int) -> bool:
    """Whether ``pid`` runs bastion, where /proc says; True where it cannot be told."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no such process, or no /proc at all
    except OSError:
        return True
    return b"bastion" in cmdline
