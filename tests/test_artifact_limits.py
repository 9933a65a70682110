"""Model folders anyone could have edited: bounded manifest values, clear faults, state files of the folder only.

A manifest is data, but its numbers size networks and buffers, and its fields feed constructors:
every fault must be one ArtifactError line before anything is built, never a KeyError, TypeError
or a 17 GB allocation.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from anomaly.artifact import MANIFEST
from anomaly.errors import AnomalyError, ArtifactError, DataError
from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.plugins import load_model, registry
from tests.stream.support import train_tiny

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tiny_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GANomaly of width 4 on 2 channels, windows of 8: trains in seconds."""
    return train_tiny("series", tmp_path_factory.mktemp("limits") / "series")


@pytest.fixture
def folder(tiny_series: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model folder to damage."""
    return Path(shutil.copytree(tiny_series, tmp_path / "model"))


@pytest.fixture
def never_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that gets as far as building networks: the checks must come first."""

    def build(self) -> None:
        raise AssertionError("networks were built before the manifest was checked")

    for name in ("ganomaly", "anogan"):
        monkeypatch.setattr(registry().get(name), "build", build)


def edit(folder: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def refused(folder: Path, *fragments: str) -> str:
    """load_model's ArtifactError, asserted to be one line naming the folder and each fragment."""
    with pytest.raises(ArtifactError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: ImageSpec(image_size=512), ("image size", "256")),
        (lambda: ImageSpec(image_size=48), ("power of two",)),
        (lambda: ImageSpec(image_size=16, channels=1000000), ("channels", "1 (grayscale) or 3")),
        (lambda: ImageSpec(image_size=16, channels=1.0), ("channels",)),
        (lambda: ImageSpec(image_size=32, tile=True, scale=100000), ("scale", "1024")),
        (lambda: ImageSpec(image_size=32, tile=True, stride=1), ("stride", "from 8 to 1024")),
        (lambda: SeriesSpec(window=100000), ("window", "4096")),
        (lambda: SeriesSpec(window="32"), ("window must be an integer",)),
        (lambda: SeriesSpec(window=8, channels=1000000), ("channels", "1024")),
        (lambda: SeriesSpec(window=4096, channels=16), ("window x channels", "8192")),
        (lambda: SeriesSpec(window=8, channels=2, mean=[0.0], std=[1.0, 1.0]), ("mean", "2 finite numbers")),
        (lambda: SeriesSpec(window=8, channels=1, mean=[0.0], std=[0.0]), ("std must be positive",)),
    ],
)
def test_spec_values_are_bounded(make: Callable[[], object], fragments: tuple[str, ...]) -> None:
    with pytest.raises(DataError) as caught:
        make()
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_generous_specs_still_pass() -> None:
    ImageSpec(image_size=256, channels=3, tile=True, scale=1024, stride=64)
    SeriesSpec(window=4096, channels=2, stride=4)
    SeriesSpec(window=32, channels=256)


@pytest.mark.parametrize(
    ("detector", "spec", "params", "fragment"),
    [
        ("ganomaly", ImageSpec(image_size=256), {"width": 64}, "widest layer 2048 features"),
        ("ganomaly", SeriesSpec(window=8), {"width": 100000}, "width must be from 1 to 1024"),
        ("ganomaly", SeriesSpec(window=4096), {"width": 64, "network": "conv"}, "widest layer 32768"),
        ("ganomaly", SeriesSpec(window=8), {"latent": 10**7}, "latent must be from 1 to 1024"),
        ("anogan", SeriesSpec(window=8), {"search_steps": 10**9}, "search_steps must be from 1 to 1000"),
    ],
)
def test_network_sizes_are_bounded_before_building(
    never_built: None, detector: str, spec: object, params: dict, fragment: str
) -> None:
    cls = registry().get(detector)
    with pytest.raises(AnomalyError, match=fragment):
        cls(spec, params=cls.Params(**params))


def _truncate(folder: Path) -> None:
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text[: len(text) // 2])


def _drop(*path: str) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        for key in path[:-1]:
            manifest = manifest[key]
        del manifest[path[-1]]

    return change


def _set(value: object, *path: str) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        for key in path[:-1]:
            manifest = manifest[key]
        manifest[path[-1]] = value

    return change


MANIFEST_FAULTS = {
    "unknown parameter": (_set("red", "params", "colour"), ("colour are not ganomaly parameters",)),
    "anogan over ganomaly parameters": (_set("anogan", "detector", "name"), ("w_adv", "are not anogan parameters")),
    "channels 1000000": (_set(1000000, "input", "channels"), ("channels must be from 0 to 1024",)),
    "window 10**9": (_set(10**9, "input", "window"), ("window must be from 2 to 4096",)),
    "width 100000": (_set(100000, "params", "width"), ("width must be from 1 to 1024",)),
    "latent 10**7": (_set(10**7, "params", "latent"), ("latent must be from 1 to 1024",)),
    "parameter of the wrong type": (_set("fast", "params", "lr"), ("lr = 'fast' is not of type float",)),
    "params not a mapping": (_set([1, 2], "params"), ("params must be a mapping",)),
    "missing normalisation": (_drop("normalisation"), ("lacks normalisation",)),
    "missing input": (_drop("input"), ("lacks input",)),
    "normalisation of lists": (
        _set([0.1, 0.2], "normalisation", "mean"),
        ("normalisation.mean must be a mapping, not list",),
    ),
    "zero std": (_set(0.0, "normalisation", "std", "latent"), ("positive std",)),
    "threshold as text": (_set("high", "threshold"), ("threshold must be a finite number, not 'high'",)),
    "threshold too large for a float": (_set(10**400, "threshold"), ("threshold must be a finite number",)),
    "unknown modality": (_set("audio", "input", "modality"), ("modality must be one of image, series",)),
    "unknown input field": (_set(3, "input", "colours"), ("unknown series input field(s) colours",)),
    "input not a mapping": (_set("series", "input"), ("input spec must be a mapping",)),
    "mean of the wrong length": (_set([0.0], "input", "mean"), ("mean must be 2 finite numbers",)),
    "no detector name": (_drop("detector", "name"), ("no detector name",)),
    "training not a mapping": (_set([], "training"), ("training must be a mapping, not list",)),
    "missing training": (_drop("training"), ("lacks training",)),
    "misspelt field": (_set(0.5, "treshold"), ("treshold: not a manifest field",)),
    "trained ids not a list": (_set("all", "training", "data", "trained_ids"), ("training.data.trained_ids",)),
    "start time not a time": (_set("yesterday", "training", "started_at"), ("training.started_at",)),
    "components of another version": (
        _set(["reconstruction", "discriminator"], "detector", "components"),
        ("scores reconstruction, discriminator", "installed ganomaly 1.0 scores latent, reconstruction"),
    ),
}


@pytest.mark.parametrize("fault", MANIFEST_FAULTS)
def test_each_manifest_fault_is_one_artifact_error_before_building(never_built: None, folder: Path, fault: str) -> None:
    change, fragments = MANIFEST_FAULTS[fault]
    edit(folder, change)
    refused(folder, *fragments)


@pytest.mark.parametrize(
    ("write", "fragment"),
    [
        (_truncate, "damaged manifest"),
        (lambda folder: (folder / MANIFEST).write_text("[1, 2, 3]"), "model format None"),
        (lambda folder: (folder / MANIFEST).write_text("[" * 100000 + "]" * 100000), "damaged manifest"),
        (lambda folder: (folder / MANIFEST).write_bytes(b"\xff\xfe{}"), "damaged manifest"),
        (lambda folder: (folder / MANIFEST).write_text(" " * (17 * 2**20)), "a manifest may have"),
    ],
)
def test_truncated_or_foreign_manifests_are_refused(
    never_built: None, folder: Path, write: Callable[[Path], None], fragment: str
) -> None:
    write(folder)
    refused(folder, fragment)


def test_a_folder_of_another_detector_is_refused(never_built: None, folder: Path) -> None:
    with pytest.raises(ArtifactError) as caught:
        registry().get("anogan").load(folder)
    assert str(caught.value) == f"{folder}: holds a 'ganomaly' model, not 'anogan'"


def test_an_undamaged_copy_loads_and_scores(folder: Path) -> None:
    import numpy as np

    detector = load_model(folder)
    assert len(detector.score_windows(np.zeros((3, 8, 2), np.float32))) == 3


def _outside_copy(folder: Path, name: str) -> Path:
    outside = folder.parent / f"outside-{name}"
    shutil.copyfile(folder / name, outside)
    return outside


def _symlink_outside(folder: Path) -> None:
    outside = _outside_copy(folder, "decoder.weights.h5")
    (folder / "decoder.weights.h5").unlink()
    (folder / "decoder.weights.h5").symlink_to(outside)


def _symlink_inside(folder: Path) -> None:
    shutil.copyfile(folder / "decoder.weights.h5", folder / "spare.h5")
    (folder / "decoder.weights.h5").unlink()
    (folder / "decoder.weights.h5").symlink_to(folder / "spare.h5")


def _directory(folder: Path) -> None:
    (folder / "decoder.weights.h5").unlink()
    (folder / "decoder.weights.h5").mkdir()


def _fifo(folder: Path) -> None:
    (folder / "decoder.weights.h5").unlink()
    os.mkfifo(folder / "decoder.weights.h5")


def _symlinked_manifest(folder: Path) -> None:
    outside = _outside_copy(folder, MANIFEST)
    (folder / MANIFEST).unlink()
    (folder / MANIFEST).symlink_to(outside)


@pytest.mark.timeout(60)  # a fifo that were opened would block the load forever
@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_symlink_outside, "decoder.weights.h5: a symlink"),
        (_symlink_inside, "decoder.weights.h5: a symlink"),
        (_directory, "decoder.weights.h5: not a regular file"),
        (_fifo, "decoder.weights.h5: not a regular file"),
        (lambda folder: (folder / "decoder.weights.h5").unlink(), "missing state file decoder.weights.h5"),
        (_symlinked_manifest, "manifest.json: a symlink"),
    ],
)
def test_state_files_must_be_regular_files_of_the_folder(
    folder: Path, damage: Callable[[Path], None], fragment: str
) -> None:
    damage(folder)
    refused(folder, fragment)
