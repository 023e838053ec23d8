"""Run the real ``bastion serve`` in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """``bastion serve`` on a free loopback port, with its log captured to a file."""

    def __init__(
        self,
        config: dict[str, Any] | str | None,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="bastion-test-")
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = Path(self._dir.name) / "config.yaml"
            text = config if isinstance(config, str) else yaml.safe_dump(config)
            self.config_path.write_text(text)
        self.log_path = Path(self._dir.name) / "gateway.log"
        self._env = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
        # Each gateway gets its own database and spill file unless the test names them.
        self._env["BASTION_DB_PATH"] = str(Path(self._dir.name) / "bastion.db")
        self._env["BASTION_SPEND_SPILL_PATH"] = str(Path(self._dir.name) / "spend-spill.jsonl")
        self._env.update(env or {})
        self._args = args or []
        self._startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        command = [
            sys.executable,
            "-m",
            "bastion",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self._args,
        ]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=self._env
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited at startup:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start in {self._startup_timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()
