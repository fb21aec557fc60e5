#!/usr/bin/env bash
# The whole test suite: installs what is missing, then formatting, clippy (warnings are errors),
# every cargo test, and every notebook executed headless and checked for errors, panics and
# missing figures.
# Usage: bash scripts/test.sh [--no-notebooks]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace --quiet

if [[ "${1:-}" != "--no-notebooks" ]]; then
  mapfile -t notebooks < <(ls ./*.ipynb notebooks/*.ipynb 2>/dev/null || true)
  if (( ${#notebooks[@]} )); then
    step "notebooks: ${notebooks[*]}"
    python3 scripts/check_notebooks.py "${notebooks[@]}"
  fi
fi
step "all checks passed"
