"""GANomaly's occlusion training: blobs stay inside each image's own grey range, and only images use it."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.errors import AnomalyError
from anomaly.testing import make_spec


def _ganomaly():
    from anomaly.plugins import registry

    return registry().get("ganomaly")


def test_occlusion_paints_flat_blobs_within_each_images_range() -> None:
    import tensorflow as tf

    from anomaly_plugins.ganomaly.model import occlude

    tf.random.set_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 16, 16, 1)).astype(np.float32)
    x[1] += 10.0
    out = occlude(tf.constant(x), 1.0).numpy()
    changed = out != x
    assert changed.any(axis=(1, 2, 3)).all()
    assert changed.mean() < 0.5
    low, high = x.min(axis=(1, 2, 3)), x.max(axis=(1, 2, 3))
    for image, before, lo, hi in zip(out, changed, low, high):
        assert np.all((image[before] >= lo) & (image[before] <= hi))
    np.testing.assert_array_equal(occlude(tf.constant(x), 0.0).numpy(), x)


def test_unset_occlusion_is_chosen_per_input_and_checked() -> None:
    cls = _ganomaly()
    shared = cls.Params()
    image, series = cls(make_spec("image"), shared), cls(make_spec("series"), shared)
    assert (image.params.occlusion, series.params.occlusion, shared.occlusion) == (0.5, 0.0, None)
    with pytest.raises(AnomalyError, match="series windows cannot use it"):
        cls(make_spec("series"), cls.Params(occlusion=0.3))
    with pytest.raises(AnomalyError, match="between 0 and 1"):
        cls(make_spec("image"), cls.Params(occlusion=1.5))
