"""Bastion benchmark: the gateway's overhead against calling the upstream directly.

For every scenario (chat completions, non-streaming and streaming, at 1 and 32 connections)
wrk hammers the fast mock directly, then the same mock through the gateway, right after one
another; the table shows both and the difference. Also measured: gateway start-up time and
the worker's resident memory. Optionally LiteLLM proxy in the same run (--litellm).

    bench/run.sh [--duration 10] [--connections 1,32] [--skip-stream] [--litellm] ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pinning
from cpu_meter import measure_foreign, wait_for_idle
from pinning import PinPlan
from processes import (
    Service,
    free_port,
    http_get,
    http_post,
    process_tree,
    spawn,
    wait_ready,
    worker_memory,
)
from report import (
    NOISE_WARN_PCT,
    Pair,
    Scenario,
    TargetRun,
    format_checks,
    format_process_summary,
    format_table,
    write_json,
)
from targets import BENCH_DIR, REPO, Target, bastion_target, litellm_target, probe
from wrk_runner import WrkResult, ensure_wrk, run_wrk

MASTER_KEY = "sk-bench-master"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the gateway against the fast mock upstream (see bench/README.md)."
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up (0: none)")
    parser.add_argument("--connections", default="1,32", help="comma list, e.g. 1,32")
    parser.add_argument("--skip-stream", action="store_true", help="non-streaming only")
    parser.add_argument(
        "--scenario-filter", default="", help="regex on scenario names (chat-c1, chat-stream-c32…)"
    )
    parser.add_argument(
        "--gateway-cmd",
        help="benchmark this command instead of bastion; {config} and {port} are filled in",
    )
    parser.add_argument("--gateway-name", help="label for --gateway-cmd (default: gateway)")
    parser.add_argument("--litellm", action="store_true", help="also benchmark LiteLLM proxy")
    parser.add_argument(
        "--virtual-key",
        action="store_true",
        help="call the gateway with a virtual key of a user in a team with budgets "
        "(spend tracked) instead of the master key",
    )
    parser.add_argument(
        "--vary-body",
        action="store_true",
        help="every request asks something new (a response cache, if on, always misses)",
    )
    parser.add_argument(
        "--direct-only", action="store_true", help="only the mock, no gateway (checks the rig)"
    )
    parser.add_argument(
        "--pin",
        choices=pinning.MODES,
        default="auto",
        help="CPU pinning (default: auto; see bench/README.md)",
    )
    parser.add_argument(
        "--mock-delay-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="the mock answers LLM calls after MS milliseconds, like a provider "
        "(e.g. to show a response-cache hit against a realistic upstream)",
    )
    parser.add_argument(
        "--mock-jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="plus up to MS milliseconds at random per call (answers that do not all take "
        "the same time, so the connections do not move in step)",
    )
    parser.add_argument(
        "--pin-background",
        choices=["apart", "with-gateway"],
        default="apart",
        help="where the gateway's spend writer runs: on the other CPUs (default) or on the "
        "gateway's CPU",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="S",
        help="first wait up to S seconds for other processes to leave the CPUs alone",
    )
    parser.add_argument("--config", type=Path, default=BENCH_DIR / "gateway.yaml")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    return parser.parse_args(argv)


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    conns = [int(c) for c in str(args.connections).split(",") if c.strip()]
    streams = [False] if args.skip_stream else [False, True]
    scenarios = [Scenario(s, c) for s in streams for c in conns]
    pattern = re.compile(args.scenario_filter)
    chosen = [s for s in scenarios if pattern.search(s.name)]
    if not chosen:
        sys.exit(f"no scenario matches {args.scenario_filter!r} (have: {scenarios})")
    return chosen


@contextmanager
def running_mock(
    out_dir: Path, pin: PinPlan, delay_ms: float = 0.0, jitter_ms: float = 0.0
) -> Iterator[Service]:
    port = free_port()
    cmd = [sys.executable, str(BENCH_DIR / "fast_mock.py"), "--port", str(port)]
    if delay_ms or jitter_ms:
        cmd += ["--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)]
    mock = spawn("fast_mock", cmd, port, out_dir / "mock.log", cpus=pin.multi.mock)
    try:
        wait_ready(mock, "/health", timeout_s=15)
        yield mock
    finally:
        mock.stop()


REDIS_ENV = "BENCH_REDIS_URL"


@contextmanager
def running_redis(config: Path, out_dir: Path, pin: PinPlan) -> Iterator[Service | None]:
    """A private redis-server when the config names ``os.environ/BENCH_REDIS_URL``.

    It stands for a Redis on another machine, so it runs on the load generator's CPUs
    (beside the mock), never on the gateway's: on this 2-vCPU box a Redis sharing the
    gateway's core takes its CPU in the middle of every request (and the system Redis,
    left to the scheduler, lands there about half the time).
    """
    if REDIS_ENV not in config.read_text():
        yield None
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("this config uses BENCH_REDIS_URL: install redis-server (apt-get install redis)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis = spawn("redis", cmd, port, out_dir / "redis.log", cpus=pin.multi.mock)
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers(port):
            if time.monotonic() > deadline or not redis.alive():
                raise RuntimeError(f"redis-server did not start:\n{redis.log_tail()}")
            time.sleep(0.05)
        yield redis
    finally:
        redis.stop()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def mock_requests(mock: Service) -> int | None:
    answer = http_get(mock.port, "/stats", timeout=2)
    return json.loads(answer[1])["requests"] if answer and answer[0] == 200 else None


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        wrk: str,
        pin: PinPlan,
        mock: Service,
        out_dir: Path,
        redis: Service | None = None,
    ) -> None:
        self.args, self.wrk, self.pin, self.mock, self.out_dir = args, wrk, pin, mock, out_dir
        self.redis = redis
        self.scenarios = build_scenarios(args)
        self.gateway_key = MASTER_KEY

    def measure(self, port: int, scenario: Scenario, pids: list[int]) -> WrkResult:
        """wrk against port; pids = [mock, gateway?], pinned first per the scenario's layout."""
        layout = self.pin.layout(scenario.connections)
        for pid, cpus in zip(pids, (layout.mock, layout.gateway), strict=False):
            pinning.pin_tree(pid, cpus)
        if self.redis is not None:  # Redis stands for another machine: beside the mock
            pinning.pin_tree(self.redis.pid, layout.mock)
        url = f"http://127.0.0.1:{port}"
        common: dict[str, Any] = {
            "connections": scenario.connections,
            "key": self.gateway_key if port != self.mock.port else MASTER_KEY,
            "stream": scenario.stream,
            "cpus": layout.wrk,
            "vary_body": self.args.vary_body,
        }
        if self.args.warmup > 0:
            run_wrk(self.wrk, url, duration_s=self.args.warmup, **common)
        background = [b for pid in pids[1:] for b in pinning.background_pids(pid)]
        serving = (  # the gateway's serving processes, when it is the one measured
            [p for pid in pids[1:] for p in process_tree(pid) if p not in background]
            if port != self.mock.port
            else []
        )
        before, serving_before = _cpu_seconds(background), _cpu_seconds(serving)
        (result, _raw), noise = measure_foreign(
            pids, lambda: run_wrk(self.wrk, url, duration_s=self.args.duration, **common)
        )
        result.foreign_cpu_pct = noise
        if serving:
            used = _cpu_seconds(serving) - serving_before
            result.gateway_cpu_pct = 100 * used / result.duration_s
            if result.requests:
                result.gateway_cpu_us_per_request = 1e6 * used / result.requests
            print(
                f"   {scenario.name:<16} gateway used {result.gateway_cpu_pct:.0f}% of a CPU, "
                f"{result.gateway_cpu_us_per_request or 0:.0f} µs per request",
                flush=True,
            )
        if background:
            used = _cpu_seconds(background) - before
            print(
                f"   {scenario.name:<16} spend writer used {100 * used / self.args.duration:.0f}%"
                " of a CPU",
                flush=True,
            )
        return result

    def direct(self, pair: Pair, pids: list[int]) -> None:
        pair.layout = self.pin.layout(pair.scenario.connections).describe()
        pair.direct = self.measure(self.mock.port, pair.scenario, pids)
        _say(pair.scenario.name, "direct", pair.direct)

    def gateway_env(self, target: Target) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["BENCH_MOCK_BASE"] = f"http://127.0.0.1:{self.mock.port}/v1"
        if self.redis is not None:
            env[REDIS_ENV] = f"redis://127.0.0.1:{self.redis.port}/0"
        return {**env, **target.env}

    def run_target(self, target: Target) -> TargetRun:
        port = free_port()
        cmd = target.command(self.args.config.resolve(), port)
        log_path = self.out_dir / f"{target.name}.log"
        run = TargetRun(target.name, " ".join(cmd), note=target.note, log=str(log_path))
        print(f"\n== {target.name}: {run.command}", flush=True)
        try:
            service = spawn(
                target.name, cmd, port, log_path, self.gateway_env(target), self.pin.multi.gateway
            )
        except OSError as exc:
            run.skipped = f"cannot start {cmd[0]}: {exc}"
            return run
        try:
            self._bench_service(target, service, run)
        except RuntimeError as exc:
            run.skipped = str(exc)
        finally:
            service.stop()
        return run

    def _bench_service(self, target: Target, service: Service, run: TargetRun) -> None:
        run.startup_s = wait_ready(service, target.ready_path, target.ready_timeout_s)
        print(f"   ready in {run.startup_s:.3f} s", flush=True)
        self.gateway_key = virtual_key(service.port) if self.args.virtual_key else MASTER_KEY
        if self.args.virtual_key:
            print("   calling with a virtual key (team and user budgets, spend tracked)")
        for stream in sorted({s.stream for s in self.scenarios}):
            why = probe(service.port, self.gateway_key, stream)
            if why:
                kind = "streaming" if stream else "non-streaming"
                raise RuntimeError(f"{kind} probe request failed: {why}")
        run.memory_idle = worker_memory(service.pid)
        for scenario in self.scenarios:
            pair = Pair(scenario, target.name)
            run.pairs.append(pair)
            self._measure_pair(pair, service)
            if not service.alive():
                pair.error = f"{target.name} died (exit {service.proc.returncode})"
                raise RuntimeError(f"{pair.error}; last log lines:\n{service.log_tail()}")
        run.memory_after_load = worker_memory(service.pid)

    def _measure_pair(self, pair: Pair, service: Service) -> None:
        pids = [self.mock.pid, service.pid]
        try:
            self.direct(pair, pids)
            before = mock_requests(self.mock)
            pair.gateway = self.measure(service.port, pair.scenario, pids)
            after = mock_requests(self.mock)
        except RuntimeError as exc:  # wrk could not run at all (e.g. connection refused)
            pair.error = str(exc)
        else:
            if before is not None and after is not None:
                pair.upstream_requests = after - before
            _say(pair.scenario.name, service.name, pair.gateway)
        for problem in pair.problems():
            print(f"   !!! {problem}", flush=True)
        for warning in pair.warnings():
            print(f"   (noise) {warning}", flush=True)

    def direct_only(self) -> TargetRun:
        run = TargetRun("(none)", "direct only")
        for scenario in self.scenarios:
            pair = Pair(scenario, "(none)")
            try:
                self.direct(pair, [self.mock.pid])
            except RuntimeError as exc:
                pair.error = str(exc)
            for note in pair.problems():
                print(f"   !!! {note}", flush=True)
            for note in pair.warnings():
                print(f"   (noise) {note}", flush=True)
            run.pairs.append(pair)
        return run


def _say(scenario: str, who: str, res: WrkResult) -> None:
    errors = f"  !!! ERRORS: {res.errors.describe()}" if res.errors.total else ""
    print(
        f"   {scenario:<16} {who:<9} {res.rps:>9,.0f} rps  p50 {res.p50_ms:.3f} ms  "
        f"p99 {res.p99_ms:.3f} ms  foreign CPU {res.foreign_cpu_pct or 0:.0f}%{errors}",
        flush=True,
    )


def build_targets(args: argparse.Namespace, out_dir: Path) -> tuple[list[Target], list[TargetRun]]:
    """Targets to run, and those already known to be skipped (with the reason)."""
    if args.direct_only:
        return [], []
    targets = [bastion_target(args.gateway_cmd, args.gateway_name)]
    skipped: list[TargetRun] = []
    if args.litellm:
        try:
            targets.append(litellm_target(out_dir / "litellm-venv.log"))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            skipped.append(TargetRun("litellm", "litellm", skipped=str(exc)))
    return targets, skipped


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def metadata(args: argparse.Namespace, wrk: str, pin: PinPlan) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip()

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": out([wrk, "-v"]).splitlines()[0] if out([wrk, "-v"]) else "?",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "pinning": pin.describe(),
        "spend_writer": args.pin_background,
        "mock_delay_ms": args.mock_delay_ms,
        "mock_jitter_ms": args.mock_jitter_ms,
        "vary_body": args.vary_body,
        "config": str(args.config),
    }


def virtual_key(port: int) -> str:
    """A key of a user in a team, both with large budgets, made through the admin API."""
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    team = json.dumps({"team_alias": f"bench-{port}", "max_budget": 1e9}).encode()
    status, _, body = http_post(port, "/team/new", team, headers)
    if status != 200:
        raise RuntimeError(f"/team/new failed: {status} {body[:200]!r}")
    team_id = json.loads(body)["team_id"]
    user = json.dumps({"max_budget": 1e9, "teams": [team_id]}).encode()
    status, _, body = http_post(port, "/user/new", user, headers)
    if status != 200:
        raise RuntimeError(f"/user/new failed: {status} {body[:200]!r}")
    key: str = json.loads(body)["key"]
    return key


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    pin = pinning.plan(args.pin)
    pinning.BACKGROUND_WITH_GATEWAY = args.pin_background == "with-gateway"
    out_dir = args.results_dir / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BASTION_DB_PATH", str(out_dir / "bastion.db"))
    meta = metadata(args, wrk, pin)
    print(f"CPU pinning: {pin.describe()}")
    print(f"wrk: {meta['wrk']}; {args.duration:g} s per run after {args.warmup:g} s warm-up")

    targets, runs = build_targets(args, out_dir)
    if args.wait_idle > 0:
        print(f"waiting up to {args.wait_idle:g} s for an idle machine ...", flush=True)
        busy = wait_for_idle(args.wait_idle, NOISE_WARN_PCT)
        print(f"other processes use {busy:.0f}% of a core; starting", flush=True)
    with (
        running_mock(out_dir, pin, args.mock_delay_ms, args.mock_jitter_ms) as mock,
        running_redis(args.config, out_dir, pin) as redis,
    ):
        print(f"fast mock on port {mock.port} (pid {mock.pid})", flush=True)
        if redis is not None:
            print(f"private redis-server on port {redis.port} (pid {redis.pid})", flush=True)
        bench = Bench(args, wrk, pin, mock, out_dir, redis)
        measured = [bench.run_target(t) for t in targets] if targets else [bench.direct_only()]
    runs = measured + runs

    print("\n" + format_table(runs))
    print("\n" + format_process_summary(runs))
    for run in runs:
        if not run.skipped and run.name != "(none)":
            print("\n" + format_checks(run))
    json_path = out_dir / "results.json"
    write_json(json_path, meta, runs)
    print(f"\nresults: {json_path}")
    return report_failures(runs)


def report_failures(runs: list[TargetRun]) -> int:
    """Print every problem loudly; non-zero exit if a measurement is not trustworthy."""
    problems = [
        f"{r.name} {p.scenario.name}: {m}" for r in runs for p in r.pairs for m in p.problems()
    ]
    noisy = [
        f"{r.name} {p.scenario.name}: {m}" for r in runs for p in r.pairs for m in p.warnings()
    ]
    skipped = [f"{r.name} SKIPPED: {r.skipped}" for r in runs if r.skipped]
    if noisy:
        print("\nnoise: the machine was busy with other work during these measurements;")
        print("their numbers are pessimistic (rerun on an idle machine to compare):")
        for line in noisy:
            print(f"  - {line}")
    if not problems and not skipped:
        return 0
    bar = "!" * 78
    print(f"\n{bar}")
    for line in skipped + problems:
        print(f"!! {line}")
    print(bar)
    # LiteLLM failing to run is reported but does not fail the run; anything else does.
    fatal = bool(problems) or any(r.skipped and r.name != "litellm" for r in runs)
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
