"""Run the platform's detector contract against this plugin (after `pip install` of the plugin)."""

import pytest

from anomaly.testing import DetectorContract


@pytest.fixture(scope="module")
def detector_name() -> str:
    return "template"


class TestTemplateDetector(DetectorContract):
    pass
