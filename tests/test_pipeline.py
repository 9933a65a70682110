"""Train → save → load → score → evaluate through the CLI, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anomaly.detector import FitSettings
from anomaly.errors import AnomalyError, DataError
from anomaly.inputs import ImageSpec
from anomaly.testing import synthetic_images
from tests.conftest import write_images

TINY = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress", "--image-size", "16")


def _labelled_folder(root: Path) -> Path:
    write_images(root / "good", 10)
    defects = root / "scratch"
    defects.mkdir(parents=True)
    from PIL import Image

    rng = np.random.default_rng(5)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (24, 30), dtype=np.uint8)).save(defects / f"d{i}.png")
    return root


def test_train_score_evaluate_on_a_labelled_image_folder(cli, tmp_path: Path) -> None:
    data = _labelled_folder(tmp_path / "parts")
    model = tmp_path / "model"
    trained = cli("train", "ganomaly", data, "--out", model, "--test-fraction", "0.3", *TINY)
    assert trained.exit_code == 0, trained.output
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["detector"]["name"] == "ganomaly"
    assert manifest["input"]["channels"] == 1
    assert len(manifest["training"]["data"]["trained_ids"]) == 7  # 10 normal, 30% kept for evaluation
    assert set(manifest["normalisation"]["mean"]) == {"latent", "reconstruction", "discriminator", "memory"}
    assert {"keras", "numpy"} <= set(manifest["libraries"])

    result = cli("evaluate", model, data, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["excluded_training_items"] == 7
    assert report["results"]["all"]["normal"] == 3 and report["results"]["all"]["anomalous"] == 4
    assert set(report["results"]) == {"all", "scratch"}
    assert 0.0 <= report["results"]["all"]["auroc"] <= 1.0

    first = cli("score", model, data / "scratch", "--maps", tmp_path / "maps")
    again = cli("score", model, data / "scratch")
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in first.output.splitlines() if line.startswith("{")]
    assert [r["score"] for r in rows] == [json.loads(line)["score"] for line in again.output.splitlines()]
    assert len(list((tmp_path / "maps").glob("*.png"))) == 4


def test_same_seed_same_scores_through_the_cli(cli, tmp_path: Path) -> None:
    data = write_images(tmp_path / "imgs", 8)
    outputs = []
    for run in ("a", "b"):
        assert cli("train", "ganomaly", data, "--out", tmp_path / run, "--seed", "7", *TINY).exit_code == 0
        outputs.append(cli("score", tmp_path / run, data).output)
    assert outputs[0] == outputs[1]


def test_holdout_never_splits_an_image_across_train_and_calibration() -> None:
    from anomaly.harness import holdout
    from anomaly.plugins import registry

    detector = registry().get("ganomaly")(ImageSpec(image_size=16, tile=True), settings=FitSettings(holdout=0.25))
    train, held = holdout(detector, synthetic_images(count=12))
    assert len(held) == 3 and len(train) == 9
    assert not set(train.ids) & set(held.ids)


def test_evaluate_smd_windows(cli, tmp_path: Path, shared_data: Path) -> None:
    npz = shared_data / "smd" / "machine-2-7.npz"
    model = tmp_path / "smd"
    trained = cli(
        "train",
        "ganomaly",
        npz,
        "--out",
        model,
        "--window",
        "16",
        "--stride",
        "8",
        "--epochs",
        "1",
        "--set",
        "width=8",
        "--set",
        "latent=8",
        "--no-progress",
    )
    assert trained.exit_code == 0, trained.output
    report = json.loads(cli("evaluate", model, npz, "--json").output)
    result = report["results"]["all"]
    assert result["normal"] + result["anomalous"] == 23696 - 15
    assert result["anomalous"] > 0 and 0.0 <= result["auprc"] <= 1.0


def test_xla_compiled_training_repeats_with_a_seed(monkeypatch) -> None:
    """Long runs compile the training step with XLA; a seed must still repeat exactly."""
    from anomaly.keras.detector import KerasDetector
    from anomaly.plugins import registry
    from anomaly.testing import make_spec, synthetic_series

    monkeypatch.setattr(KerasDetector, "xla_min_steps", 0)
    cls = registry().get("ganomaly")
    runs = []
    for _ in range(2):
        detector = cls(make_spec("series"), cls.Params(width=4, latent=4), FitSettings(epochs=1, batch_size=16, seed=5))
        detector.fit(synthetic_series())
        assert detector.compile_training is True
        runs.append(detector.score(synthetic_series()).scores)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_windows_scored_as_cut_match_the_series_scores() -> None:
    """The stream scores windows it cut itself; they must score exactly as the same steps of the series."""
    from anomaly.plugins import registry
    from anomaly.testing import make_spec, synthetic_series

    cls = registry().get("ganomaly")
    detector = cls(make_spec("series"), cls.Params(width=4, latent=4), FitSettings(epochs=1, batch_size=16, seed=3))
    series = synthetic_series()
    with pytest.raises(AnomalyError, match="must be fitted"):
        detector.score_windows(np.zeros((1, 8, 2), np.float32))
    detector.fit(series)
    whole = detector.score(series, maps=False)
    window = detector.spec.window
    cut = np.lib.stride_tricks.sliding_window_view(series.values, window, axis=0).transpose(0, 2, 1)
    alone = detector.score_windows(np.ascontiguousarray(cut))
    np.testing.assert_allclose(alone.scores, whole.scores, rtol=1e-5, atol=1e-6)
    assert alone.threshold == whole.threshold
    with pytest.raises(DataError, match="expected windows shaped"):
        detector.score_windows(np.zeros((2, window + 1, detector.spec.channels), np.float32))


def test_unset_width_is_chosen_per_input_without_touching_the_callers_params() -> None:
    from anomaly.plugins import registry
    from anomaly.testing import make_spec

    cls = registry().get("ganomaly")
    shared = cls.Params()
    image = cls(make_spec("image"), shared)
    series = cls(make_spec("series"), shared)
    assert (image.params.width, series.params.width, shared.width) == (16, 32, None)


@pytest.mark.parametrize(
    "modality, memory, scored_by",
    [
        ("image", "auto", ("memory",)),
        ("image", "none", ("latent", "reconstruction", "discriminator")),
        ("series", "auto", ("reconstruction",)),
    ],
)
def test_ganomaly_scores_each_input_by_its_chosen_components(
    modality: str, memory: str, scored_by: tuple[str, ...]
) -> None:
    """Images by the latent-code bank by default, else all three components; series by reconstruction
    (docs/decisions/0005, 0002 and 0001)."""
    from anomaly.plugins import registry
    from anomaly.testing import make_data, make_spec

    cls = registry().get("ganomaly")
    # Whole images: with tiles, the image score is the pooled mix, not a mix of pooled components.
    spec = ImageSpec(image_size=16) if modality == "image" else make_spec(modality)
    detector = cls(spec, cls.Params(width=4, latent=4, memory=memory), FitSettings(epochs=1, batch_size=8, seed=0))
    data = make_data(modality)
    detector.fit(data)
    scores = detector.score(data, maps=False)
    norm = detector.normaliser
    standardised = [(scores.components[k] - norm.mean[k]) / norm.std[k] for k in scored_by]
    np.testing.assert_allclose(scores.scores, np.mean(standardised, axis=0), rtol=1e-6, atol=1e-9)
    banked = {"memory"} if modality == "image" and memory == "auto" else set()
    assert set(scores.components) == {"latent", "reconstruction", "discriminator"} | banked
