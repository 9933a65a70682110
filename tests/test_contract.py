"""Every registered detector — built-in or installed — passes the contract kit."""

import pytest

from anomaly.plugins import registry
from anomaly.testing import DetectorContract


@pytest.fixture(scope="class", params=sorted(registry().detectors))
def detector_name(request) -> str:
    return request.param


class TestEveryDetector(DetectorContract):
    pass
