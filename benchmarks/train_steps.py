"""GANomaly training speed per Keras backend: steps/s and images/s on 64×64 images, and scoring rate.

Each backend runs in its own process (Keras picks its backend once per process), through the
product's own training path: the detector is fitted by ``anomaly.harness`` (building, compiling and
its first traced steps), then one untimed ``train_step`` on a full batch (the fit's batches are
smaller, after the held-out split, and a compiling backend traces each new batch shape), then a
fixed number of further ``train_step`` calls is timed, each on a full batch; the clock stops when the
last step's losses are on the host. Scoring goes through ``Detector.score`` at batch 256. Backends not installed are
reported as such, not measured, so one command serves a CPU machine (TensorFlow, JAX) and the GPU
machine (JAX, PyTorch, no TensorFlow).

    python -m benchmarks train [--size smoke|full] [--backends tensorflow jax torch] [--steps N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.report import DOCS, machine, table, write_raw, write_section

TITLE = "Training speed per backend"
# A GPU run (scripts/gpu_check.sh on the GPU machine) keeps its own raw file and section beside the CPU one.
GPU_TITLE = f"{TITLE} (GPU)"
RAW = {TITLE: "train_steps", GPU_TITLE: "train_steps_gpu"}
TARGET_GPU_STEPS = 150.0


@dataclass(frozen=True)
class Size:
    """``full``: the issue's setting (64×64, width 64, batch 64); ``smoke`` shows every column is made."""

    name: str
    image_size: int
    width: int
    batch: int
    steps: int
    scored: int


SIZES = {
    "full": Size("full", 64, 64, 64, 50, 1024),
    "smoke": Size("smoke", 16, 4, 8, 3, 16),
}


def measure(size: Size) -> dict[str, Any]:
    """In this process, on its backend: fit once, then time ``size.steps`` train steps and one scoring pass."""
    from anomaly.harness import FitSettings
    from anomaly.inputs import ImageSpec, encode
    from anomaly.keras import backend
    from anomaly.plugins import registry
    from benchmarks.speed import _timed, full_batches, textures

    cls = registry().get("ganomaly")
    detector = cls(
        ImageSpec(image_size=size.image_size),
        replace(cls.Params(), width=size.width),
        FitSettings(epochs=1, batch_size=size.batch, patience=None, seed=0),
    )
    train = textures(4 * size.batch, size=size.image_size)
    detector.fit(train)
    x = encode(detector.spec, train).x
    batches = full_batches(x, size.batch, size.steps + 1)
    detector.train_step(batches.pop())
    seconds = _timed(lambda: _last_logs([detector.train_step(batch) for batch in batches]))
    scored = textures(size.scored, seed=1, size=size.image_size)
    detector.score_batch_size = 256
    detector.score(scored, maps=False)
    score_seconds = _timed(lambda: detector.score(scored, maps=False))
    return {
        "backend": backend.current(),
        "device": backend.device(),
        "steps": size.steps,
        "seconds": seconds,
        "steps_per_second": size.steps / seconds,
        "images_per_second": size.steps * size.batch / seconds,
        "scored_images_per_second": size.scored / score_seconds,
    }


def _last_logs(logs: list[dict[str, Any]]) -> dict[str, float]:
    """The last step's losses as floats: waits for a backend that runs steps asynchronously (JAX)."""
    return {k: float(v) for k, v in logs[-1].items()}


def _child(backend: str, size: Size) -> dict[str, Any]:
    """``measure`` in a new process on ``backend``; its JSON is the last line it prints."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    code = (
        "import json, sys; from benchmarks.train_steps import Size, measure; "
        "print(json.dumps(measure(Size(**json.loads(sys.argv[1])))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(asdict(size))],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{backend}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(
    *,
    size: Size,
    backends: tuple[str, ...],
    steps: int | None = None,
    docs: Path = DOCS,
    command: str = "python -m benchmarks train",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure each installed backend in turn; write the docs section and ``train_steps.json``."""
    from anomaly.keras.backend import installed

    if steps:
        size = replace(size, steps=steps)
    results: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "size": asdict(size),
        "warm_step": True,
        "backends": {},
    }
    for name in backends:
        if not installed(name):
            results["backends"][name] = None
            log(f"{name}: not installed")
            continue
        entry = results["backends"][name] = _child(name, size)
        log(
            f"{name} on {entry['device']}: {entry['steps_per_second']:.2f} steps/s, {entry['images_per_second']:.0f} images/s"
        )
    title = GPU_TITLE if _on("gpu", results) else TITLE
    write_raw(RAW[title], results, docs.with_suffix(""))
    write_section(title, render(results), docs)
    return results


def rerender(docs: Path = DOCS) -> list[str]:
    """Rewrite the CPU and GPU sections from their raw files where they exist, measuring nothing."""
    return [done for title, name in RAW.items() for done in report.rerender(name, title, render, docs)]


def _on(prefix: str, results: dict[str, Any]) -> dict[str, Any]:
    """The backends of this run measured on a device whose name starts with ``prefix``."""
    return {n: e for n, e in results["backends"].items() if e and e["device"].startswith(prefix)}


def render(results: dict[str, Any]) -> str:
    s = results["size"]
    rows = []
    for name, e in results["backends"].items():
        if e is None:
            rows.append([name, "not installed", "-", "-", "-"])
            continue
        rows.append(
            [
                name,
                e["device"],
                f"{e['steps_per_second']:,.2f}",
                f"{e['images_per_second']:,.0f}",
                f"{e['scored_images_per_second']:,.0f}",
            ]
        )
    gpu = list(_on("gpu", results).values())
    target = (
        f"Target (issue 21): ≥ {TARGET_GPU_STEPS:.0f} steps/s on an H100/H200-class GPU: "
        + ", ".join(
            f"{e['backend']} {e['steps_per_second']:.0f} ({'met' if e['steps_per_second'] >= TARGET_GPU_STEPS else '**not met**'})"
            for e in gpu
        )
        if gpu
        else f"Target (issue 21): ≥ {TARGET_GPU_STEPS:.0f} steps/s on an H100/H200-class GPU: no GPU in this run."
    )
    return "\n\n".join(
        [
            f"Command: `{results['command']}` — {results['machine']}.",
            f"GANomaly on {s['image_size']}×{s['image_size']} images, width {s['width']}, batch {s['batch']}, "
            f"through the product's training path (`Detector.fit`, then {_timed_steps(results)}); each backend in its own process, one after the other; scoring through "
            f"`Detector.score` at batch 256 ({s['scored']} images, after an untimed pass).",
            table(["backend", "device", "train steps/s", "train images/s", "scored images/s"], rows),
            target,
            *(
                ["Run on the GPU machine by `bash scripts/gpu_check.sh` (installs the product from carried wheels)."]
                if gpu
                else []
            ),
            *_advice(results),
        ]
    )


def _timed_steps(results: dict[str, Any]) -> str:
    steps = results["size"]["steps"]
    if results.get("warm_step"):
        return f"one untimed and {steps} timed `train_step` calls on full batches"
    return (
        f"{steps} timed `train_step` calls on full batches; this run predates the untimed first step, so its "
        "time includes tracing and compiling the step for the full batch, which the fit's smaller batches had not"
    )


def _advice(results: dict[str, Any]) -> list[str]:
    """Which backend to use where, read from this run's figures (CPU rows only; GPU rows when present)."""
    lines = []
    for where, prefix in (("CPU", "cpu"), ("GPU", "gpu")):
        rows = _on(prefix, results)
        if len(rows) < 2:
            continue
        train = sorted(rows, key=lambda n: -rows[n]["steps_per_second"])
        score = sorted(rows, key=lambda n: -rows[n]["scored_images_per_second"])
        lines.append(
            f"On this {where}: train with {train[0]} ({rows[train[0]]['steps_per_second'] / rows[train[1]]['steps_per_second']:.1f}× "
            f"{train[1]}'s steps/s), score with {score[0]} ({rows[score[0]]['scored_images_per_second'] / rows[score[1]]['scored_images_per_second']:.1f}× "
            f"{score[1]}'s images/s), measured side by side in this run."
        )
    return lines
