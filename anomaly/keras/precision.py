"""Mixed precision for training Keras networks: the dtype policy networks are built under.

``mixed`` computes in bfloat16 and keeps the weights in float32, on every device: bfloat16 has
float32's range, so small gradients do not underflow and the loss needs no scaling, which float16
would (a loss scale that grows and backs off, skipping steps that overflow); the GPUs this product
trains on (A100, H100, H200) run bfloat16 on their tensor cores as fast as float16, and float16 has
no fast CPU path. Older GPUs without bfloat16 tensor cores gain nothing from ``mixed``. The policy holds while the networks are built and trained only; the trained weights are
then moved into float32 networks, so calibration and every later scoring run in float32 and a
mixed model loads and scores like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anomaly.errors import AnomalyError

PRECISIONS = ("float32", "mixed")


def policy(precision: str) -> str:
    """The Keras dtype policy for ``precision``."""
    if precision not in PRECISIONS:
        raise AnomalyError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return "float32" if precision == "float32" else "mixed_bfloat16"


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
