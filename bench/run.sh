#!/usr/bin/env bash
# One command for the benchmark: bench/run.sh [options] (see bench/README.md, or --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${BENCH_PYTHON:-$here/../.venv/bin/python}"
exec "$python" "$here/run.py" "$@"
