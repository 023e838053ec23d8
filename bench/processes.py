"""Start, probe, measure and stop the processes under test (Linux /proc, no psutil)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 0.5) -> tuple[int, bytes] | None:
    """GET http://127.0.0.1:port/path; (status, body), or None if nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def http_post(
    port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 30.0
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@dataclass
class Service:
    """A process we started (in its own session, so its whole group can be stopped)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace_s: float = 5.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(grace_s)
        else:
            # The leader is gone; make sure no worker of its group lingers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log_file.close()


def spawn(
    name: str,
    cmd: list[str],
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
    cpus: str | None = None,
) -> Service:
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    return Service(name, proc, port, log_path, log_file)


def wait_ready(service: Service, path: str, timeout_s: float, interval_s: float = 0.01) -> float:
    """Poll GET path every interval until 200; seconds since the call. Raises on failure."""
    start = time.perf_counter()
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if not service.alive():
            raise RuntimeError(
                f"{service.name} exited with code {service.proc.returncode} before answering "
                f"{path}; last log lines:\n{service.log_tail()}"
            )
        answer = http_get(service.port, path, timeout=max(interval_s * 20, 0.2))
        if answer is not None and answer[0] == 200:
            return time.perf_counter() - start
        time.sleep(interval_s)
    raise RuntimeError(
        f"{service.name} did not answer 200 on {path} within {timeout_s:.0f}s; "
        f"last log lines:\n{service.log_tail()}"
    )


# ---- memory -------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # field 4 (ppid) comes after the ")" that closes the command name
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


@dataclass
class Memory:
    worker_pid: int
    worker_cmd: str
    rss_mb: float
    peak_rss_mb: float  # VmHWM: the worker's high-water mark
    tree_rss_mb: float  # every process of the tree, added up
    processes: int


def worker_memory(root: int) -> Memory | None:
    """RSS of the serving process: the largest process of root's tree.

    With one worker and no fork that is root itself; when a supervisor forks a worker,
    the worker (which imports the app and holds the connections) is the largest one.
    """
    rss = {pid: status_kb(pid, "VmRSS") for pid in process_tree(root)}
    known = {pid: kb for pid, kb in rss.items() if kb is not None}
    if not known:
        return None
    worker = max(known, key=lambda pid: known[pid])
    return Memory(
        worker_pid=worker,
        worker_cmd=cmdline(worker)[:120],
        rss_mb=known[worker] / 1024,
        peak_rss_mb=(status_kb(worker, "VmHWM") or 0) / 1024,
        tree_rss_mb=sum(known.values()) / 1024,
        processes=len(known),
    )
