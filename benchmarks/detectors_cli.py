"""Both detectors trained and evaluated through the CLI on real data: magnetic_tile and an SMD machine.

    python -m benchmarks detectors [--only NAME ...] [--size smoke]

Runs the exact ``anomaly train`` / ``anomaly evaluate`` commands listed in each result row (as a
user would), times them, and writes the ``Detectors through the CLI`` section of docs/benchmarks.md
plus docs/benchmarks/detectors_cli.json. Settings are CPU-sized (small widths, few epochs);
tuned, multi-seed quality figures belong to the quality suite. ``--size smoke`` runs one detector
per kind of data on a few images and steps cut from the same sets, with tiny networks.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import report
from benchmarks.report import DOCS, machine, raw_folder, table, write_raw, write_section

TITLE = "Detectors through the CLI"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TILE = DATA / "magnetic_tile"
SMD = DATA / "smd" / "machine-2-2.npz"
TILE_INPUT = [
    "--normal-class",
    "MT_Free",
    "--tile",
    "--scale",
    "128",
    "--image-size",
    "32",
    "--standardize",
    "--pool",
    "max",
]

RUNS = {
    "ganomaly-magnetic_tile": (
        ["ganomaly", TILE, *TILE_INPUT, "--stride", "16", "--epochs", "4"],
        ["--normal-class", "MT_Free"],
    ),
    "anogan-magnetic_tile": (
        ["anogan", TILE, *TILE_INPUT, "--stride", "32", "--epochs", "4", "--set", "search_steps=10"],
        ["--normal-class", "MT_Free"],
    ),
    "ganomaly-smd-2-2": (["ganomaly", SMD, "--window", "32", "--stride", "4", "--epochs", "10"], []),
    "anogan-smd-2-2": (
        ["anogan", SMD, "--window", "32", "--stride", "4", "--epochs", "10", "--set", "search_steps=20"],
        [],
    ),
}
TINY = ["--epochs", "1", "--set", "width=4", "--set", "latent=8"]
# Smoke: images and steps cut from the same sets (see ``smoke_data``), one detector per kind of data.
SMOKE_TILE_CLASSES = {"MT_Free": 12, "MT_Blowhole": 3, "MT_Crack": 3}
SMOKE_RUNS = {
    "ganomaly-magnetic_tile": (
        ["ganomaly", "TILE", "--normal-class", "MT_Free", "--scale", "32", "--image-size", "16", *TINY],
        ["--normal-class", "MT_Free"],
    ),
    "anogan-smd-2-2": (["anogan", "SMD", "--window", "8", "--stride", "4", *TINY, "--set", "search_steps=2"], []),
}


def smoke_data(folder: Path) -> dict[str, Path]:
    """A few magnetic_tile images per class (linked, with their masks) and 600 train and test steps of machine-2-2,
    the test steps around its first labelled anomaly so both classes are there to evaluate."""
    tile = folder / "magnetic_tile"
    for kind, count in SMOKE_TILE_CLASSES.items():
        (tile / kind / "Imgs").mkdir(parents=True)
        for image in sorted((TILE / kind / "Imgs").glob("*.jpg"))[:count]:
            for path in (image, image.with_suffix(".png")):
                (tile / kind / "Imgs" / path.name).symlink_to(path)
    arrays = np.load(SMD)
    smd = folder / "machine-2-2.npz"
    np.savez(
        smd, train=arrays["train"][:600], test=arrays["test"][12500:13100], test_label=arrays["test_label"][12500:13100]
    )
    return {"TILE": tile, "SMD": smd}


def _run(args: list[str], in_process: bool = False) -> tuple[str, float]:
    """stdout and seconds of one ``anomaly`` command: in a process of its own, as a user runs it, or (smoke)
    in this one, which spares each command the seconds of importing TensorFlow."""
    start = time.perf_counter()
    if in_process:
        from anomaly.cli import cli

        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = cli.main(args, prog_name="anomaly", standalone_mode=False)
        if code:
            raise SystemExit(f"failed: anomaly {shlex.join(args)}")
        return stdout.getvalue(), time.perf_counter() - start
    result = subprocess.run([sys.executable, "-m", "anomaly", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: anomaly {shlex.join(args)}\n{result.stderr[-2000:]}")
    return result.stdout, time.perf_counter() - start


def _display(args: list[str], work: Path) -> str:
    return "anomaly " + shlex.join(args).replace(str(DATA), "../shared/data").replace(str(work), "runs")


def run(
    *,
    only: list[str] | None = None,
    size: str = "full",
    docs: Path = DOCS,
    command: str = "python -m benchmarks detectors",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate each run through the CLI; write the docs section and ``detectors_cli.json``."""
    runs = SMOKE_RUNS if size == "smoke" else RUNS
    results: dict[str, Any] = {"command": command, "machine": machine(), "size": size, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = smoke_data(work / "data") if size == "smoke" else {}
        for name in only or sorted(runs):
            train_args, eval_args = runs[name]
            train_args = [data.get(a, a) for a in train_args]
            model = work / name
            train = [str(a) for a in ["train", *train_args, "--out", model, "--no-progress"]]
            evaluate = [str(a) for a in ["evaluate", model, train_args[1], *eval_args, "--json"]]
            _, train_seconds = _run(train, in_process=size == "smoke")
            report_text, eval_seconds = _run(evaluate, in_process=size == "smoke")
            report = json.loads(report_text)
            manifest = json.loads((model / "manifest.json").read_text())
            results["runs"][name] = {
                "train_command": _display(train, work),
                "evaluate_command": _display(evaluate[:-1], work),
                "train_seconds": round(train_seconds, 1),
                "evaluate_seconds": round(eval_seconds, 1),
                "epochs_run": manifest["training"]["epochs_run"],
                "results": report["results"],
            }
            log(
                f"{name}: AUROC {report['results']['all']['auroc']:.3f} "
                f"(train {train_seconds:.0f} s, evaluate {eval_seconds:.0f} s)"
            )
    write_raw("detectors_cli", results, raw_folder(docs))
    write_section(TITLE, render(results), docs)
    return results


def rerender(docs: Path = DOCS) -> list[str]:
    return report.rerender("detectors_cli", TITLE, render, docs)


def render(results: dict[str, Any]) -> str:
    runs = results["runs"]
    rows = []
    for name, r in runs.items():
        m = r["results"]["all"]
        rows.append(
            [
                name,
                f"{m['auroc']:.3f}",
                f"{m['auprc']:.3f}",
                f"{m['f1']:.3f}",
                f"{m['best_f1']:.3f}",
                f"{m['normal']}/{m['anomalous']}",
                r["epochs_run"],
                r["train_seconds"],
                r["evaluate_seconds"],
            ]
        )
    per_type = [
        [name, kind, f"{m['auroc']:.3f}"]
        for name, r in runs.items()
        if "magnetic" in name
        for kind, m in r["results"].items()
        if kind != "all"
    ]
    commands = "\n".join(f"    {r['train_command']}\n    {r['evaluate_command']}" for r in runs.values())
    return f"""Command: `{results["command"]}` ({results["machine"]}, CPU only, TensorFlow backend, seed 0).
It runs these CLI commands (model folders in a temporary directory, shown as `runs/`):

{commands}

magnetic_tile: `MT_Free` split 70/30 by `--test-fraction` (seeded); the 30% normal images plus all 392
defect images are evaluated, and evaluation leaves out every image the model trained on. SMD
machine-2-2: trained on its `train` array, evaluated point-wise on `test` (each window's score
belongs to its last step). One seed, CPU-sized settings: these show the detectors working end to end
through the CLI, not tuned quality (that is the quality suite's job).

{table(["run", "AUROC", "AUPRC", "F1@thr", "best F1", "normal/anomalous", "epochs", "train s", "evaluate s"], rows)}

Per defect type (normal test images vs that type):

{table(["run", "defect", "AUROC"], per_type)}
"""
