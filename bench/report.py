"""Result records, the printed table, target checks and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from processes import Memory
from wrk_runner import WrkResult

# The project's targets for one worker (see bench/README.md).
TARGET_RPS_C32 = 3_500.0
TARGET_ADDED_P50_MS = 0.4
TARGET_ADDED_P99_MS = 1.5
TARGET_RSS_MB = 100.0
TARGET_STARTUP_S = 1.5
# Foreign CPU (percent of one core) above which a measurement is flagged as noisy.
NOISE_WARN_PCT = 10.0


@dataclass(frozen=True)
class Scenario:
    stream: bool
    connections: int

    @property
    def name(self) -> str:
        return f"chat{'-stream' if self.stream else ''}-c{self.connections}"


@dataclass
class Pair:
    """One scenario measured directly against the mock and through one gateway."""

    scenario: Scenario
    target: str
    direct: WrkResult | None = None
    gateway: WrkResult | None = None
    upstream_requests: int | None = None  # what the mock saw during the gateway run
    layout: str = ""  # CPU pinning used for this scenario
    error: str | None = None

    def warnings(self) -> list[str]:
        """Not wrong, but noisy: other processes used CPU while this pair was measured."""
        found = []
        for label, res in (("direct", self.direct), (self.target, self.gateway)):
            noise = res.foreign_cpu_pct if res else None
            if noise is not None and noise > NOISE_WARN_PCT:
                found.append(f"{label}: other processes used {noise:.0f}% of a core meanwhile")
        return found

    def added(self) -> tuple[float, float] | None:
        if self.direct is None or self.gateway is None:
            return None
        return (self.gateway.p50_ms - self.direct.p50_ms, self.gateway.p99_ms - self.direct.p99_ms)

    def problems(self) -> list[str]:
        found = [self.error] if self.error else []
        for label, res in (("direct", self.direct), (self.target, self.gateway)):
            if res is not None and res.errors.total:
                found.append(f"{label}: {res.errors.total} errors ({res.errors.describe()})")
        seen = self.upstream_requests
        if self.gateway and seen is not None and seen < self.gateway.requests * 0.99:
            found.append(
                f"{self.target} answered {self.gateway.requests} requests but the mock "
                f"saw only {seen}: responses not from the upstream?"
            )
        return found


@dataclass
class TargetRun:
    name: str
    command: str
    note: str = ""
    startup_s: float | None = None
    memory_idle: Memory | None = None
    memory_after_load: Memory | None = None
    skipped: str | None = None  # why it could not be measured
    log: str = ""
    pairs: list[Pair] = field(default_factory=list)


def _fmt_rps(res: WrkResult | None) -> str:
    return f"{res.rps:>9,.0f}" if res else f"{'-':>9}"


def _fmt_ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return f"{'-':>8}"
    return f"{value:>+8.3f}" if signed else f"{value:>8.3f}"


def format_table(runs: list[TargetRun]) -> str:
    tw = max([9, *(len(run.name) + 1 for run in runs)])
    head = (
        f"{'scenario':<16} {'target':<{tw}}| {'direct rps':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"| {'gw rps':>9} {'p50 ms':>8} {'p99 ms':>8} | {'+p50 ms':>8} {'+p99 ms':>8} | notes"
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        for pair in run.pairs:
            d, g, added = pair.direct, pair.gateway, pair.added()
            problems, noisy = pair.problems(), pair.warnings()
            note = "none"
            if problems:
                note = f"!! {len(problems)} PROBLEM(S)"
            elif noisy:
                note = "noisy (busy machine)"
            lines.append(
                f"{pair.scenario.name:<16} {run.name:<{tw}}| {_fmt_rps(d)} "
                f"{_fmt_ms(d.p50_ms if d else None)} {_fmt_ms(d.p99_ms if d else None)} "
                f"| {_fmt_rps(g)} {_fmt_ms(g.p50_ms if g else None)} "
                f"{_fmt_ms(g.p99_ms if g else None)} "
                f"| {_fmt_ms(added[0] if added else None, True)} "
                f"{_fmt_ms(added[1] if added else None, True)} "
                f"| {note}"
            )
    return "\n".join(lines)


def format_process_summary(runs: list[TargetRun]) -> str:
    lines = []
    for run in runs:
        if run.name == "(none)":
            continue
        if run.skipped:
            lines.append(f"{run.name}: SKIPPED — {run.skipped}")
            continue
        startup = f"{run.startup_s:.3f} s" if run.startup_s is not None else "-"
        lines.append(f"{run.name}: {run.note}".rstrip(": "))
        lines.append(f"  startup (spawn -> 200 on /health/liveliness): {startup}")
        for label, mem in (("idle", run.memory_idle), ("after load", run.memory_after_load)):
            if mem:
                lines.append(
                    f"  RSS {label}: {mem.rss_mb:.1f} MB (peak {mem.peak_rss_mb:.1f} MB) "
                    f"pid {mem.worker_pid} [{mem.worker_cmd[:60]}]; "
                    f"tree of {mem.processes}: {mem.tree_rss_mb:.1f} MB"
                )
    return "\n".join(lines)


def _pair(run: TargetRun, stream: bool, connections: int) -> Pair | None:
    for pair in run.pairs:
        if pair.scenario == Scenario(stream, connections):
            return pair
    return None


def check_targets(run: TargetRun) -> list[tuple[str, str, bool | None]]:
    """(what, measured, passed) for each target; passed is None when not measured."""
    checks: list[tuple[str, str, bool | None]] = []

    def check(what: str, value: float | None, limit: float, fmt: str, at_least: bool) -> None:
        if value is None:
            checks.append((what, "not measured", None))
        else:
            checks.append((what, fmt.format(value), value >= limit if at_least else value <= limit))

    c32 = _pair(run, False, 32)
    if c32 and c32.problems():
        checks.append((f"rps chat-c32 >= {TARGET_RPS_C32:,.0f}", "invalid (errors)", None))
    else:
        rps = c32.gateway.rps if c32 and c32.gateway else None
        check(f"rps chat-c32 >= {TARGET_RPS_C32:,.0f}", rps, TARGET_RPS_C32, "{:,.0f}", True)
    c1 = _pair(run, False, 1)
    added = c1.added() if c1 and not c1.problems() else None
    for idx, label, limit in ((0, "p50", TARGET_ADDED_P50_MS), (1, "p99", TARGET_ADDED_P99_MS)):
        what = f"added {label} chat-c1 <= {limit} ms"
        if c1 and c1.problems():
            checks.append((what, "invalid (errors)", None))
        else:
            check(what, added[idx] if added else None, limit, "{:+.3f} ms", False)
    mem = run.memory_after_load
    rss = mem.rss_mb if mem else None
    check(f"RSS after load <= {TARGET_RSS_MB:.0f} MB", rss, TARGET_RSS_MB, "{:.1f} MB", False)
    check(f"startup <= {TARGET_STARTUP_S} s", run.startup_s, TARGET_STARTUP_S, "{:.3f} s", False)
    return checks


def format_checks(run: TargetRun) -> str:
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    lines = [f"targets for {run.name}:"]
    for what, measured, passed in check_targets(run):
        lines.append(f"  [{marks[passed]}] {what:<34} {measured}")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], runs: list[TargetRun]) -> None:
    def pair_json(pair: Pair) -> dict[str, Any]:
        added = pair.added()
        return {
            "scenario": pair.scenario.name,
            "stream": pair.scenario.stream,
            "connections": pair.scenario.connections,
            "direct": pair.direct.to_json() if pair.direct else None,
            "gateway": pair.gateway.to_json() if pair.gateway else None,
            "added_p50_ms": added[0] if added else None,
            "added_p99_ms": added[1] if added else None,
            "upstream_requests": pair.upstream_requests,
            "pinning": pair.layout,
            "problems": pair.problems(),
            "warnings": pair.warnings(),
        }

    data = {
        "meta": meta,
        "targets": [
            {
                "name": run.name,
                "command": run.command,
                "note": run.note,
                "skipped": run.skipped,
                "startup_s": run.startup_s,
                "memory_idle": asdict(run.memory_idle) if run.memory_idle else None,
                "memory_after_load": (
                    asdict(run.memory_after_load) if run.memory_after_load else None
                ),
                "log": run.log,
                "checks": [
                    {"what": w, "measured": m, "passed": p} for w, m, p in check_targets(run)
                ]
                if not run.skipped
                else [],
                "scenarios": [pair_json(p) for p in run.pairs],
            }
            for run in runs
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
