"""Score normalisation and threshold calibration: fixed statistics, each method's cut, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.data.images import ImageSet
from anomaly.errors import AnomalyError
from anomaly.threshold import Calibration, Normaliser, best_f1_threshold


def test_normalisation_uses_fixed_statistics() -> None:
    norm = Normaliser.fit({"a": np.array([1.0, 3.0]), "b": np.array([10.0, 30.0])}, {"a": 1.0, "b": 1.0})
    one = norm.combine({"a": np.array([5.0]), "b": np.array([50.0])})
    many = norm.combine({"a": np.array([5.0, 0.0, 100.0]), "b": np.array([50.0, 0.0, 100.0])})
    assert one[0] == many[0] == pytest.approx(3.0)


def test_calibration_methods() -> None:
    normal = np.linspace(0, 1, 101)
    assert Calibration().threshold(normal) == pytest.approx(0.99)
    assert Calibration(method="fpr", target_fpr=0.05).threshold(normal) == pytest.approx(0.95)
    f1 = Calibration(method="f1").threshold(normal, np.array([2.0, 3.0]))
    assert f1 == np.nextafter(2.0, -np.inf)  # just below the lowest anomaly: every normal is under it
    with pytest.raises(AnomalyError, match="needs labelled anomalies"):
        Calibration(method="f1").threshold(normal)


def test_calibration_on_labelled_anomalies_sets_the_f1_threshold() -> None:
    from anomaly.detector import FitSettings
    from anomaly.plugins import registry
    from anomaly.testing import make_spec, synthetic_images

    cls = registry().get("ganomaly")
    detector = cls(
        make_spec("image"),
        cls.Params(width=4, latent=4),
        FitSettings(epochs=1, batch_size=8, calibration=Calibration(method="f1")),
    )
    rng = np.random.default_rng(1)
    noise = ImageSet(
        ids=["n0", "n1", "n2"], images=[rng.integers(0, 255, (24, 30, 1), dtype=np.uint8) for _ in range(3)]
    )
    detector.fit(synthetic_images(), anomalies=noise)
    assert detector.score(noise).is_anomaly.all()


def test_the_combined_score_is_the_weighted_mean_of_standardised_components() -> None:
    norm = Normaliser.fit({"a": np.array([1.0, 3.0]), "b": np.array([10.0, 30.0])}, {"a": 1.0, "b": 3.0})
    assert (norm.mean, norm.std) == ({"a": 2.0, "b": 20.0}, {"a": 1.0, "b": 10.0})
    # a: (4 - 2) / 1 = 2, b: (10 - 20) / 10 = -1, weighted (1 * 2 + 3 * -1) / 4
    assert norm.combine({"a": np.array([4.0]), "b": np.array([10.0])}).tolist() == [-0.25]
    assert norm.to_dict() == {"mean": norm.mean, "std": norm.std, "weights": {"a": 1.0, "b": 3.0}}


def test_a_component_of_weight_zero_is_ignored_and_a_constant_one_does_not_divide_by_zero() -> None:
    norm = Normaliser.fit({"a": np.array([1.0, 3.0]), "flat": np.array([5.0, 5.0])}, {"a": 1.0, "flat": 0.0})
    assert norm.std["flat"] == 1e-8
    assert norm.combine({"a": np.array([3.0]), "flat": np.array([6.0])}).tolist() == [1.0]


def test_weights_for_a_component_the_detector_lacks_are_refused() -> None:
    with pytest.raises(AnomalyError, match=r"unknown component\(s\) \['latent'\]; known: \['a'\]"):
        Normaliser.fit({"a": np.array([1.0])}, {"latent": 1.0})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "mean"}, "must be percentile, fpr or f1"),
        ({"percentile": 100.0}, "between 0 and 100"),
        ({"method": "fpr"}, "needs a target false-positive rate"),
        ({"method": "fpr", "target_fpr": 1.5}, "needs a target false-positive rate"),
    ],
)
def test_a_calibration_that_cannot_work_is_refused_when_made(fields: dict, message: str) -> None:
    with pytest.raises(AnomalyError, match=message):
        Calibration(**fields)


def test_no_held_out_normal_samples_is_an_error() -> None:
    with pytest.raises(AnomalyError, match="no held-out normal samples"):
        Calibration().threshold(np.array([]))


def test_the_best_f1_threshold_flags_exactly_the_anomalies_above_it() -> None:
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    f1, threshold = best_f1_threshold(labels, scores)
    # cutting below 0.35 flags 0.35, 0.4 and 0.8: precision 2/3, recall 1
    assert f1 == pytest.approx(0.8)
    assert threshold == np.nextafter(0.35, -np.inf)
    assert (scores > threshold).tolist() == [False, True, True, True]
