#!/usr/bin/env bash
# The lint: ruff's checks and formatting over the tree, mypy over anomaly/ (both configured in
# pyproject.toml). Needs the test extra (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
"$PYTHON" -m mypy
