"""Bad input gets a one-line error naming the problem and a non-zero exit — never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import TINY_TRAINING as TINY
from tests.conftest import write_images, write_series

SECRET = "s3cret-Pw"


def assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    text = result.output.strip()
    assert "Traceback" not in text
    last = text.splitlines()[-1]
    assert last.startswith("Error: ")
    for fragment in fragments:
        assert fragment in last


def run_anomaly(
    *args: object, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m anomaly ARGS`` as an operator runs it: its own process, in ``cwd``, no ANOMALY_* but ``env``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANOMALY_")}
    return subprocess.run(
        [sys.executable, "-m", "anomaly", *map(str, args)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _log_record(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def assert_one_error_line(
    done: subprocess.CompletedProcess[str], *fragments: str, secrets: tuple[str, ...] = (), json_logs: bool = False
) -> str:
    """A non-zero exit and exactly one ``Error:`` line on stderr (after serve's JSON log records when
    ``json_logs``), holding every fragment; no secret anywhere in the output."""
    assert done.returncode != 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    if json_logs:
        lines = [line for line in lines if not _log_record(line)]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    return lines[0]


def test_missing_folder(cli, tmp_path: Path) -> None:
    assert_clean_error(
        cli("train", "ganomaly", tmp_path / "nope", "--out", tmp_path / "m", *TINY), "no such file or folder"
    )


def test_empty_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_clean_error(cli("train", "ganomaly", tmp_path / "empty", "--out", tmp_path / "m", *TINY), "no images found")


def test_corrupt_image(cli, tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 4)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    assert_clean_error(
        cli("train", "ganomaly", folder, "--out", tmp_path / "m", *TINY), "broken.jpg", "not a readable image"
    )


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
    assert_clean_error(
        cli("train", "no-such-gan", csv, "--out", tmp_path / "m", "--no-progress"),
        "unknown detector 'no-such-gan'",
        "ganomaly",
    )


def test_unknown_detector_option(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    assert_clean_error(
        cli("train", "ganomaly", csv, "--out", tmp_path / "m", "--set", "depth=3", "--no-progress"),
        "unknown option 'depth'",
    )


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


@pytest.mark.parametrize(
    ("url", "fragments", "secrets"),
    [
        (f"postgresql://anomaly:{SECRET}@127.0.0.1:abc/db", ("127.0.0.1:abc", "port must be a number"), (SECRET,)),
        (
            f"postgres://anomaly:{SECRET}@127.0.0.1:1/db",
            ("postgresql+psycopg://anomaly:***@127.0.0.1:1/db", "port 1 failed"),
            (SECRET,),
        ),
        (
            f"postgresql://anomaly:p@ss-{SECRET}@127.0.0.1:1/db",
            ("anomaly:***@127.0.0.1:1/db", "%40"),
            (f"ss-{SECRET}", SECRET),
        ),
        (f"postgresql+psycopg://anomaly:p@ss:{SECRET}@127.0.0.1:1/db", ("%40",), (SECRET,)),
        (
            f"postgresql+psycopg://anomaly:{quote('p@ss:w/' + SECRET, safe='')}@127.0.0.1:1/db",
            ("anomaly:***@127.0.0.1:1/db", "port 1 failed"),
            (SECRET,),
        ),
        (f"postgresql+psycopg://anomaly:pa:ss/{SECRET}@127.0.0.1:1/db", ("anomaly:***@", "port 1 failed"), (SECRET,)),
        (
            f"postgresql+psycopg://anomaly@127.0.0.1:1/db?sslmode=disable&password={SECRET}",
            ("password=***", "port 1 failed"),
            (SECRET,),
        ),
    ],
    ids=[
        "port-not-a-number",
        "postgres-scheme",
        "at-in-password",
        "at-then-colon",
        "percent-escaped",
        "colon-and-slash",
        "query-password",
    ],
)
def test_database_url_mistakes_are_one_line_without_the_password(
    tmp_path: Path, url: str, fragments: tuple[str, ...], secrets: tuple[str, ...]
) -> None:
    done = run_anomaly("db", "current", cwd=tmp_path, env={"ANOMALY_DATABASE_URL": url})
    assert_one_error_line(done, *fragments, secrets=secrets)


def test_database_url_from_the_config_file_is_masked_too(tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text(f'[database]\nurl = "postgresql://anomaly:p@ss-{SECRET}@127.0.0.1:1/db"\n')
    assert_one_error_line(run_anomaly("db", "upgrade", cwd=tmp_path), "%40", secrets=(f"ss-{SECRET}",))


def test_labelling_an_id_too_large_for_the_database_is_one_line(tmp_path: Path) -> None:
    from anomaly.store import migrate

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url=url)
    done = run_anomaly(
        "events", "label", "999999999999999999999", "normal", cwd=tmp_path, env={"ANOMALY_DATABASE_URL": url}
    )
    assert_one_error_line(done, "no event with id 999999999999999999999")
