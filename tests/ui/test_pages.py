"""The review pages through Flask's test client: lists, filters, paging, figures, labels and 4xx answers."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from anomaly.store.schema import Event
from anomaly.ui import queries
from anomaly.ui.app import create_app
from tests.ui.conftest import TOKEN, Store

PNG = b"\x89PNG\r\n\x1a\n"


def client(store: Store, token: str | None = None) -> FlaskClient:
    return create_app(store.engine, token=token).test_client()


def listed_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="event-link">(\d+)<', html)]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found[1]


def signed_in(store: Store) -> FlaskClient:
    browser = client(store, TOKEN)
    form = browser.get("/login").text
    answer = browser.post("/login", data={"token": TOKEN, "csrf_token": csrf(form)})
    assert answer.status_code == 302
    return browser


def test_the_list_shows_flagged_events_newest_first_and_filters(store: Store) -> None:
    browser = client(store)
    everything = listed_ids(browser.get("/").text)
    assert sorted(everything) == sorted(store.image_ids + store.sensor_ids)
    assert everything[0] == max(store.sensor_ids)  # the sensor events came an hour after the images
    assert listed_ids(browser.get("/?source=camera-1").text) == sorted(store.image_ids, reverse=True)
    assert listed_ids(browser.get("/?model=pumps").text) == sorted(store.sensor_ids, reverse=True)
    assert listed_ids(browser.get("/?until=2026-12-01T08:30").text) == sorted(store.image_ids, reverse=True)
    assert listed_ids(browser.get("/?since=2026-12-01T08:30&label=none").text) == sorted(store.sensor_ids, reverse=True)
    assert listed_ids(browser.get("/?label=normal").text) == []


def test_keyset_pages_cover_every_flagged_event_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "PAGE_SIZE", 3)
    browser = client(store)
    seen, url = [], "/?source=pump-7"
    while url:
        page = browser.get(url.replace("&amp;", "&")).text
        seen += listed_ids(page)
        older = re.search(r'href="([^"]+)" id="older"', page)
        url = older[1] if older else ""
    assert seen == sorted(store.sensor_ids, reverse=True)


def test_an_image_event_shows_its_input_and_anomaly_map(store: Store) -> None:
    browser = client(store)
    event_id = store.image_ids[-1]
    page = browser.get(f"/events/{event_id}").text
    assert 'id="input"' in page and 'id="map"' in page and "reconstruction" in page
    assert "camera-1" in page and "1.5" in page  # the source and a score component
    stored = browser.get(f"/events/{event_id}/input")
    assert stored.mimetype == "image/png" and stored.data.startswith(PNG)
    heat = browser.get(f"/events/{event_id}/map.png")
    assert heat.status_code == 200 and heat.data.startswith(PNG)


def test_a_sensor_event_plots_its_neighbours(store: Store) -> None:
    browser = client(store)
    event_id = store.sensor_ids[3]
    assert 'id="plot"' in browser.get(f"/events/{event_id}").text
    plot = browser.get(f"/events/{event_id}/plot.png")
    assert plot.status_code == 200 and plot.data.startswith(PNG)


def test_the_model_page_lists_versions_runs_and_draws_the_histogram(store: Store) -> None:
    browser = client(store)
    page = browser.get("/models/pumps").text
    assert 'id="versions"' in page and "active" in page and "first version of pumps" in page
    histogram = browser.get("/models/pumps/histogram.png")
    assert histogram.status_code == 200 and histogram.data.startswith(PNG)
    assert "pumps" in browser.get("/models").text


def test_labelling_needs_the_token_and_a_csrf_token(store: Store) -> None:
    event_id = store.sensor_ids[0]
    read_only = client(store)
    assert "Labelling is off" in read_only.get(f"/events/{event_id}").text
    assert read_only.post(f"/events/{event_id}/label", data={"label": "normal"}).status_code in (400, 403)
    stranger = client(store, TOKEN)
    form = stranger.get("/login").text
    assert stranger.post("/login", data={"token": "guess", "csrf_token": csrf(form)}).status_code == 403
    assert stranger.post("/login", data={"token": TOKEN}).status_code == 400  # no CSRF token
    reviewer = signed_in(store)
    page = reviewer.get(f"/events/{event_id}").text
    assert 'id="label-normal"' in page
    assert reviewer.post(f"/events/{event_id}/label", data={"label": "normal"}).status_code == 400
    answer = reviewer.post(f"/events/{event_id}/label", data={"label": "normal", "csrf_token": csrf(page)})
    assert answer.status_code == 302
    with Session(store.engine) as session:
        assert session.get(Event, event_id).label == "normal"
    assert "labelled normal" in reviewer.get(answer.location).text


@pytest.mark.parametrize(
    "url",
    [
        "/events/abc",
        "/events/999999",
        "/events/-3",
        "/events/99999999999999999999999999",
        "/events/999999/map.png",
        "/events/999999/plot.png",
        "/?since=yesterday",
        "/?until=2026-13-45",
        "/?label=maybe",
        "/?after=noon&after_id=3",
        "/?after=2026-12-01T08:00:00&after_id=-1",
        "/?after=2026-12-01T08:00:00",
        "/models/nobody",
        "/models/no%00body",
        "/?source=pump%00-7",
        "/?model=ti%00les",
        "/models/nobody/histogram.png",
        "/no/such/page",
    ],
)
def test_bad_requests_get_a_4xx_page(store: Store, url: str) -> None:
    answer = client(store).get(url)
    assert 400 <= answer.status_code < 500, (url, answer.status_code)
    assert 'id="error"' in answer.text


def test_figures_of_the_wrong_kind_of_event_are_404(store: Store) -> None:
    browser = client(store)
    assert browser.get(f"/events/{store.sensor_ids[0]}/map.png").status_code == 404
    assert browser.get(f"/events/{store.sensor_ids[0]}/input").status_code == 404
    assert browser.get(f"/events/{store.image_ids[0]}/plot.png").status_code == 404


def test_bad_label_values_and_ids_are_4xx(store: Store) -> None:
    reviewer = signed_in(store)
    page = reviewer.get(f"/events/{store.image_ids[0]}").text
    token = csrf(page)
    for url, label, code in [
        (f"/events/{store.image_ids[0]}/label", "broken", 400),
        (f"/events/{store.image_ids[0]}/label", "", 400),
        ("/events/999999/label", "normal", 404),
        ("/events/99999999999999999999999999/label", "normal", 404),
    ]:
        assert reviewer.post(url, data={"label": label, "csrf_token": token}).status_code == code, url
    with Session(store.engine) as session:
        assert session.get(Event, store.image_ids[0]).label is None
