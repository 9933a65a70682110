#!/usr/bin/env bash
# The main job, end to end: install, start the local Kafka broker, train (or reuse) a GANomaly
# detector on normal digits (scikit-learn's bundled set) and register it in the SQLite store, stream
# the unseen digits through Kafka into the scorer that `anomaly serve` runs, store every event, and
# print what was found (events, anomalies, AUROC against the known labels, throughput).
# The demo itself is demo/ (not part of the installed package); extra arguments go to it
# (e.g. --epochs 5, --normal-digit 3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[stream]"
bash scripts/kafka.sh start
exec "$PYTHON" -m demo "$@"
