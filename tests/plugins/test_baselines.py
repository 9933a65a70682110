"""The built-in baselines (iforest, pca, autoencoder): registered, saved as data, loaded to the same scores.

Each trains on scikit-learn's bundled digits (16x16, one tile per image) in seconds. A damaged
state file must be one ArtifactError line, for the Python API and the CLI alike.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomaly.data.bundled import digits
from anomaly.detector import Detector, FitSettings
from anomaly.errors import ArtifactError
from anomaly.inputs import ImageSpec
from anomaly.plugins import load_model, registry
from tests.conftest import write_images
from tests.test_cli_errors import assert_clean_error

BASELINES = ("iforest", "pca", "autoencoder")
TINY = {"iforest": {"trees": 20}, "pca": {}, "autoencoder": {"width": 4, "latent": 4}}
STATE = {"iforest": "forest.npz", "pca": "pca.npz", "autoencoder": "decoder.weights.h5"}


def _digits(anomalous: bool = False) -> np.ndarray:
    """Zeros (the normal class), or every other digit."""
    data = digits(0)
    return np.stack([image for image, label in zip(data.images, data.labels) if label == anomalous])


def _fit(name: str, x: np.ndarray) -> Detector:
    cls = registry().get(name)
    spec = ImageSpec(image_size=16, tile=False)
    detector = cls(spec, cls.Params(**TINY[name]), FitSettings(epochs=1, batch_size=32, seed=0))
    return detector.fit(x)


@pytest.fixture(scope="module", params=BASELINES)
def saved(request, tmp_path_factory) -> tuple[Detector, Path, np.ndarray]:
    """(fitted detector, its model folder, test images): trained on 120 normal digits, tested on others."""
    normal = _digits()
    detector = _fit(request.param, normal[:120])
    folder = detector.save(tmp_path_factory.mktemp(request.param) / "model")
    return detector, folder, np.concatenate([normal[120:], _digits(anomalous=True)[:60]])


def test_the_baselines_are_built_in_plugins() -> None:
    found = registry()
    assert set(BASELINES) <= set(found.detectors), sorted(found.broken.items())
    assert not set(BASELINES) & set(found.broken)


def test_a_loaded_model_scores_exactly_as_the_fitted_one(saved) -> None:
    detector, folder, test = saved
    loaded = load_model(folder)
    assert type(loaded) is type(detector) and loaded.threshold == detector.threshold
    np.testing.assert_array_equal(loaded.decision_function(test), detector.decision_function(test))
    np.testing.assert_array_equal(loaded.predict(test), detector.predict(test))


def test_the_model_folder_holds_data_only(saved) -> None:
    _, folder, _ = saved
    for path in folder.iterdir():
        assert path.suffix in (".json", ".npz", ".h5"), path.name
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                assert all(arrays[key].dtype != object for key in arrays.files)


def test_a_corrupt_state_file_is_one_clear_line(saved, tmp_path: Path, cli) -> None:
    detector, folder, test = saved
    broken = shutil.copytree(folder, tmp_path / "model")
    state = broken / STATE[detector.name]
    state.write_bytes(state.read_bytes()[:200])
    with pytest.raises(ArtifactError, match=STATE[detector.name]):
        load_model(broken)
    images = write_images(tmp_path / "images", 2, size=(16, 16))
    assert_clean_error(cli("score", broken, images), STATE[detector.name])


def test_a_missing_state_file_is_one_clear_line(saved, tmp_path: Path) -> None:
    detector, folder, _ = saved
    broken = shutil.copytree(folder, tmp_path / "model")
    (broken / STATE[detector.name]).unlink()
    with pytest.raises(ArtifactError, match=f"missing state file {STATE[detector.name]}"):
        load_model(broken)


def _edited(folder: Path, tmp_path: Path, name: str, **changes: np.ndarray) -> Path:
    """A copy of the model folder whose npz state has some arrays replaced, as a hand edit would."""
    copy = shutil.copytree(folder, tmp_path / "edited")
    with np.load(copy / name) as stored:
        arrays = {key: stored[key] for key in stored.files}
    with (copy / name).open("wb") as file:
        np.savez(file, **{**arrays, **changes})
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: {"left": np.where(a["left"] > 0, 0, a["left"])}, "child links"),
        (lambda a: {"feature": a["feature"] + 10_000}, "feature outside"),
        (lambda a: {"roots": a["roots"][:3]}, "holds 3 trees, the manifest says 20"),
        (lambda a: {"threshold": a["threshold"].astype(str)}, "threshold should hold floating-point values"),
        (lambda a: {"path": np.full_like(a["path"], np.nan)}, "not finite"),
        (lambda a: {"denominator": np.array([object()], dtype=object)}, "not a readable .npz"),
    ],
    ids=["cycle", "feature", "trees", "dtype", "nan", "pickle"],
)
def test_a_hand_edited_forest_is_refused(edit, message: str, tmp_path: Path) -> None:
    detector = _fit("iforest", _digits()[:60])
    folder = detector.save(tmp_path / "model")
    with np.load(folder / "forest.npz") as stored:
        arrays = {key: stored[key] for key in stored.files}
    with pytest.raises(ArtifactError, match=message):
        load_model(_edited(folder, tmp_path, "forest.npz", **edit(arrays)))


def test_pca_components_that_do_not_fit_the_input_are_refused(tmp_path: Path) -> None:
    detector = _fit("pca", _digits()[:60])
    folder = detector.save(tmp_path / "model")
    edited = _edited(folder, tmp_path, "pca.npz", mean=np.zeros(10, np.float32))
    with pytest.raises(ArtifactError, match="do not fit samples of 256 values"):
        load_model(edited)


def test_iforest_scores_an_obvious_outlier_above_every_normal_digit() -> None:
    normal = _digits()
    detector = _fit("iforest", normal[:120])
    checkerboard = (np.indices((16, 16, 1)).sum(axis=0) % 2 * 255).astype(np.uint8)
    scores = detector.decision_function(np.concatenate([normal[120:], checkerboard[None]]))
    assert scores[-1] > scores[:-1].max()
    assert detector.predict(checkerboard[None])[0] == 1


def test_iforest_numpy_scores_are_scikit_learns() -> None:
    """The forest is scored from its saved arrays by hand-written numpy: it must be the estimator's own score."""
    from sklearn.ensemble import IsolationForest

    from anomaly_plugins.baselines.iforest.detector import Forest

    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 12)), rng.normal(scale=2, size=(200, 12))
    estimator = IsolationForest(n_estimators=30, max_samples=64, random_state=0).fit(train)
    np.testing.assert_array_equal(Forest.of(estimator).isolation(test), -estimator.score_samples(test))


def test_train_evaluate_and_score_from_the_cli(cli, tmp_path: Path) -> None:
    train = write_images(tmp_path / "train", 12, size=(16, 16))
    write_images(tmp_path / "data" / "good", 6, seed=2, size=(16, 16))
    (tmp_path / "data" / "noise").mkdir()
    for i in range(4):
        noise = np.random.default_rng(i).integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / "data" / "noise" / f"{i}.png")
    for name in ("iforest", "pca"):
        model = tmp_path / name
        trained = cli("train", name, train, "--out", model, "--image-size", "16", "--no-tile", "--no-progress")
        assert trained.exit_code == 0, trained.output
        evaluated = cli("evaluate", model, tmp_path / "data")
        assert evaluated.exit_code == 0 and "AUROC" in evaluated.output, evaluated.output
        scored = cli("score", model, tmp_path / "data" / "noise")
        assert scored.exit_code == 0 and scored.output.count('"score"') == 4, scored.output
