"""Every regression suite at smoke size: it runs, and its result fields and docs section are all there.

Correctness only, never timing: smoke figures mean nothing. Each run writes to a temporary docs file,
so the tests never rewrite the committed docs/benchmarks.md. The quality suite's smoke run is
test_quality_smoke.py. These would have caught ``python -m benchmarks speed`` crashing in
``train_rate`` while no test ran it.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import __main__ as benchmarks_main
from benchmarks import detectors_cli, retrain_throughput, speed, store_inserts, stream_e2e, train_steps, ui_pages
from benchmarks.report import DOCS, RAW

IMAGE_ROWS = {"ganomaly", "anogan", "iforest", "pca", "autoencoder", "ganomaly width=32"}
WINDOW_ROWS = {"ganomaly", "anogan", "iforest", "pca", "autoencoder"}


def _rate(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_train_rate_times_only_full_batches() -> None:
    """256 samples cannot fill five steps of 64: the fifth wraps round instead of being empty."""
    seen: list[int] = []
    detector = SimpleNamespace(
        fits_once=False,
        name="fake",
        settings=SimpleNamespace(batch_size=speed.TRAIN_BATCH),
        train_step=lambda batch: seen.append(len(batch)),
    )
    assert _rate(speed.train_rate(detector, np.zeros((256, 4, 4, 1))))
    assert seen == [speed.TRAIN_BATCH] * speed.TIMED_TRAIN_STEPS


@pytest.mark.slow
def test_speed_smoke(tmp_path: Path, shared_data: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    results = speed.run(docs, "python -m benchmarks speed --size smoke", lambda _: None, speed.SIZES["smoke"])
    assert set(results["detectors"]["images"]) == IMAGE_ROWS
    assert set(results["detectors"]["windows"]) == WINDOW_ROWS
    for kind, rows in results["detectors"].items():
        for label, entry in rows.items():
            assert _rate(entry["train_per_second"]), (kind, label)
            for batch in speed.BATCH_SIZES:
                assert _rate(entry[f"batch_{batch}"]["per_second"]), (kind, label, batch)
            if label.startswith("ganomaly"):
                assert entry["forward_flops"] > 0 and _rate(entry["gflops_network"])
    assert set(results["search"]) == {"images", "windows"}
    assert all(s["search_steps"] == 2 and _rate(s["ratio"]) for s in results["search"].values())
    text = docs.read_text()
    assert "## Speed suite" in text and "`python -m benchmarks speed --size smoke`" in text
    assert "| images | ganomaly width=32 |" in text and "| windows | autoencoder |" in text
    assert (tmp_path / "benchmarks" / "speed.json").exists()


def test_train_smoke(tmp_path: Path) -> None:
    """Each backend in its own process through the product's training path; one not installed is named, not run."""
    docs = tmp_path / "benchmarks.md"
    results = train_steps.run(
        size=train_steps.SIZES["smoke"],
        backends=("tensorflow", "jax", "nonesuch"),
        docs=docs,
        command="python -m benchmarks train --size smoke",
        log=lambda _: None,
    )
    for name in ("tensorflow", "jax"):
        entry = results["backends"][name]
        assert (entry["backend"], entry["device"], entry["steps"]) == (name, "cpu", 3)
        assert _rate(entry["steps_per_second"]) and _rate(entry["scored_images_per_second"])
        assert entry["images_per_second"] == pytest.approx(entry["steps_per_second"] * 8)
    assert results["backends"]["nonesuch"] is None
    text = docs.read_text()
    assert "## Training speed per backend" in text and "| nonesuch | not installed |" in text
    assert "no GPU in this run" in text and (tmp_path / "benchmarks" / "train_steps.json").exists()


@pytest.mark.postgres
def test_store_smoke(tmp_path: Path, postgres_server: str) -> None:
    docs = tmp_path / "benchmarks.md"
    batches, size = store_inserts.SIZES["smoke"]
    results = store_inserts.run(batches=batches, batch_size=size, docs=docs, log=lambda _: None)
    assert [(r["database"], r["components"]) for r in results["rows"]] == [
        ("sqlite", "3 floats"),
        ("postgresql", "3 floats"),
        ("sqlite", "3 floats + 38-channel list"),
        ("postgresql", "3 floats + 38-channel list"),
    ]
    assert all(r["events"] == batches * size and _rate(r["new"]) and _rate(r["replay"]) for r in results["rows"])
    text = docs.read_text()
    assert "## Store: bulk event inserts" in text and "| PostgreSQL 15 (loopback) | 3 floats | 100 |" in text


@pytest.mark.postgres
def test_ui_smoke(tmp_path: Path, postgres_server: str) -> None:
    docs = tmp_path / "benchmarks.md"
    events, repeats = ui_pages.SIZES["smoke"]
    results = ui_pages.run(events=events, repeats=repeats, docs=docs, log=lambda _: None)
    assert results["events"] == events
    pages = {r["page"]: r for r in results["pages"]}
    assert len(pages) == 12 and "list, a keyset page half-way back" in pages and "stored image" in pages
    assert all(0 < r["median_ms"] <= r["max_ms"] for r in pages.values())
    text = docs.read_text()
    assert "## Review pages: 1,000,000 events" in text and "| list, one source | `/?source=pump-7` |" in text
    assert (tmp_path / "benchmarks" / "ui_pages.json").exists()


@pytest.mark.slow
def test_retrain_smoke(tmp_path: Path) -> None:
    """A real retrain in its own process while scoring goes on; not niced here, only to finish sooner."""
    docs = tmp_path / "benchmarks.md"
    results = retrain_throughput.run(size=retrain_throughput.SIZES["smoke"], nice=0, docs=docs, log=lambda _: None)
    for phase in ("before", "during", "after"):
        assert results[f"{phase}_readings_per_s"] > 0, phase
    assert results["measured_during_seconds"] > 0 and results["retrain_seconds"] > 0
    assert results["decision"] == "promoted" and results["epochs"] == 1
    text = docs.read_text()
    assert "## Retraining while scoring" in text and "`python -m benchmarks retrain`" in text
    assert "400-step series (1 epoch)" in text
    assert (tmp_path / "benchmarks" / "retrain_throughput.json").exists()


@pytest.mark.slow
@pytest.mark.kafka
def test_stream_smoke(tmp_path: Path, kafka_broker) -> None:
    docs = tmp_path / "benchmarks.md"
    size = stream_e2e.SIZES["smoke"]
    raw = stream_e2e.run(
        size=size, database="sqlite", bootstrap_servers=kafka_broker.bootstrap, docs=docs, log=lambda _: None
    )
    results = raw["results"]
    assert set(results) == {"readings", "images"}
    for name, backlog in (("readings", size.readings), ("images", size.images)):
        result = results[name]
        assert result["throughput"]["messages"] == backlog and result["throughput"]["per_s"] > 0
        lat = result["latency"]
        # Every message the latency producer sent is stored, and timed from its producer's stamp.
        assert lat["messages"] == int(stream_e2e.TARGETS[name] / 2 * size.seconds)
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    # No scale-out at smoke size: tests/stream/test_workers.py runs `serve --workers 2` end to end.
    assert raw["scale_out"] == {}
    text = docs.read_text()
    assert "## Stream: end to end" in text and "| 64×64 PNG images, GANomaly width 4 | 30 |" in text
    assert "Scale-out:" not in text


@pytest.mark.slow
def test_detectors_smoke(tmp_path: Path, shared_data: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    results = detectors_cli.run(size="smoke", docs=docs, log=lambda _: None)
    runs = results["runs"]
    assert set(runs) == set(detectors_cli.SMOKE_RUNS)
    tile = runs["ganomaly-magnetic_tile"]["results"]
    # 30% of the 12 normal images are held out for evaluation, beside every defect image.
    assert (tile["all"]["normal"], tile["all"]["anomalous"]) == (4, 6)
    assert set(tile) == {"all", "MT_Blowhole", "MT_Crack"}
    smd = runs["anogan-smd-2-2"]["results"]["all"]
    # 600 test steps in windows of 8: the first 7 get no score.
    assert smd["normal"] + smd["anomalous"] == 593 and smd["anomalous"] > 0
    for r in runs.values():
        assert r["epochs_run"] == 1
        assert all(0.0 <= m["auroc"] <= 1.0 for m in r["results"].values())
    text = docs.read_text()
    assert "## Detectors through the CLI" in text and "anomaly train anogan runs/data/machine-2-2.npz" in text


def test_render_reproduces_the_committed_docs(tmp_path: Path) -> None:
    """The docs are what their raw JSON renders to: no section drifts from its figures."""
    docs = tmp_path / "benchmarks.md"
    shutil.copy(DOCS, docs)
    shutil.copytree(RAW, tmp_path / "benchmarks")
    benchmarks_main.main(["render", "--docs", str(docs)])
    assert docs.read_text() == DOCS.read_text()


def test_smoke_without_docs_never_writes_the_committed_docs(monkeypatch, capsys) -> None:
    written: list[Path] = []
    monkeypatch.setattr(benchmarks_main, "_run", lambda args, docs, command: written.append(docs))
    benchmarks_main.main(["store", "--size", "smoke"])
    assert written and written[0] != DOCS and written[0].name == "benchmarks.md"
    assert str(written[0]) in capsys.readouterr().out


def test_every_suite_takes_a_smoke_size() -> None:
    parser = benchmarks_main._parser()
    for suite in ("quality", "speed", "stream", "store", "detectors", "ui", "retrain", "train"):
        assert parser.parse_args([suite, "--size", "smoke"]).size == "smoke", suite
    # The quality suite's older option name, which the commands of earlier runs in the docs use.
    assert parser.parse_args(["quality", "--config", "smoke"]).size == "smoke"
