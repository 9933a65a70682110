"""The backend-specific half of GAN training: gradient steps, compiled scoring and the latent search.

The networks and losses are written once, in ``keras.ops`` (each plugin's ``model.py``); how gradients
are taken and functions compiled differs per Keras backend, so each backend has one small module
here (``tensorflow``, ``jax``, ``torch``) and the functions below call the one Keras runs on. A
model describes a training step as phases of losses and the optimiser updates they drive, so every
backend runs the same step.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

Losses = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Update:
    """An optimiser moving ``variables`` (the ones it was built with, in that order) down the loss named ``loss``."""

    loss: str
    variables: Sequence[Any]
    optimizer: Any


@dataclass(frozen=True)
class Phase:
    """Losses of a batch, computed by the networks in training mode, and the updates they drive.

    Every update of a phase takes its gradient from the same forward pass before any of them is
    applied; a later phase sees the weights the earlier ones moved.
    """

    losses: Losses
    updates: tuple[Update, ...]


@functools.cache  # also keeps TensorFlow's autograph from converting the import inside a graph
def _backend() -> ModuleType:
    import keras

    return importlib.import_module(f"{__name__}.{keras.backend.backend()}")


def variables(*owners: Any) -> list[Any]:
    """Every variable of the networks ``owners``, once (networks share layers): what a compiled function reads."""
    seen: dict[int, Any] = {}
    for owner in owners:
        for variable in owner.variables:
            seen.setdefault(id(variable), variable)
    return list(seen.values())


def train_step(
    phases: Sequence[Phase], state: Sequence[Any], shape: tuple[int, ...], xla: bool
) -> Callable[[np.ndarray], dict[str, Any]]:
    """A compiled training step of batches of samples shaped ``shape``: the phases' logs, as scalars.

    ``state`` is every variable the losses read or write (the networks' and seed generators'), so a
    backend that compiles pure functions can pass them in and write back what changed (batch
    normalisation's moving statistics, the noise seed). ``xla`` asks TensorFlow for XLA; JAX always
    compiles with it, and PyTorch runs eagerly. The logs are floats, or on JAX device scalars that
    ``float()`` copies to the host: a step that waits for its losses keeps a GPU idle meanwhile.
    """
    return _backend().train_step(phases, state, shape, xla)


def flush() -> None:
    """Put the values training steps hold outside the Keras variables back into them (JAX holds them
    between steps); call it before reading or setting the variables of a network a step trains."""
    module = _backend()
    if hasattr(module, "flush"):
        module.flush()


def function(fn: Callable[[Any], Any], state: Sequence[Any], shape: tuple[int, ...]) -> Callable[[np.ndarray], Any]:
    """``fn`` (inference: reads ``state``, changes nothing) compiled for batches shaped ``shape``; NumPy out."""
    return _backend().function(fn, state, shape)


def descend(loss: Callable[[Any], Any], start: Any, steps: int, lr: float) -> Any:
    """``steps`` Adam moves of ``start`` down ``loss`` (a scalar of it); called inside a ``function``."""
    return _backend().descend(loss, start, steps, lr)


def adam(z: Any, grad: Any, m: Any, v: Any, t: Any, lr: float) -> tuple[Any, Any, Any]:
    """One Adam move of ``z`` at step ``t`` (from 1): the latent search's update, the same on every backend."""
    from keras import ops

    b1, b2, eps = 0.9, 0.999, 1e-8
    t = ops.cast(t, z.dtype)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * ops.square(grad)
    z = z - lr * (m / (1 - ops.power(b1, t))) / (ops.sqrt(v / (1 - ops.power(b2, t))) + eps)
    return z, m, v
