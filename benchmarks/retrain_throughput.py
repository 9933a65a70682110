"""Scoring throughput while a retrain trains, against without it, side by side in one run.

    python -m benchmarks.retrain_throughput [--seconds 20] [--epochs 5] [--nice 10] [--threads 1]

The scorer's own scoring path (``ServingModel.score``, sliding windows per source included) runs in
this process on batches of single readings, as ``anomaly serve`` scores them, without Kafka or the
store: what is measured is how much CPU the separate, niced training process takes from scoring.
Three phases, readings/s in each: before the retrain, while its training process runs, and after.
The retrain is a real one (``anomaly.retrain.run.retrain``) of a GANomaly on its recorded series.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BATCH = 256


def _champion(root: Path, url: str) -> None:
    from anomaly.artifact import Manifest
    from anomaly.detector import FitSettings
    from anomaly.inputs import SeriesSpec
    from anomaly.plugins import registry
    from anomaly.store.engine import get_engine
    from anomaly.store.registry import register_trained_model
    from anomaly.testing import synthetic_series

    series = synthetic_series(3000, 2, 0)
    csv = root / "normal.csv"
    np.savetxt(csv, series.values, delimiter=",", header="a,b", comments="")
    cls = registry().get("ganomaly")
    model = cls(SeriesSpec(window=32), cls.Params(), FitSettings(epochs=1, seed=0))
    model.fit(series, source=str(csv))
    model.save(root / "pumps-1")
    register_trained_model("pumps", root / "pumps-1", Manifest.read(root / "pumps-1"), engine=get_engine(url))


def _rate(serving, seconds: float, busy: threading.Event | None = None) -> tuple[float, float]:
    """(readings/s, seconds measured): batches of one reading per source, for ``seconds`` or while ``busy`` is set."""
    from anomaly.stream.decode import Reading

    rng = np.random.default_rng(0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and (busy is None or busy.is_set()):
        values = rng.normal(0, 1, (BATCH, 1, 2)).astype(np.float32)
        serving.score([Reading(f"pump-{i % 16}", values[i], None) for i in range(BATCH)])
        count += BATCH
    elapsed = time.perf_counter() - start
    return count / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the before and after phases")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from anomaly.retrain.run import retrain
    from anomaly.settings import RetrainConfig
    from anomaly.store import migrate
    from anomaly.store.engine import get_engine
    from anomaly.store.registry import active_model
    from anomaly.stream.models import ServingModel

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        url = f"sqlite:///{root / 'store.db'}"
        migrate.upgrade(url=url)
        _champion(root, url)
        engine = get_engine(url)
        record = active_model("pumps", engine=engine)
        assert record is not None
        serving = ServingModel.load(record)
        serving.warm(BATCH)
        before, _ = _rate(serving, args.seconds)
        config = RetrainConfig(data="source", epochs=args.epochs, nice=args.nice, threads=args.threads, fpr_margin=1)
        busy, outcome = threading.Event(), {}

        def run() -> None:
            started = time.perf_counter()
            outcome["report"] = retrain("pumps", config=config, engine=engine)
            outcome["seconds"] = time.perf_counter() - started
            busy.clear()

        busy.set()
        trainer = threading.Thread(target=run)
        trainer.start()
        during, measured = _rate(serving, 3600, busy)
        trainer.join()
        after, _ = _rate(serving, args.seconds)
    report = outcome["report"]
    result = {
        "command": "python -m benchmarks.retrain_throughput " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "before_readings_per_s": round(before),
        "during_readings_per_s": round(during),
        "after_readings_per_s": round(after),
        "during_vs_before": round(during / before, 3),
        # The machine's other load drifts over minutes: the phases on either side bracket the one between.
        "during_vs_before_and_after": round(during / ((before + after) / 2), 3),
        "retrain_seconds": round(outcome["seconds"], 1),
        "measured_during_seconds": round(measured, 1),
        "decision": report.decision,
        "epochs": args.epochs,
        "nice": args.nice,
        "threads": args.threads,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
