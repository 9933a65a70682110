#!/usr/bin/env bash
# The test command: installs what the suite needs, then runs it (listing the 25 slowest tests, to keep
# the suite short). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider --durations=25 "$@"
