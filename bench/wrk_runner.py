"""Install, run and parse wrk (https://github.com/wg/wrk)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("chat.lua")
_UNITS_US = {"us": 1.0, "ms": 1_000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3.6e9}


@dataclass
class WrkErrors:
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    status: int = 0  # non-2xx/3xx responses

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.timeout + self.status

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v]
        return ", ".join(parts) or "none"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: WrkErrors = field(default_factory=WrkErrors)
    source: str = "text"  # "lua" when read from chat.lua's done() line
    foreign_cpu_pct: float | None = None  # CPU used by other processes meanwhile (noise)
    # The gateway's serving process(es), without its spend writer: CPU per answered request.
    gateway_cpu_pct: float | None = None
    gateway_cpu_us_per_request: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"]["total"] = self.errors.total
        return data


def ensure_wrk() -> str:
    """Return the wrk path, installing Debian's package (apt-get) if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed and this is not root: run `sudo apt-get install -y wrk`")
    print("wrk not found: installing it with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str, check: bool) -> int:
        cmd = ["apt-get", *args]
        return subprocess.run(cmd, env=env, capture_output=True, check=check).returncode

    if apt("install", "-y", "-q", "wrk", check=False) != 0:
        apt("update", "-q", check=False)
        apt("install", "-y", "-q", "wrk", check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("apt-get install wrk did not provide a `wrk` binary")
    return found


def wrk_command(
    wrk: str, url: str, connections: int, duration_s: float, cpus: str | None
) -> list[str]:
    threads = max(1, min(connections, 2))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    duration_s: float,
    key: str,
    stream: bool,
    cpus: str | None = None,
    vary_body: bool = False,
) -> tuple[WrkResult, str]:
    """Run one wrk measurement; return the parsed result and wrk's raw output."""
    env = {
        **os.environ,
        "BENCH_KEY": key,
        "BENCH_STREAM": "1" if stream else "0",
        "BENCH_VARY": "1" if vary_body else "0",
    }
    cmd = wrk_command(wrk, url, connections, duration_s, cpus)
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {output.strip()[-500:]}")
    return parse_wrk_output(output), output


def parse_wrk_output(text: str) -> WrkResult:
    """Parse wrk output: the BENCH_JSON line from chat.lua if present, else the text summary."""
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return _from_lua_json(json.loads(line.removeprefix("BENCH_JSON ")))
    return _from_text(text)


def _from_lua_json(data: dict[str, Any]) -> WrkResult:
    duration_s = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"],
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        errors=WrkErrors(**data["errors"]),
        source="lua",
    )


def _duration_us(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise ValueError(f"unrecognised wrk duration {value!r}")
    return float(match.group(1)) * _UNITS_US[match.group(2)]


def _from_text(text: str) -> WrkResult:
    def grab(pattern: str) -> re.Match[str]:
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise ValueError(f"wrk output has no match for {pattern!r}:\n{text}")
        return match

    pct = {p: _duration_us(grab(rf"^\s+{p}%\s+(\S+)$").group(1)) / 1e3 for p in ("50", "90", "99")}
    done = grab(r"(\d+) requests in ([\d.]+\w+),")
    errors = WrkErrors()
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors.connect, errors.read, errors.write, errors.timeout = map(int, sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors.status = int(non2xx.group(1))
    return WrkResult(
        requests=int(done.group(1)),
        duration_s=_duration_us(done.group(2)) / 1e6,
        rps=float(grab(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=pct["50"],
        p90_ms=pct["90"],
        p99_ms=pct["99"],
        errors=errors,
    )
