"""Small real data sets that ship inside installed libraries, for demos and smoke tests offline."""

from __future__ import annotations

import numpy as np

from anomaly.data.images import ImageSet


def digits(normal_digit: int = 0) -> ImageSet:
    """scikit-learn's 8x8 handwritten digits in the one-class protocol: one digit is normal, the rest anomalous."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = [np.repeat(np.repeat((img * 255 / 16).astype(np.uint8), 2, 0), 2, 1)[..., None] for img in bunch.images]
    labels = (bunch.target != normal_digit).astype(np.int8)
    return ImageSet(
        ids=[f"digit-{t}/{i:04d}" for i, t in enumerate(bunch.target)],
        images=images,
        labels=labels,
        kinds=[f"digit-{t}" for t in bunch.target],
    )
