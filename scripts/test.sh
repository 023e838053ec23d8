#!/usr/bin/env bash
# Install Bastion with its test dependencies into .venv and run the test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# Claude Code, for tests/e2e/test_claude_code.py (skipped where it cannot be installed).
if command -v npm >/dev/null && [ ! -x .node/node_modules/.bin/claude ]; then
  npm install --prefix .node --silent --no-audit --no-fund @anthropic-ai/claude-code >/dev/null 2>&1 ||
    echo "note: could not install Claude Code into .node/; its test will be skipped" >&2
fi
exec .venv/bin/python -m pytest "$@"
