"""Scoring throughput while a retrain trains, against without it, side by side in one run.

    python -m benchmarks retrain [--seconds 20] [--epochs 3] [--nice 10] [--threads 1] [--size smoke]

The scorer's own scoring path (``ServingModel.score``, sliding windows per source included) runs in
this process on batches of single readings, as ``anomaly serve`` scores them, without Kafka or the
store: what is measured is how much CPU the separate, niced training process takes from scoring.
Three phases, readings/s in each: before the retrain, while its training process runs, and after.
The retrain is a real one (``anomaly.retrain.run.retrain``) of a GANomaly on its recorded series.
``--size smoke`` scores for a second either side of a one-epoch retrain on a short series; its
figures mean nothing. Writes the ``Retraining while scoring`` section and ``retrain_throughput.json``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import report
from benchmarks.report import DOCS, raw_folder, table, write_raw, write_section
from benchmarks.system import describe_machine

TITLE = "Retraining while scoring"
BATCH = 256
SOURCES = 16
TARGET = 0.5
ANALYSIS = f"""\
The target is scoring at {TARGET:.0%} or more of its undisturbed rate while a retrain runs. On a shared machine
other jobs' load drifts over minutes and moves the figures as much as the retrain does, so the last column
compares the phase during the retrain with the mean of the phases either side of it, which bracket it. Not
measured here: the same through Kafka and the store (`anomaly serve --scheduler`)."""


@dataclass(frozen=True)
class Size:
    """Seconds of each phase either side of the retrain, its epochs, and the steps of the recorded series."""

    seconds: float
    epochs: int
    steps: int


SIZES = {"full": Size(20.0, 3, 3000), "smoke": Size(1.0, 1, 400)}


def _champion(root: Path, url: str, steps: int) -> None:
    from anomaly.artifact import Manifest
    from anomaly.detector import FitSettings
    from anomaly.inputs import SeriesSpec
    from anomaly.plugins import registry
    from anomaly.store.engine import get_engine
    from anomaly.store.registry import register_trained_model
    from anomaly.testing import synthetic_series

    series = synthetic_series(steps, 2, 0)
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
        serving.score([Reading(f"pump-{i % SOURCES}", values[i], None) for i in range(BATCH)])
        count += BATCH
    elapsed = time.perf_counter() - start
    return count / elapsed, elapsed


def run(
    *,
    size: Size,
    seconds: float | None = None,
    epochs: int | None = None,
    nice: int = 10,
    threads: int = 1,
    docs: Path = DOCS,
    command: str = "python -m benchmarks retrain",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Readings/s before, during and after one retrain; writes the docs section and ``retrain_throughput.json``."""
    from anomaly.retrain.run import retrain
    from anomaly.settings import RetrainConfig
    from anomaly.store import migrate
    from anomaly.store.engine import get_engine
    from anomaly.store.registry import active_model
    from anomaly.stream.models import ServingModel

    seconds = size.seconds if seconds is None else seconds
    epochs = epochs or size.epochs
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        url = f"sqlite:///{root / 'store.db'}"
        migrate.upgrade(url=url)
        _champion(root, url, size.steps)
        engine = get_engine(url)
        record = active_model("pumps", engine=engine)
        assert record is not None
        serving = ServingModel.load(record)
        serving.warm(BATCH)
        load_before = os.getloadavg()[0]
        before, _ = _rate(serving, seconds)
        log(f"before: {before:,.0f} readings/s")
        config = RetrainConfig(data="source", epochs=epochs, nice=nice, threads=threads, fpr_margin=1)
        busy, outcome = threading.Event(), {}

        def train() -> None:
            started = time.perf_counter()
            outcome["report"] = retrain("pumps", config=config, engine=engine)
            outcome["seconds"] = time.perf_counter() - started
            busy.clear()

        busy.set()
        trainer = threading.Thread(target=train)
        trainer.start()
        during, measured = _rate(serving, 3600, busy)
        trainer.join()
        log(f"during the retrain: {during:,.0f} readings/s")
        after, _ = _rate(serving, seconds)
        log(f"after: {after:,.0f} readings/s")
        engine.dispose()
    results = {
        "command": command,
        "machine": describe_machine(),
        "seconds": seconds,
        "epochs": epochs,
        "steps": size.steps,
        "nice": nice,
        "threads": threads,
        "before_readings_per_s": round(before),
        "during_readings_per_s": round(during),
        "after_readings_per_s": round(after),
        "during_vs_before": round(during / before, 3),
        # The machine's other load drifts over minutes: the phases on either side bracket the one between.
        "during_vs_before_and_after": round(during / ((before + after) / 2), 3),
        "retrain_seconds": round(outcome["seconds"], 1),
        "measured_during_seconds": round(measured, 1),
        "decision": outcome["report"].decision,
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 1),
    }
    write_raw("retrain_throughput", results, raw_folder(docs))
    write_section(TITLE, render(results), docs)
    return results


def rerender(docs: Path = DOCS) -> list[str]:
    return report.rerender("retrain_throughput", TITLE, render, docs)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def render(results: dict[str, Any]) -> str:
    row = [
        f"{results['before_readings_per_s']:,}",
        f"{results['during_readings_per_s']:,}",
        f"{results['after_readings_per_s']:,}",
        f"{results['during_vs_before']:.2f}",
        f"{results['during_vs_before_and_after']:.2f}",
        f"{results['retrain_seconds']:.1f} s, {results['decision']}",
        f"{results['load_average']:.1f}",
    ]
    header = ["before (readings/s)", "during", "after", "during / before", "during / mean of before and after"]
    return "\n\n".join(
        [
            f"Command: `{results['command']}` — {results['machine']}.",
            "The scorer's scoring path (`ServingModel.score`, per-source sliding windows, batches of "
            f"{BATCH} single readings from {SOURCES} sources, GANomaly at its defaults, window 32) runs in one "
            f"process, without Kafka or the store, for {results['seconds']:g} s; then a real "
            "`anomaly.retrain.run.retrain` of the same model on its recorded "
            f"{results['steps']:,}-step series ({_count(results['epochs'], 'epoch')}) runs in its own process, "
            f"niced {results['nice']}, {_count(results['threads'], 'thread')}, while scoring goes on; then "
            f"{results['seconds']:g} s more. Load average: the machine's 1-minute load, before and after.",
            table([*header, "retrain", "load average"], [row]),
            ANALYSIS,
        ]
    )
