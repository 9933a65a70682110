"""The training process of a retrain: gather data, fit the challenger, score it and the champion.

It runs as ``python -m anomaly.retrain.worker JOB RESULT`` so that training never shares an
interpreter with a scorer (TensorFlow holds the GIL in places, and a thread would slow the
consumer), and so that the parent can cap its memory, time and priority and survive its crash.
It only reads the database; the parent records the run and registers the model. The outcome is
one JSON file: ``trained`` (with both models' metrics), ``skipped`` (too little data, and why) or
``failed`` (one line); no file at all means the process died, and the parent says how.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from anomaly.errors import failure_line


def _set_threads(threads: int) -> None:
    """Keep training to ``threads`` CPUs on every Keras backend, before the backend starts its thread pools.

    The parent caps OpenMP, BLAS and TensorFlow through the environment, and PyTorch follows OpenMP's.
    XLA (JAX) has no such setting: it sizes its pools from the CPUs the process may run on, so on
    Linux the process is bound to the last ``threads`` of them. TensorFlow is imported only when it is
    the backend: a JAX or PyTorch machine may not have it.
    """
    from anomaly.keras import backend

    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[-threads:])
    if backend.current() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _fit_settings(manifest_settings: dict[str, Any], epochs: int | None) -> Any:
    """The champion's training settings (its epochs unless retrain.epochs says), as a FitSettings.

    A champion calibrated for the best F1 on labelled anomalies gets a percentile threshold: those
    anomalies judge the challenger, so they must not also have set its threshold.
    """
    from anomaly.harness import FitSettings
    from anomaly.threshold import Calibration

    values = dict(manifest_settings)
    calibration = dict(values.pop("calibration", None) or {})
    if calibration.get("method") == "f1":
        calibration["method"] = "percentile"
    known = {f.name for f in dataclasses.fields(FitSettings)} - {"calibration"}
    settings = FitSettings(**{k: v for k, v in values.items() if k in known}, calibration=Calibration(**calibration))
    if epochs is not None:
        settings.epochs = epochs
    return settings


def limit(nice: int, memory_limit_mb: int | None) -> None:
    """Lower this process's priority and cap its address space, before TensorFlow is imported; die with the parent.

    Over the cap an allocation fails (a MemoryError, recorded as this run's failure) rather than
    the machine's scorers being pushed into swap or the kernel's out-of-memory killer.
    """
    import resource

    if sys.platform == "linux":
        import ctypes

        # PR_SET_PDEATHSIG: die with the scheduler or command that started this, never train on orphaned.
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    os.nice(nice)
    if memory_limit_mb is not None:
        cap = memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def train(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (see ``anomaly.retrain.run``) and return its outcome."""
    from anomaly.artifact import Manifest
    from anomaly.params import params_from_mapping
    from anomaly.plugins import load_model, registry
    from anomaly.retrain.compare import measure
    from anomaly.retrain.data import NotEnoughData, gather
    from anomaly.settings import RetrainConfig
    from anomaly.store.engine import get_engine

    config = RetrainConfig.model_validate(job["config"])
    manifest = Manifest.read(job["champion"])
    engine = get_engine(job["database"]) if config.data != "source" else None
    try:
        data = gather(manifest, job["model_ids"], config, engine)
    except NotEnoughData as exc:
        return {"status": "skipped", "reason": str(exc)}
    _set_threads(config.threads)
    cls = registry().get(manifest.detector.name)
    settings = _fit_settings(manifest.settings, config.epochs)
    challenger = cls(manifest.spec, params_from_mapping(cls.Params, manifest.params, cls.name), settings)
    source = manifest.training.data.source if manifest.training.data else None
    challenger.fit(data.train, progress=job["progress"], source=source)
    challenger.config = {"retrained_from": job["champion"], "data": data.summary}
    out = Path(job["out"])
    challenger.save(out)
    champion = load_model(job["champion"])
    return {
        "status": "trained",
        "out": str(out),
        "summary": data.summary,
        "champion": measure(champion, data.evaluation, data.anomalies),
        "challenger": measure(challenger, data.evaluation, data.anomalies),
        "seconds": challenger.training.seconds if challenger.training else None,
    }


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        job = json.loads(job_path.read_text())
        limit(job["config"]["nice"], job["config"]["memory_limit_mb"])
        outcome = train(job)
        code = 0
    except Exception as exc:  # any failure of training is recorded as this run's, never the service's
        outcome, code = {"status": "failed", "error": failure_line(exc)}, 1
    result_path.write_text(json.dumps(outcome, allow_nan=False, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
