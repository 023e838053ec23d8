"""Run Claude Code (npm ``@anthropic-ai/claude-code``) against a gateway, offline, for tests.

``scripts/test.sh`` installs it into the repo-local, git-ignored ``.node/`` folder when npm
is present (``npm install --prefix .node @anthropic-ai/claude-code``); ``claude`` on PATH
is used otherwise. Each run gets a fresh HOME and working directory, and an environment
built from scratch: no inherited credentials, proxies or Claude settings, telemetry,
auto-update and every other non-essential request turned off, so the only traffic is to
the gateway::

    claude = find_claude_code()          # None when not installed
    result = claude.run("say hi", gateway_url=gw.url, api_key=MASTER_KEY, args=["--tools", "Read"])
    assert result.returncode == 0, result.describe()

The ``claude_code`` fixture (tests/e2e/conftest.py) gives a ``ClaudeCode`` or skips the
test with the reason, or fails it when ``BASTION_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = REPO_ROOT / ".node"
LOCAL_BINARY = NODE_PREFIX / "node_modules" / ".bin" / "claude"
INSTALL_HINT = "npm install --prefix .node @anthropic-ai/claude-code"

# Everything Claude Code may reach besides the API: off.
OFFLINE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
    "NO_PROXY": "*",
    "no_proxy": "*",
}


@dataclass
class ClaudeCodeResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"claude exited {self.returncode}\n--- stdout ---\n{self.stdout[-4000:]}"
            f"\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@dataclass(frozen=True)
class ClaudeCode:
    binary: Path
    version: str

    def run(
        self,
        prompt: str,
        *,
        gateway_url: str,
        api_key: str,
        args: Sequence[str] = (),
        timeout: float = 90.0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ClaudeCodeResult:
        """``claude -p PROMPT [args]`` with ANTHROPIC_BASE_URL at the gateway.

        The key goes in ``ANTHROPIC_API_KEY`` (sent as ``x-api-key``). Raises
        ``subprocess.TimeoutExpired`` (after killing it) if it runs past ``timeout``.
        """
        with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
            workdir = cwd or Path(home) / "work"
            workdir.mkdir(parents=True, exist_ok=True)
            run_env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": home,
                "XDG_CONFIG_HOME": str(Path(home) / ".config"),
                "TMPDIR": home,
                "LANG": "C.UTF-8",
                "TERM": "dumb",
                "ANTHROPIC_BASE_URL": gateway_url,
                "ANTHROPIC_API_KEY": api_key,
                **OFFLINE_ENV,
                **(env or {}),
            }
            command = [str(self.binary), "-p", prompt, *args]
            completed = subprocess.run(
                command,
                cwd=workdir,
                env=run_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        return ClaudeCodeResult(command, completed.returncode, completed.stdout, completed.stderr)


def claude_binary() -> Path | None:
    """The repo-local install, else ``claude`` on PATH."""
    if os.access(LOCAL_BINARY, os.X_OK):
        return LOCAL_BINARY
    found = shutil.which("claude")
    return Path(found) if found else None


@functools.cache
def find_claude_code() -> ClaudeCode | None:
    """Claude Code if installed and runnable (``claude --version`` answers)."""
    binary = claude_binary()
    if binary is None:
        return None
    try:
        probe = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", ""), "HOME": tempfile.gettempdir(), **OFFLINE_ENV},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    return ClaudeCode(binary, probe.stdout.strip())


def missing_reason() -> str:
    if shutil.which("npm") is None:
        return (
            "Claude Code is not installed and npm is missing "
            f"(install node/npm, then run `{INSTALL_HINT}`)"
        )
    if claude_binary() is None:
        return f"Claude Code is not installed: run `{INSTALL_HINT}` (scripts/test.sh does)"
    return f"Claude Code at {claude_binary()} does not run (`claude --version` failed)"
