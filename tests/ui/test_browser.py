"""End to end in headless chromium: the list, an image event, a sensor event, a label that reaches the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from anomaly.store.schema import Event
from anomaly.ui.app import create_app
from tests.ui.conftest import ARTIFACTS, TOKEN, Store, all_images_loaded, console_errors

# A form post reloads the page: an element found just before the reload is stale when read, so look again.
RELOADING = (StaleElementReferenceException,)

# The browser test needs one database; the pages' queries run on both in test_pages.py.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(store: Store) -> Iterator[str]:
    """The review pages served on a free loopback port for the length of the test."""
    server = make_server("127.0.0.1", 0, create_app(store.engine, token=TOKEN), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def open_event(browser: WebDriver, site: str, event_id: int, screenshot: str) -> None:
    browser.get(f"{site}/")
    browser.find_element(By.LINK_TEXT, str(event_id)).click()
    WebDriverWait(browser, 60, ignored_exceptions=RELOADING).until(all_images_loaded)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(f"Event {event_id}")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / screenshot
    assert browser.save_screenshot(str(path)), path
    print(f"screenshot: {path}")


def test_review_an_image_and_a_sensor_event_and_label_one(browser: WebDriver, site: str, store: Store) -> None:
    console_errors(browser)
    browser.get(f"{site}/")
    listed = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "a.event-link")]
    assert listed[0] == str(max(store.sensor_ids)) and str(store.image_ids[-1]) in listed

    open_event(browser, site, store.image_ids[-1], "event-image.png")
    assert browser.find_element(By.ID, "map").get_property("naturalWidth") > 0
    open_event(browser, site, store.sensor_ids[2], "event-sensor.png")
    assert browser.find_element(By.ID, "plot").get_property("naturalWidth") > 0

    browser.find_element(By.LINK_TEXT, "Sign in to label").click()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20, ignored_exceptions=RELOADING).until(lambda b: b.find_elements(By.ID, "label-anomaly"))
    browser.find_element(By.ID, "label-anomaly").click()
    WebDriverWait(browser, 20, ignored_exceptions=RELOADING).until(
        lambda b: "labelled anomaly" in b.find_element(By.ID, "flash").text
    )
    assert browser.find_element(By.ID, "label").text.startswith("anomaly")
    with Session(store.engine) as session:
        assert session.get(Event, store.sensor_ids[2]).label == "anomaly"
    assert console_errors(browser) == []
