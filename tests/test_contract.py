"""Every registered detector — built-in or installed — passes the contract kit."""

import dataclasses

import pytest

from anomaly.plugins import registry
from anomaly.testing import TINY, DetectorContract

# The kit's tiny network sizes, and 10 trees for iforest: its default 100 only make the run slower.
SIZES = {**TINY, "trees": 10}


@pytest.fixture(scope="class", params=sorted(registry().detectors))
def detector_name(request) -> str:
    return request.param


class TestEveryDetector(DetectorContract):
    @pytest.fixture(scope="class")
    @classmethod
    def tiny_params(cls_, detector_cls):
        names = {f.name for f in dataclasses.fields(detector_cls.Params)}
        return detector_cls.Params(**{k: v for k, v in SIZES.items() if k in names})
