#!/usr/bin/env bash
# The test command: installs what the suite needs, then runs it (listing the 25 slowest tests, to keep
# the suite short). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
"${PYTHON:-python3}" -m pytest -q -p no:cacheprovider --durations=25 "$@"
# The detector pipeline again on JAX (CPU): the networks and losses are keras.ops, only the gradient
# step is per backend (anomaly/keras/steps), so both backends CI has must train and score. Skipped when
# arguments pick tests.
if [ $# -eq 0 ]; then
    KERAS_BACKEND=jax "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider tests/test_pipeline.py tests/plugins/test_ganomaly_memory.py
fi
