"""Bad input gets a one-line error naming the problem and a non-zero exit — never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_images, write_series

TINY = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress")


def assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    text = result.output.strip()
    assert "Traceback" not in text
    last = text.splitlines()[-1]
    assert last.startswith("Error: ")
    for fragment in fragments:
        assert fragment in last


@pytest.fixture(scope="module")
def series_model(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from anomaly.cli import cli

    tmp = tmp_path_factory.mktemp("series-model")
    csv = write_series(tmp / "train.csv")
    result = CliRunner().invoke(cli, ["train", "ganomaly", str(csv), "--out", str(tmp / "model"), "--window", "8", *TINY])
    assert result.exit_code == 0, result.output
    return tmp / "model"


def test_missing_folder(cli, tmp_path: Path) -> None:
    assert_clean_error(cli("train", "ganomaly", tmp_path / "nope", "--out", tmp_path / "m", *TINY), "no such file or folder")


def test_empty_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_clean_error(cli("train", "ganomaly", tmp_path / "empty", "--out", tmp_path / "m", *TINY), "no images found")


def test_corrupt_image(cli, tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 4)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    assert_clean_error(cli("train", "ganomaly", folder, "--out", tmp_path / "m", *TINY), "broken.jpg", "not a readable image")


def test_csv_with_nan(cli, tmp_path: Path) -> None:
    csv = tmp_path / "nan.csv"
    csv.write_text("a,b\n1,2\n3,\n5,6\n")
    assert_clean_error(cli("train", "ganomaly", csv, "--out", tmp_path / "m", *TINY), "non-finite", "row 1")


def test_csv_with_ragged_rows(cli, tmp_path: Path) -> None:
    csv = tmp_path / "ragged.csv"
    csv.write_text("a,b\n1,2\n3,4,5\n")
    assert_clean_error(cli("train", "ganomaly", csv, "--out", tmp_path / "m", *TINY), "not a well-formed CSV")


def test_csv_with_wrong_column_count_for_the_model(cli, series_model: Path, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "three.csv", channels=3)
    assert_clean_error(cli("score", series_model, csv), "3 channel(s)", "trained on 2")


def test_window_longer_than_series(cli, series_model: Path, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "short.csv", steps=5)
    assert_clean_error(cli("score", series_model, csv), "longer than the series")


def test_window_longer_than_training_series(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "short.csv", steps=20)
    assert_clean_error(cli("train", "ganomaly", csv, "--out", tmp_path / "m", "--window", "64", *TINY), "too few")


def test_unknown_detector(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    assert_clean_error(cli("train", "no-such-gan", csv, "--out", tmp_path / "m", "--no-progress"),
                       "unknown detector 'no-such-gan'", "ganomaly")


def test_unknown_detector_option(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    assert_clean_error(cli("train", "ganomaly", csv, "--out", tmp_path / "m", "--set", "depth=3", "--no-progress"),
                       "unknown option 'depth'")


def test_model_folder_from_an_incompatible_version(cli, series_model: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(series_model, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format"] = 99
    manifest["anomaly_version"] = "9.0.0"
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(cli("score", old, write_series(tmp_path / "s.csv")), "format 99", "9.0.0")


def test_model_folder_from_an_incompatible_detector_version(cli, series_model: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(series_model, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["detector"]["version"] = "7.2"
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(cli("score", old, write_series(tmp_path / "s.csv")), "ganomaly 7.2", "retrain")


def test_not_a_model_folder(cli, tmp_path: Path) -> None:
    assert_clean_error(cli("score", tmp_path, write_series(tmp_path / "s.csv")), "not a model folder")


def test_evaluate_without_labels(cli, series_model: Path, tmp_path: Path) -> None:
    assert_clean_error(cli("evaluate", series_model, write_series(tmp_path / "s.csv")), "no labels")
