#!/usr/bin/env bash
# Installs what the project needs and is missing; a no-op (a few seconds) when all is there.
#   - the Rust toolchain's clippy and rustfmt components (rustup)
#   - evcxr_jupyter, the Rust Jupyter kernel (cargo install, ~6 min the first time), registered as `rust`
#   - jupyter's nbclient/nbconvert/nbformat (and JupyterLab for users) from PyPI
#   - with --browser (the test command's browser test only; the run command never passes it):
#     Debian's `chromium` (apt-get, when root or with passwordless sudo; otherwise the browser test
#     is skipped) and Playwright for Python (PyPI), which drives that system browser
# Usage: bash scripts/setup.sh [--no-notebooks] [--browser]
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

notebooks=1 browser=0
for arg in "$@"; do
  case "$arg" in
    --no-notebooks) notebooks=0 ;;
    --browser) browser=1 ;;
    *) log "unknown option: $arg"; exit 2 ;;
  esac
done

if command -v rustup >/dev/null 2>&1; then
  for comp in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep "^$comp" >/dev/null; then
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

(( notebooks )) || exit 0

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
if ! "$PY" -m jupyter kernelspec list 2>/dev/null | grep -E '^\s*rust\s' >/dev/null; then
  log "registering the evcxr kernel as 'rust'"
  evcxr_jupyter --install >/dev/null
fi

(( browser )) || exit 0
can_root() { [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }
if [[ ! -x /usr/bin/chromium ]]; then
  if can_root; then
    log "installing Debian's chromium for the browser test (apt-get)"
    as_root apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
      || log "could not install chromium: the browser test will be skipped"
  else
    log "no /usr/bin/chromium and no root: the browser test will be skipped (apt-get install chromium enables it)"
  fi
fi
if ! "$PY" -c 'import playwright' >/dev/null 2>&1; then
  log "installing Playwright for Python from PyPI (it drives the system chromium; no browser download)"
  "$PY" -m pip install --quiet --disable-pip-version-check playwright \
    || log "could not install playwright: the browser test will be skipped"
fi
