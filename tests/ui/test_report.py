"""``anomaly report`` for an image model and a series model: the sections, the embedded figures, a clean open."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import write_images
from tests.ui.conftest import all_images_loaded, console_errors

SECTIONS = ("results", "curves", "histogram", "top")


def labelled_images(root: Path) -> Path:
    """Six normal ramps and three with a bright scratch, as a labelled folder (good + scratch)."""
    write_images(root / "good", 6, seed=7)
    (root / "scratch").mkdir()
    for i in range(3):
        picture = np.asarray(Image.open(root / "good" / f"img0{i}.png")).copy()
        picture[6:12, 4 + 3 * i : 20] = 255
        Image.fromarray(picture).save(root / "scratch" / f"s{i}.png")
    return root


def labelled_series(path: Path) -> Path:
    """The training sines with a burst of 12 anomalous steps, labelled in a label column."""
    t = np.arange(200)[:, None]
    values = np.sin(t / (4 + np.arange(2)))
    labels = np.zeros(200, int)
    values[120:132] += 3.0
    labels[120:132] = 1
    np.savetxt(path, np.column_stack([values, labels]), delimiter=",", header="c0,c1,label", comments="", fmt="%g")
    return path


@pytest.mark.parametrize("modality", ["image", "series"])
def test_the_report_holds_every_section_and_opens_cleanly(
    cli, trained: dict[str, Path], tmp_path: Path, browser: WebDriver, modality: str
) -> None:
    data = labelled_images(tmp_path / "parts") if modality == "image" else labelled_series(tmp_path / "pump.csv")
    result = cli("report", trained[modality], data, "--out", tmp_path / "report", "--top", "3")
    assert result.exit_code == 0, result.output
    path = tmp_path / "report" / "report.html"
    html = path.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}"' in html, section
    # two curves, the histogram and the three top samples, each a PNG inside the file
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 6
    assert len(re.findall(r'class="top-sample"', html)) == 3
    assert "scratch" in html if modality == "image" else "highest-scoring windows" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    console_errors(browser)
    browser.get(path.as_uri())
    WebDriverWait(browser, 20).until(all_images_loaded)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#top img")) == 3
    assert console_errors(browser) == []


def test_report_refuses_unlabelled_data_in_one_line(cli, trained: dict[str, Path], tmp_path: Path) -> None:
    data = write_images(tmp_path / "plain", 3)
    result = cli("report", trained["image"], data, "--out", tmp_path / "report")
    assert result.exit_code == 2
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()
