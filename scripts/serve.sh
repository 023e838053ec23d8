#!/usr/bin/env bash
# Install Bastion into .venv and run it. Extra arguments go to `bastion serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/bastion serve "$@"
