#!/usr/bin/env bash
# The main job: installs what is missing, then executes 18_relational_rnn.ipynb headless with the
# Rust kernel. The executed copy, with its figures, is written to target/nb/18_relational_rnn.ipynb
# and the figures as PNG files to target/nb/figures/.
# Usage: bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 scripts/check_notebooks.py 18_relational_rnn.ipynb
