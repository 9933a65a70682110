"""Bad model versions: whatever is promoted, the scorer keeps serving a version that loads.

Each bad version is activated straight in the database, as a racing script or a folder edited after
its promotion would leave it; `promote` itself refuses them (tested here too).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.orm import Session

from anomaly.artifact import MANIFEST
from anomaly.cli import cli
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.store import migrate
from anomaly.store.config import URL_ENV
from anomaly.store.engine import get_engine
from anomaly.store.registry import ModelRecord, active_model, list_models, promote
from anomaly.store.schema import Model, utcnow
from anomaly.stream import models as stream_models
from anomaly.stream.consumer import ServeSettings, StreamScorer
from anomaly.stream.models import ModelWatcher
from tests.kafka_broker import KafkaBroker
from tests.stream.support import images, producer, register, send, stored, wait_until

pytestmark = pytest.mark.timeout(300)


def _edit(folder: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _unknown_parameter(folder: Path) -> None:
    _edit(folder, lambda m: m["params"].update(colour="red"))


def _anogan_over_ganomaly(folder: Path) -> None:
    _edit(folder, lambda m: m["detector"].update(name="anogan"))


def _million_channels(folder: Path) -> None:
    _edit(folder, lambda m: m["input"].update(channels=1000000))


def _weights_symlinked_outside(folder: Path) -> None:
    """Weights that would load fine (a copy of the folder's own), but through a link out of the folder."""
    outside = folder.parent / f"{folder.name}-decoder.weights.h5"
    shutil.copyfile(folder / "decoder.weights.h5", outside)
    (folder / "decoder.weights.h5").unlink()
    (folder / "decoder.weights.h5").symlink_to(outside)


def _truncated_manifest(folder: Path) -> None:
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text[: len(text) // 2])


BAD_VERSIONS = {
    "unknown parameter": _unknown_parameter,
    "anogan over ganomaly parameters": _anogan_over_ganomaly,
    "channels 1000000": _million_channels,
    "weights symlinked outside the folder": _weights_symlinked_outside,
    "truncated manifest": _truncated_manifest,
}


def register_bad(url: str, good_folder: Path, root: Path, kind: str) -> ModelRecord:
    """Register a copy of a good folder (as `anomaly train --register` would), then damage the copy."""
    folder = Path(shutil.copytree(good_folder, root / kind.replace(" ", "-")))
    record = register(url, "tiles", folder)
    BAD_VERSIONS[kind](folder)
    return record


def activate_unchecked(url: str, record: ModelRecord) -> None:
    """Make ``record`` the active version without the load check `promote` makes."""
    with Session(get_engine(url)) as session, session.begin():
        session.execute(
            update(Model)
            .where(Model.name == record.name, Model.status == "active")
            .values(status="retired", retired_at=utcnow())
        )
        session.execute(update(Model).where(Model.id == record.id).values(status="active", retired_at=None))


def sample(watcher: ModelWatcher, metric: str) -> float:
    return watcher.metrics.registry.get_sample_value(metric, {"model": "tiles"}) or 0.0


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    migrate.upgrade(url=url)
    return url


def test_promote_refuses_a_version_that_will_not_load(sqlite_url: str, tiny_models: dict, tmp_path: Path) -> None:
    good = register(sqlite_url, "tiles", tiny_models["image"])
    bad = register_bad(sqlite_url, tiny_models["image2"], tmp_path, "unknown parameter")
    with pytest.raises(ArtifactError, match="tiles version 2 will not load, so it stays candidate: .*colour"):
        promote("tiles", bad.version, engine=get_engine(sqlite_url))
    result = CliRunner().invoke(cli, ["models", "promote", "tiles", str(bad.version)], env={URL_ENV: sqlite_url})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: tiles version 2 will not load"), result.output
    assert "colour are not ganomaly parameters" in lines[0]
    assert active_model("tiles", engine=get_engine(sqlite_url)).id == good.id
    assert {m.version: m.status for m in list_models("tiles", engine=get_engine(sqlite_url))} == {
        1: "active",
        2: "candidate",
    }

    fine = register(sqlite_url, "tiles", tiny_models["image2"])
    promoted = CliRunner().invoke(cli, ["models", "promote", "tiles", str(fine.version)], env={URL_ENV: sqlite_url})
    assert promoted.exit_code == 0 and "tiles version 3 is active" in promoted.output
    assert active_model("tiles", engine=get_engine(sqlite_url)).id == fine.id


def test_any_exception_keeps_the_serving_version_and_is_not_retried_until_the_folder_changes(
    sqlite_url: str,
    tiny_models: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = register(sqlite_url, "tiles", tiny_models["image"])
    folder = Path(shutil.copytree(tiny_models["image2"], tmp_path / "v2"))
    bad = register(sqlite_url, "tiles", folder)
    watcher = ModelWatcher(["tiles"], get_engine(sqlite_url), check_every_s=0.0, max_batch=8)
    attempts: list[str] = []
    real_load = stream_models.load_model

    def load_model(artifact: str):
        attempts.append(artifact)
        if Path(artifact) == folder.resolve():
            raise MemoryError()
        return real_load(artifact)

    monkeypatch.setattr(stream_models, "load_model", load_model)
    activate_unchecked(sqlite_url, bad)
    caplog.set_level(logging.ERROR, logger="anomaly.stream.models")
    assert watcher.refresh() == []
    assert watcher["tiles"].model_id == good.id
    assert sample(watcher, "anomaly_stream_model_load_failures_total") == 1
    assert sample(watcher, "anomaly_stream_model_active_version") == bad.version
    failure = next(r for r in caplog.records if r.getMessage() == "model version failed to load; not serving it")
    assert failure.fields["error"] == "MemoryError" and failure.fields["serving"] == good.version

    for _ in range(3):
        assert watcher.refresh() == []
    assert len(attempts) == 1, "a failed version was loaded again although nothing changed"

    (folder / "note.txt").write_text("fixed")  # the operator repairs the folder in place
    monkeypatch.setattr(stream_models, "load_model", real_load)
    swapped = watcher.refresh()
    assert [m.model_id for m in swapped] == [bad.id] and watcher["tiles"].model_id == bad.id


def test_start_up_with_nothing_that_loads_is_one_clear_error(
    sqlite_url: str, tiny_models: dict, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_models["image"], tmp_path / "v1"))
    register(sqlite_url, "tiles", folder)
    _truncated_manifest(folder)
    with pytest.raises(AnomalyError, match="no version of model 'tiles' loads: active version 1: .*damaged manifest"):
        ModelWatcher(["tiles"], get_engine(sqlite_url), max_batch=8)


def _scorer(broker: KafkaBroker, url: str, topic: str) -> StreamScorer:
    return StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "tiles"},
            bootstrap_servers=broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            model_check_s=0.3,
            poll_timeout_ms=100,
            max_batch=16,
        ),
        get_engine(url),
    )


@pytest.mark.kafka
def test_bad_versions_promoted_during_live_scoring_never_serve_and_a_restart_falls_back(
    kafka_broker: KafkaBroker, db_url: str, tiny_models: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = register(db_url, "tiles", tiny_models["image"])
    topic = kafka_broker.create_topic(prefix="badmodels")
    client = producer(kafka_broker)
    sent: list[tuple[int, int]] = []
    scorer = _scorer(kafka_broker, db_url, topic)
    worker = threading.Thread(target=scorer.run)
    worker.start()
    bad: list[ModelRecord] = []
    try:
        sent += send(client, topic, images(6, seed=1))
        wait_until(lambda: len(stored(db_url, topic)) == len(sent), 60, "the first images stored")
        for count, kind in enumerate(BAD_VERSIONS, start=1):
            bad.append(register_bad(db_url, tiny_models["image2"], tmp_path, kind))
            activate_unchecked(db_url, bad[-1])
            sent += send(client, topic, images(4, seed=count))  # in flight while the version is tried
            wait_until(
                lambda: sample(scorer.models, "anomaly_stream_model_load_failures_total") == count,
                60,
                f"the scorer to try the version with {kind}",
            )
            sent += send(client, topic, images(4, seed=10 + count))
            wait_until(lambda: len(stored(db_url, topic)) == len(sent), 60, f"images stored after {kind}")
        time.sleep(1.0)  # several model checks: none may try a failed version again
        assert sample(scorer.models, "anomaly_stream_model_load_failures_total") == len(BAD_VERSIONS)
        assert sample(scorer.models, "anomaly_stream_model_active_version") == bad[-1].version
        assert scorer.health()[1]["models"] == {"tiles": good.version}
    finally:
        scorer.stop()
        worker.join(30)
    assert not worker.is_alive()
    events = stored(db_url, topic)
    assert len(events) == len({(p, o) for p, o, _ in events}) == len(sent)
    assert Counter(model for _, _, model in events) == Counter({good.id: len(sent)})

    # A restart with the truncated version still active starts on the last version that loads.
    assert active_model("tiles", engine=get_engine(db_url)).id == bad[-1].id
    caplog.set_level(logging.ERROR, logger="anomaly.stream.models")
    restarted = _scorer(kafka_broker, db_url, topic)
    assert restarted.models["tiles"].model_id == good.id
    assert sample(restarted.models, "anomaly_stream_model_fallbacks_total") == 1
    fallback = next(r for r in caplog.records if r.getMessage().startswith("active version will not load"))
    assert fallback.levelno == logging.ERROR
    assert (fallback.fields["active"], fallback.fields["serving"]) == (bad[-1].version, good.version)
    worker = threading.Thread(target=restarted.run)
    worker.start()
    try:
        after = send(client, topic, images(6, seed=20))
        wait_until(lambda: len(stored(db_url, topic)) == len(sent) + len(after), 60, "images after the restart")
        time.sleep(1.0)
        failures = sample(restarted.models, "anomaly_stream_model_load_failures_total")
    finally:
        client.close()
        restarted.stop()
        worker.join(30)
    assert not worker.is_alive()
    assert failures == len(BAD_VERSIONS), "the restarted scorer retried the failed active version"
    events = stored(db_url, topic)
    assert len(events) == len({(p, o) for p, o, _ in events}) == len(sent) + len(after)
    assert {model for _, _, model in events} == {good.id}
