#!/usr/bin/env bash
# Create (or reuse) a virtualenv OUTSIDE the repo with LiteLLM proxy, for comparison runs.
#
#   bench/litellm_venv.sh            # -> $BENCH_LITELLM_VENV (default /tmp/bench-litellm-venv)
#
# Installs litellm[proxy]==$LITELLM_VERSION (default 1.109.1). If that exact version is not
# on the index, falls back to the newest 1.x and says so. Prints the venv path on the last
# line of stdout. Idempotent: an existing venv with a working `litellm` is reused.
set -euo pipefail

VENV="${BENCH_LITELLM_VENV:-/tmp/bench-litellm-venv}"
WANT="${LITELLM_VERSION:-1.109.1}"
PYTHON="${BENCH_LITELLM_PYTHON:-python3}"

log() { echo "[litellm-venv] $*" >&2; }

if [[ -x "$VENV/bin/litellm" ]] && "$VENV/bin/python" -c "import litellm.proxy.proxy_server" \
  >/dev/null 2>&1; then
  have="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("litellm"))')"
  log "reusing $VENV (litellm $have)"
  echo "$VENV"
  exit 0
fi

log "creating $VENV with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip >&2

if "$VENV/bin/pip" install --quiet "litellm[proxy]==$WANT" >&2; then
  log "installed litellm[proxy]==$WANT"
else
  log "WARNING: litellm[proxy]==$WANT is not installable here; falling back to newest 1.x"
  "$VENV/bin/pip" install --quiet "litellm[proxy]>=1,<2" >&2
  got="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("litellm"))')"
  log "WARNING: installed litellm $got instead of $WANT"
fi

echo "$VENV"
