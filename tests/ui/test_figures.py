"""The review page's pictures: drawn at a fixed size, and marked for how long a browser may reuse them."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import Image

from anomaly.ui import figures
from anomaly.ui.app import CHANGING_SECONDS, STORED_SECONDS, create_app
from tests.ui.conftest import Store


def _size(picture: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(picture)).size


def test_figures_keep_their_size_whatever_they_hold() -> None:
    # Fixed margins, not a tight bounding box: the picture is the figure's size, long labels or short.
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    times = [start + timedelta(seconds=i) for i in range(40)]
    for scale in (1.0, 1e5):
        readings = scale * np.sin(np.arange(80.0)).reshape(40, 2)
        assert _size(figures.series(times, readings, [0.5] * 40, 0.9, marked=times[30], title="pump")) == (900, 500)
    steps = list(range(40))  # a window carried by one message: its rows by number, not time
    assert _size(figures.series(steps, readings, [float("nan")] * 39 + [0.5], 0.9, marked=39)) == (900, 500)
    drawn = figures.histogram({"normal": [0.1, 0.2, 0.2], "anomalous": [0.9, 1.4], "none": []}, 0.8, title="scores")
    assert _size(drawn) == (700, 320)


@pytest.mark.parametrize(
    ("path", "seconds"),
    [
        ("/events/{image}/input", STORED_SECONDS),
        ("/events/{image}/map.png", STORED_SECONDS),
        ("/events/{image}/reconstruction.png", STORED_SECONDS),
        ("/events/{sensor}/plot.png", STORED_SECONDS),  # its 16 later neighbours have all arrived
        ("/events/{newest}/plot.png", CHANGING_SECONDS),  # the window after it is still filling
        ("/models/pumps/histogram.png", CHANGING_SECONDS),
    ],
)
def test_pictures_say_how_long_a_browser_may_keep_them(store: Store, path: str, seconds: int) -> None:
    browser = create_app(store.engine).test_client()
    answer = browser.get(
        path.format(image=store.image_ids[-1], sensor=store.sensor_ids[3], newest=store.sensor_ids[-1])
    )
    assert answer.status_code == 200
    assert answer.cache_control.private and answer.cache_control.max_age == seconds
    assert browser.get("/").cache_control.max_age is None  # pages are always fetched afresh
