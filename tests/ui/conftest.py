"""Review-page fixtures: two tiny trained models (images, sensor series) and a store of their events."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

from anomaly.artifact import Manifest
from anomaly.store.engine import get_engine
from anomaly.store.queries import insert_events
from anomaly.store.registry import register_trained_model
from anomaly.store.schema import Event
from tests.conftest import TINY_TRAINING, write_images, write_series

TOKEN = "review-token-for-tests"
START = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _train(data: Path, out: Path, *extra: str) -> Path:
    from anomaly.cli import cli

    result = CliRunner().invoke(cli, ["train", "ganomaly", str(data), "--out", str(out), *TINY_TRAINING, *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An image model (24x30 grey ramps) and a series model (two sine channels, window 8), one epoch each."""
    tmp = tmp_path_factory.mktemp("ui-models")
    return {
        "image": _train(write_images(tmp / "images", 12), tmp / "tiles"),
        "series": _train(write_series(tmp / "train.csv"), tmp / "pumps", "--window", "8"),
    }


def png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 180, 30)[None, :] + rng.normal(0, 4, (24, 30))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Store:
    url: str
    engine: Engine
    image_ids: list[int]
    sensor_ids: list[int]


@pytest.fixture
def store(db_url: str, trained: dict[str, Path]) -> Store:
    """Both models registered; 6 image events (4 flagged) and 40 sensor readings (every 5th flagged)."""
    engine = get_engine(db_url)
    tiles = register_trained_model("tiles", trained["image"], Manifest.read(trained["image"]), engine=engine)
    pumps = register_trained_model("pumps", trained["series"], Manifest.read(trained["series"]), engine=engine)
    rows = []
    for i in range(6):
        rows.append(
            {
                "topic": "parts",
                "partition": 0,
                "offset": i,
                "source": "camera-1",
                "received_at": START + timedelta(minutes=i),
                "model_id": tiles.id,
                "score": 2.0 + i if i >= 2 else 0.1,
                "threshold": tiles.threshold,
                "components": {"latent": 0.5, "reconstruction": 1.5, "discriminator": 0.2},
                "is_anomaly": i >= 2,
                "payload": png_bytes(i),
                "payload_content_type": "image/png",
            }
        )
    for i in range(40):
        moment = START + timedelta(hours=1, seconds=i)
        values = [float(np.sin(i / 4)), float(np.cos(i / 5))]
        rows.append(
            {
                "topic": "sensors",
                "partition": 0,
                "offset": i,
                "source": "pump-7",
                "event_time": moment,
                "received_at": moment,
                "model_id": pumps.id,
                "score": 3.0 if i % 5 == 4 else 0.2,
                "threshold": pumps.threshold,
                "components": {"latent": 0.1, "reconstruction": 0.4, "discriminator": 0.0},
                "is_anomaly": i % 5 == 4,
                "payload": orjson.dumps({"source": "pump-7", "ts": moment.isoformat(), "values": values}),
                "payload_content_type": "application/json",
            }
        )
    insert_events(engine, rows)
    with Session(engine) as session:
        flagged = session.execute(select(Event.id, Event.topic).where(Event.is_anomaly.is_(True))).all()
    return Store(
        db_url,
        engine,
        sorted(i for i, topic in flagged if topic == "parts"),
        sorted(i for i, topic in flagged if topic == "sensors"),
    )


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Debian's headless chromium through its chromedriver; nothing is downloaded (scripts/setup.sh installs both).

    Without them the browser tests skip locally and fail under CI, which must run them."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = "chromium and chromium-driver are not installed (scripts/setup.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1900"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: WebDriver) -> list[str]:
    """The browser console's errors since the last call (chromedriver clears the log on reading)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def all_images_loaded(driver: WebDriver) -> bool:
    return driver.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0) && document.images.length > 0"
    )
