"""The quality suite's smoke configuration end to end: every detector and baseline yields every column.

Correctness only, never timing: the figures of a 1-epoch, width-4 run mean nothing. It writes to a
temporary docs file, so running the tests never rewrites the committed docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
