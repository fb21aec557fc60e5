#!/usr/bin/env bash
# Installs what the project needs and is missing; a no-op (a few seconds) when all is there.
#   - the Rust toolchain's clippy and rustfmt components (rustup)
#   - evcxr_jupyter, the Rust Jupyter kernel (cargo install, ~6 min the first time), registered as `rust`
#   - jupyter's nbclient/nbconvert/nbformat (and JupyterLab for users) from PyPI
# Usage: bash scripts/setup.sh [--no-notebooks]
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

if command -v rustup >/dev/null 2>&1; then
  for comp in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
      log "installing rustup component $comp"
      rustup component add "$comp"
    fi
  done
  # The standard library for Apple-Silicon-class CPUs, so clippy can check the non-x86 paths.
  if ! rustup target list --installed 2>/dev/null | grep -x aarch64-unknown-linux-gnu >/dev/null; then
    log "adding the rustup target aarch64-unknown-linux-gnu (clippy of the non-x86 paths)"
    rustup target add aarch64-unknown-linux-gnu || log "could not add it: that clippy run is skipped"
  fi
fi

[[ "${1:-}" == "--no-notebooks" ]] && exit 0

PY=${PYTHON:-python3}
if ! "$PY" -c 'import nbclient, nbformat, nbconvert' >/dev/null 2>&1; then
  log "installing jupyterlab, nbconvert, nbclient from PyPI"
  "$PY" -m pip install --quiet --disable-pip-version-check jupyterlab nbconvert nbclient
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v evcxr_jupyter >/dev/null 2>&1; then
  log "installing evcxr_jupyter (cargo install --locked; about 6 minutes on 2 cores)"
  cargo install evcxr_jupyter --locked --quiet
fi
if ! "$PY" -m jupyter kernelspec list 2>/dev/null | grep -qE '^\s*rust\s'; then
  log "registering the evcxr kernel as 'rust'"
  evcxr_jupyter --install >/dev/null
fi
