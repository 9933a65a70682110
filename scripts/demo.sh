#!/usr/bin/env bash
# The main job, end to end on data a library bundles: install, train a GANomaly detector on
# normal digits, score every other image, and print what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install -q --disable-pip-version-check -e .
exec "$PYTHON" -m anomaly demo "$@"
