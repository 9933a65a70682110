"""The quality suite's smoke configuration end to end: every detector and baseline yields every column.

Correctness only, never timing: the figures of a 1-epoch, width-4 run mean nothing. It writes to a
temporary docs file, so running the tests never rewrites the committed docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomaly.errors import AnomalyError
from benchmarks import quality


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, shared_data) -> tuple[dict, Path]:
    docs = tmp_path_factory.mktemp("docs") / "benchmarks.md"
    result = quality.run(
        quality.CONFIGS["smoke"], docs=docs, command="python -m benchmarks quality --size smoke", log=lambda _: None
    )
    return result, docs


def test_every_detector_has_every_metric_on_every_task(smoke):
    result, _ = smoke
    detectors = {*quality.GAN_DETECTORS, "iforest", "pca", "autoencoder"}
    config = quality.CONFIGS["smoke"]
    expected_rows = {"magnetic_tile", *(f"digit-{d}" for d in config.digits), *config.smd, *config.asd, *config.nab}
    assert expected_rows <= set(result["summary"])
    for row in expected_rows:
        assert set(result["summary"][row]) == detectors, row
        for name, metrics in result["summary"][row].items():
            # Pixel metrics where the test images have masks and the detector draws maps (IsolationForest draws none).
            pixel = row == "magnetic_tile" and name != "iforest"
            assert set(metrics) == {*quality.METRICS, *(quality.PIXEL_METRICS if pixel else ())}, (row, name)
            for cell in metrics.values():
                assert 0.0 <= cell["mean"] <= 1.0
    defect_rows = {r for r in result["summary"] if r.startswith("magnetic_tile/")}
    assert len(defect_rows) == 5
    assert all("pro" in result["summary"][r]["ganomaly"] for r in defect_rows)


def test_docs_section_and_raw_json_go_to_the_given_path(smoke):
    result, docs = smoke
    text = docs.read_text()
    assert "## Quality suite (smoke)" in text
    assert "python -m benchmarks quality --size smoke" in text
    header = "| data | detector | AUROC | AUPRC | best F1 | F1@thr |"
    assert header in text
    assert "| data | detector | pixel AUROC | PRO |" in text
    assert "| magnetic_tile | iforest | – | – |" in text
    for name in ("ganomaly", "anogan", "iforest", "pca", "autoencoder"):
        assert f"| {name} |" in text
    raw = json.loads((docs.with_suffix("") / "quality_smoke.json").read_text())
    assert raw["summary"] == json.loads(json.dumps(result["summary"]))


def test_a_detector_variant_runs_as_its_own_row_and_section(tmp_path, shared_data):
    docs = tmp_path / "benchmarks.md"
    name = "ganomaly[memory=latent]"
    result = quality.run(
        quality.CONFIGS["smoke"],
        families=("magnetic_tile",),
        detectors=(name, "pca"),
        docs=docs,
        command="smoke",
        log=lambda _: None,
    )
    assert result["params"][name]["memory"] == "latent"
    assert result["params"][name]["width"] == quality.CONFIGS["smoke"].width
    # The bank is built after the last epoch (docs/decisions/0005): not an epoch of its own.
    assert [r["epochs_run"] for r in result["records"] if r["detector"] == name] == [1]
    assert {"auroc", "pixel_auroc", "pro"} <= set(result["summary"]["magnetic_tile"][name])
    text = docs.read_text()
    assert f"## Quality suite (smoke, magnetic_tile, {name})" in text
    assert f"`{name}` latent=8, width=4, network=dense, lr=0.0002, memory=latent, memory_size=4096" in text
    assert f"| {name} magnetic_tile AUROC ≥ best baseline + 0.05 |" in text
    assert "Not run here: `iforest`, `autoencoder`" in text
    assert (tmp_path / "benchmarks" / "quality_smoke_magnetic_tile_ganomaly-memory-latent.json").exists()


@pytest.mark.parametrize("name", ["ganomaly[memory=bogus]", "ganomaly[nope=1]", "ganomaly[memory=latent", "ganomaly[]"])
def test_a_bad_detector_variant_is_one_line_error(name):
    with pytest.raises(AnomalyError):
        quality.detector_plan(quality.CONFIGS["smoke"], (name,))


def _result(gan: float, best: float, family: str) -> dict:
    task = "magnetic_tile" if family == "magnetic_tile" else "digit-0"
    return {
        "params": {"ganomaly[memory=latent]": {}, "iforest": {}, "pca": {}},
        "records": [{"family": family, "task": task}],
        "summary": {
            task: {
                "ganomaly[memory=latent]": {"auroc": {"mean": gan}},
                "iforest": {"auroc": {"mean": 0.5}},
                "pca": {"auroc": {"mean": best}},
            }
        },
    }


@pytest.mark.parametrize(
    ("gan", "best", "family", "met"),
    [
        (0.70, 0.64, "magnetic_tile", "yes"),
        (0.68, 0.64, "magnetic_tile", "**no**"),
        (0.986, 0.995, "digits", "yes"),
        (0.984, 0.995, "digits", "**no**"),
    ],
)
def test_issue_16_targets_compare_with_the_best_measured_baseline(gan, best, family, met):
    rows = [r for r in quality.targets(_result(gan, best, family)) if "best baseline" in r[0]]
    assert len(rows) == 1
    assert rows[0][2] == met
    assert f"vs pca {best:.3f} (best of iforest, pca;" in rows[0][1]
