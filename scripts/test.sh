#!/usr/bin/env bash
# The whole test suite: installs what is missing, then formatting, clippy (warnings are errors),
# every cargo test, every notebook executed headless and checked for errors, panics and missing
# figures, and the main notebook's first cells run in JupyterLab in headless Chromium (skipped when
# Chromium cannot be installed).
# Usage: bash scripts/test.sh [--no-notebooks]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser "$@"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo clippy for aarch64 (the non-x86 code paths), library and CLI"
if rustup target list --installed 2>/dev/null | grep -x aarch64-unknown-linux-gnu >/dev/null; then
  cargo clippy --workspace --lib --bins --target aarch64-unknown-linux-gnu --quiet -- -D warnings
else
  echo "skipped: the aarch64-unknown-linux-gnu target is not installed"
fi

step "cargo test"
cargo test --workspace --quiet

# Every test runs there; the one that pins the AVX-512 GEMM's reuse of its workspace
# (a_warm_train_step_allocates_no_arrays_outside_the_gemm) checks the other allocations only.
step "cargo test with every AVX-512 kernel off (RRNN_NO_AVX512_KERNELS=1): the portable paths"
RRNN_NO_AVX512_KERNELS=1 cargo test --workspace --quiet

if [[ "${1:-}" != "--no-notebooks" ]]; then
  mapfile -t notebooks < <(ls ./*.ipynb notebooks/*.ipynb 2>/dev/null || true)
  if (( ${#notebooks[@]} )); then
    step "notebooks: ${notebooks[*]}"
    python3 scripts/check_notebooks.py "${notebooks[@]}"
  fi
  step "browser test: 18_relational_rnn.ipynb in JupyterLab, headless Chromium, up to its first figure"
  python3 scripts/browser_test.py
fi
step "all checks passed"
