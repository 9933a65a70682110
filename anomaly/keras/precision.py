"""Mixed precision for training Keras networks: the dtype policy networks are built under.

``mixed`` computes in 16-bit floats and keeps the weights in float32: float16 on a GPU (its tensor
cores), bfloat16 on a CPU (float16 has no fast CPU path, and bfloat16's range needs no loss
scaling). The policy holds while the networks are built and trained only; the trained weights are
then moved into float32 networks, so calibration and every later scoring run in float32 and a
mixed model loads and scores like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anomaly.errors import AnomalyError

PRECISIONS = ("float32", "mixed")


def policy(precision: str, device: str) -> str:
    """The Keras dtype policy for ``precision`` on ``device`` (``cpu`` or ``gpu:NAME``)."""
    if precision not in PRECISIONS:
        raise AnomalyError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return "float32"
    return "mixed_float16" if device.startswith("gpu") else "mixed_bfloat16"


@contextmanager
def global_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` for the block, then put back: layers keep the one they were built with."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
