"""Both detectors trained and evaluated through the CLI on real data: magnetic_tile and an SMD machine.

    python -m benchmarks.detectors_cli [--only NAME ...]

Runs the exact ``anomaly train`` / ``anomaly evaluate`` commands listed in each result row (as a
user would), times them, and writes the ``Detectors through the CLI`` section of docs/benchmarks.md
plus docs/benchmarks/detectors_cli.json. Settings are CPU-sized (small widths, few epochs);
tuned, multi-seed quality figures belong to the quality suite.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import machine, table, write_raw, write_section

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


def _run(args: list[str]) -> tuple[str, float]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "anomaly", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: anomaly {shlex.join(args)}\n{result.stderr[-2000:]}")
    return result.stdout, time.perf_counter() - start


def _display(args: list[str], work: Path) -> str:
    return "anomaly " + shlex.join(args).replace(str(DATA), "../shared/data").replace(str(work), "runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), default=sorted(RUNS))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.only:
            train_args, eval_args = RUNS[name]
            model = work / name
            train = [str(a) for a in ["train", *train_args, "--out", model, "--no-progress"]]
            evaluate = [str(a) for a in ["evaluate", model, train_args[1], *eval_args, "--json"]]
            _, train_seconds = _run(train)
            report_text, eval_seconds = _run(evaluate)
            report = json.loads(report_text)
            manifest = json.loads((model / "manifest.json").read_text())
            results[name] = {
                "train_command": _display(train, work),
                "evaluate_command": _display(evaluate[:-1], work),
                "train_seconds": round(train_seconds, 1),
                "evaluate_seconds": round(eval_seconds, 1),
                "epochs_run": manifest["training"]["epochs_run"],
                "results": report["results"],
            }
            print(
                f"{name}: AUROC {report['results']['all']['auroc']:.3f} "
                f"(train {train_seconds:.0f} s, evaluate {eval_seconds:.0f} s)",
                flush=True,
            )
    write_raw("detectors_cli", results)
    rows = []
    for name, r in results.items():
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
        for name, r in results.items()
        if "magnetic" in name
        for kind, m in r["results"].items()
        if kind != "all"
    ]
    commands = "\n".join(f"    {r['train_command']}\n    {r['evaluate_command']}" for r in results.values())
    body = f"""Command: `python -m benchmarks.detectors_cli` ({machine()}, CPU only, TensorFlow backend, seed 0).
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
    write_section("Detectors through the CLI", body)


if __name__ == "__main__":
    main()
