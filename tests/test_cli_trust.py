"""Issue 18's traps: every one ends in one clear line on stderr, no TensorFlow lines, a non-zero exit and nothing written.

Each trap runs ``python -m anomaly`` in its own process, as a user would, so TensorFlow's start-up
logging (which an in-process runner would have swallowed long ago) would show up on stderr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from tests.conftest import TINY_TRAINING as TINY
from tests.conftest import write_images, write_series
from tests.test_cli_errors import assert_one_error_line, run_anomaly


def labelled_folder(root: Path, classes: tuple[str, ...] = ("MT_Free", "MT_Crack")) -> Path:
    for seed, name in enumerate(classes):
        write_images(root / name / "Imgs", 4, seed=seed, size=(20, 20))
    return root


def assert_trap(tmp_path: Path, *args: object, fragments: tuple[str, ...]) -> str:
    """Run a command that must fail, and check it left nothing behind in ``tmp_path``."""
    before = sorted(tmp_path.rglob("*"))
    line = assert_one_error_line(run_anomaly(*args, cwd=tmp_path), *fragments)
    assert sorted(tmp_path.rglob("*")) == before, "the failed command wrote files"
    return line


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        ("network=lstm", ("network must be one of dense, conv", "'lstm'")),
        ("width=-4", ("width must be from 1 to 1024 (got -4)",)),
        ("latent=0", ("latent must be from 1 to 1024 (got 0)",)),
        ("score_weights=latent", ("score_weights='latent'", "COMPONENT:WEIGHT")),
        ("score_weights=foo:1", ("unknown component(s) foo", "latent, reconstruction, discriminator")),
        ("lr=-1", ("lr must be > 0 and <= 1 (got -1.0)",)),
    ],
)
def test_bad_detector_options_are_refused_before_training(
    tmp_path: Path, option: str, fragments: tuple[str, ...]
) -> None:
    csv = write_series(tmp_path / "s.csv")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "m",
        "--window",
        "8",
        *TINY,
        "--set",
        option,
        fragments=fragments,
    )


def test_a_missing_normal_class_lists_the_sub_folders(tmp_path: Path) -> None:
    data = labelled_folder(tmp_path / "tile")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        data,
        "--out",
        tmp_path / "m",
        "--normal-class",
        "Nope",
        *TINY,
        fragments=("'Nope'", "MT_Crack, MT_Free"),
    )


def test_a_labelled_folder_without_good_needs_the_normal_class(tmp_path: Path) -> None:
    data = labelled_folder(tmp_path / "tile")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        data,
        "--out",
        tmp_path / "m",
        *TINY,
        fragments=("no 'good' folder", "--normal-class", "MT_Crack, MT_Free"),
    )


def test_a_plain_folder_of_normal_images_still_trains_without_a_class(tmp_path: Path) -> None:
    from anomaly.data.images import load_images

    data = write_images(tmp_path / "MT_Free" / "Imgs", 3)
    assert len(load_images(data.parent)) == 3


def test_out_naming_a_file_is_refused_before_training(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    (tmp_path / "taken").write_text("not a model")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "taken",
        "--window",
        "8",
        *TINY,
        fragments=("is a file",),
    )


def test_an_existing_model_is_not_overwritten_without_force(tmp_path: Path, series_model: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(series_model, model)
    csv = write_series(tmp_path / "s.csv")
    assert_trap(tmp_path, "train", "ganomaly", csv, "--out", model, "--window", "8", *TINY, fragments=("--force",))


def test_force_replaces_the_model(cli, tmp_path: Path, series_model: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(series_model, model)
    (model / "stale.weights.h5").write_text("left from an older model")
    csv = write_series(tmp_path / "s.csv", channels=3)
    result = cli("train", "ganomaly", csv, "--out", model, "--window", "8", "--force", *TINY)
    assert result.exit_code == 0, result.output
    assert not (model / "stale.weights.h5").exists()
    assert json.loads((model / "manifest.json").read_text())["input"]["channels"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_that_is_not_a_model_is_never_replaced(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "notes",
        "--force",
        "--window",
        "8",
        *TINY,
        fragments=("holds no model",),
    )


def test_a_yes_no_label_column_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'yes' if i % 7 == 0 else 'no'}\n" for i in range(60)))
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "m",
        "--window",
        "8",
        *TINY,
        fragments=("column 'label'", "0 (normal) or 1 (anomalous)", "'yes'"),
    )


def test_a_text_file_named_npz_is_one_line_without_pickle_advice(tmp_path: Path) -> None:
    npz = tmp_path / "series.npz"
    npz.write_text("1,2\n3,4\n")
    line = assert_trap(
        tmp_path, "train", "ganomaly", npz, "--out", tmp_path / "m", *TINY, fragments=("not an NPZ file",)
    )
    assert "pickle" not in line


def test_diverging_training_saves_nothing(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    assert_trap(
        tmp_path,
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "m",
        "--window",
        "8",
        *TINY,
        "--set",
        "w_con=1e300",
        fragments=("training diverged at epoch 1", "nothing was saved"),
    )


def test_a_non_finite_threshold_is_refused_by_evaluate_and_score(tmp_path: Path, series_model: Path) -> None:
    model = tmp_path / "nan-model"
    shutil.copytree(series_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["threshold"] = float("nan")
    (model / "manifest.json").write_text(json.dumps(manifest))
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "a,b,label\n" + "".join(f"{np.sin(i / 4)},{np.sin(i / 5)},{int(i % 40 == 0)}\n" for i in range(120))
    )
    assert_trap(tmp_path, "evaluate", model, labelled, fragments=("threshold must be a finite number",))
    assert_trap(tmp_path, "score", model, labelled, fragments=("threshold must be a finite number",))


def test_scores_that_are_not_finite_print_as_null_and_fail(tmp_path: Path, series_model: Path) -> None:
    import h5py

    model = tmp_path / "nan-weights"
    shutil.copytree(series_model, model)
    with h5py.File(model / "decoder.weights.h5", "r+") as weights:
        weights.visititems(
            lambda _, item: item.__setitem__(Ellipsis, np.nan) if isinstance(item, h5py.Dataset) else None
        )
    done = run_anomaly("score", model, write_series(tmp_path / "s.csv"), cwd=tmp_path)
    assert_one_error_line(done, "no finite score", "printed as null")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows and all(row["score"] is None and row["is_anomaly"] is None for row in rows)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "a,b,label\n" + "".join(f"{np.sin(i / 4)},{np.sin(i / 5)},{int(i % 40 == 0)}\n" for i in range(120))
    )
    assert_trap(tmp_path, "evaluate", model, labelled, fragments=("no finite score", "retrain"))


def test_inputs_are_checked_before_tensorflow_loads(tmp_path: Path, series_model: Path) -> None:
    probe = (
        "import sys\nfrom anomaly.cli import cli\n"
        "try:\n    cli(sys.argv[1:], standalone_mode=False)\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
        "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'tensorflow not loaded')\n"
    )
    for args in (
        ["score", str(series_model), str(tmp_path / "missing.csv")],
        ["evaluate", str(series_model), str(tmp_path / "missing.csv")],
        ["score", str(tmp_path / "no-model"), str(write_series(tmp_path / "s.csv"))],
    ):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert done.stdout.splitlines()[-1] == "tensorflow not loaded", done.stdout + done.stderr


def test_quiet_by_default_and_tensorflow_logs_with_verbose(tmp_path: Path, series_model: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    quiet = run_anomaly("score", series_model, csv, cwd=tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": ""})
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run_anomaly("-v", "score", series_model, csv, cwd=tmp_path)
    assert loud.returncode == 0 and "tensorflow" in loud.stderr.lower()


def test_results_go_to_stdout_and_json_is_offered(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    done = run_anomaly("train", "ganomaly", csv, "--out", tmp_path / "m", "--window", "8", *TINY, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "trained ganomaly" in done.stdout and "threshold" in done.stdout
    as_json = run_anomaly(
        "train", "ganomaly", csv, "--out", tmp_path / "m", "--force", "--window", "8", *TINY, "--json", cwd=tmp_path
    )
    report = json.loads(as_json.stdout)
    assert report["detector"] == "ganomaly" and np.isfinite(report["threshold"])


def test_every_option_has_help() -> None:
    from anomaly.cli import cli

    missing = [
        f"{command.name} {param.opts[0]}"
        for command in [cli, *cli.commands.values()]
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []


def test_plugins_lists_options_as_objects_and_reads_at_any_width(tmp_path: Path) -> None:
    listed = json.loads(run_anomaly("plugins", "--json", cwd=tmp_path).stdout)
    ganomaly = next(d for d in listed["detectors"] if d["name"] == "ganomaly")
    network = next(o for o in ganomaly["options"] if o["name"] == "network")
    assert (
        network
        == {"name": "network", "type": "str", "default": "dense", "choices": ["dense", "conv"], "help": network["help"]}
        and network["help"]
    )
    text = run_anomaly("plugins", cwd=tmp_path, env={"COLUMNS": "40"}).stdout
    assert any(line.strip().startswith("network=dense") and "one of dense|conv" in line for line in text.splitlines())


def test_stride_means_the_step_between_windows_in_train_and_score(tmp_path: Path, series_model: Path) -> None:
    from anomaly.cli import cli

    for name in ("train", "score"):
        stride = next(p for p in cli.commands[name].params if p.name == "stride")
        assert stride.help.startswith("Step between consecutive")
    image_model = tmp_path / "image-model"
    shutil.copytree(series_model, image_model)
    manifest = json.loads((image_model / "manifest.json").read_text())
    manifest["input"] = {"modality": "image", "image_size": 16}
    (image_model / "manifest.json").write_text(json.dumps(manifest))
    pictures = write_images(tmp_path / "parts", 1)
    assert_trap(tmp_path, "score", image_model, pictures, "--stride", "4", fragments=("--stride applies to series",))


def test_config_file_with_flags_overriding_and_the_run_repeatable_from_its_folder(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    config = tmp_path / "run.toml"
    config.write_text(
        f'detector = "ganomaly"\ndata = "{csv}"\nwindow = 8\nepochs = 3\nprogress = false\n'
        "set = {width = 4, latent = 4, score_weights = {reconstruction = 1}}\n"
    )
    result = cli("train", "--config", config, "--out", tmp_path / "a", "--epochs", "1")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["training"]["epochs_run"] == 1
    assert manifest["params"]["width"] == 4 and manifest["params"]["score_weights"] == {"reconstruction": 1.0}
    assert manifest["config"]["window"] == 8 and manifest["config"]["data"] == str(csv.resolve())
    again = cli("train", "--config", tmp_path / "a", "--out", tmp_path / "b")
    assert again.exit_code == 0, again.output
    repeated = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert repeated["threshold"] == manifest["threshold"] and repeated["params"] == manifest["params"]
    yaml_config = tmp_path / "eval.yaml"
    yaml_config.write_text(f"model: {tmp_path / 'a'}\ndata: {csv}\njson: true\n")
    assert_one_error_line(run_anomaly("evaluate", "--config", yaml_config, cwd=tmp_path), "no labels")


def test_config_file_with_an_unknown_key_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('detector = "ganomaly"\nepoch = 3\n')
    assert_trap(tmp_path, "train", "--config", config, "--out", tmp_path / "m", fragments=("unknown key 'epoch'",))


def test_register_checks_the_database_before_training(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    before = sorted(tmp_path.rglob("*"))
    done = run_anomaly(
        "train",
        "ganomaly",
        csv,
        "--out",
        tmp_path / "m",
        "--window",
        "8",
        *TINY,
        "--register",
        "pumps",
        cwd=tmp_path,
        env={"ANOMALY_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"},
    )
    assert_one_error_line(done, "no anomaly schema yet", "anomaly db upgrade")
    assert not (tmp_path / "m").exists()
    assert [p for p in sorted(tmp_path.rglob("*")) if p.name != "fresh.db"] == before


def test_train_reports_the_modes_of_normal_data_it_calibrated_per_mode(tmp_path: Path) -> None:
    from PIL import Image

    folder = write_images(tmp_path / "parts", 30)
    rng = np.random.default_rng(1)
    for i in range(30):  # a second, darker variant of normal parts
        Image.fromarray(rng.integers(10, 40, (24, 30), dtype=np.uint8)).save(folder / f"dark{i:02d}.png")
    args = ("train", "ganomaly", folder, "--out", tmp_path / "m", "--force", *TINY, "--modes", "auto")
    shown = run_anomaly(*args, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "modes of normal data" in shown.stdout and "2: scores standardised per mode" in shown.stdout
    report = json.loads(run_anomaly(*args, "--json", cwd=tmp_path).stdout)
    assert report["modes"]["count"] == len(report["modes"]["mean"]) == len(report["modes"]["std"]) == 2
    refused = run_anomaly("train", "ganomaly", folder, "--out", tmp_path / "n", *TINY, "--modes", "0", cwd=tmp_path)
    assert_one_error_line(refused, "modes must be auto or a whole number from 1 to 8 (got '0')")
