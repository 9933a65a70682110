"""The event page's reconstruction: drawn for a GANomaly image event, and said to be absent where a detector has none."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.store.queries import insert_events
from anomaly.store.registry import register_trained_model
from anomaly.store.schema import Event
from anomaly.ui.app import create_app
from tests.conftest import write_images
from tests.ui.conftest import START, Store, png_bytes


def test_an_image_event_shows_the_models_reconstruction_at_the_images_size(store: Store) -> None:
    browser = create_app(store.engine).test_client()
    event_id = store.image_ids[-1]
    page = browser.get(f"/events/{event_id}").text
    assert 'id="reconstruction"' in page and "draws no reconstruction" not in page
    drawn = browser.get(f"/events/{event_id}/reconstruction.png")
    assert drawn.status_code == 200 and drawn.mimetype == "image/png"
    assert Image.open(io.BytesIO(drawn.data)).size == (30, 24)  # png_bytes' 24x30 ramp, (width, height)
    assert browser.get(f"/events/{store.sensor_ids[0]}/reconstruction.png").status_code == 404


def test_an_event_of_a_detector_without_reconstructions_says_so(store: Store, tmp_path: Path) -> None:
    from anomaly.cli import cli

    out = tmp_path / "pca"
    trained = CliRunner().invoke(cli, ["train", "pca", str(write_images(tmp_path / "images", 8)), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    model = register_trained_model("linear", out, Manifest.read(out), engine=store.engine)
    row = {
        "topic": "parts",
        "partition": 0,
        "offset": 100,
        "source": "camera-2",
        "received_at": START,
        "model_id": model.id,
        "score": 5.0,
        "threshold": model.threshold,
        "components": {"reconstruction": 5.0},
        "is_anomaly": True,
        "payload": png_bytes(7),
        "payload_content_type": "image/png",
    }
    insert_events(store.engine, [row])
    with Session(store.engine) as session:
        event_id = session.execute(select(Event.id).where(Event.source == "camera-2")).scalar_one()
    browser = create_app(store.engine).test_client()
    page = browser.get(f"/events/{event_id}").text
    assert 'id="no-reconstruction"' in page and 'id="reconstruction"' not in page and 'id="map"' in page
    missing = browser.get(f"/events/{event_id}/reconstruction.png")
    assert missing.status_code == 404 and "draws no reconstruction" in missing.text
