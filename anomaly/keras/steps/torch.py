"""Training steps on PyTorch: eager autograd (``xla`` does not apply); the variables change in place."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import torch

from anomaly.keras.steps import Phase, adam


def train_step(
    phases: Sequence[Phase], state: Sequence[Any], shape: tuple[int, ...], xla: bool
) -> Callable[[np.ndarray], dict[str, float]]:
    def step(x: np.ndarray) -> dict[str, float]:
        batch = keras.ops.convert_to_tensor(x, "float32")
        logs = {}
        for phase in phases:
            out = phase.losses(batch)
            # Every gradient before any update: an update changes its variables in place, under the graph.
            grads = [
                torch.autograd.grad(out[u.loss], [v.value for v in u.variables], retain_graph=True)
                for u in phase.updates
            ]
            for update, grad in zip(phase.updates, grads):
                update.optimizer.apply(list(grad), update.variables)
            logs.update({k: float(v) for k, v in out.items()})
        return logs

    return step


def function(fn: Callable[[Any], Any], state: Sequence[Any], shape: tuple[int, ...]) -> Callable[[np.ndarray], Any]:
    def run(x: np.ndarray) -> Any:
        with torch.no_grad():
            out = fn(keras.ops.convert_to_tensor(x, "float32"))
        return keras.tree.map_structure(keras.ops.convert_to_numpy, out)

    return run


def descend(loss: Callable[[Any], Any], start: Any, steps: int, lr: float) -> Any:
    z = start.detach()
    m = v = torch.zeros_like(z)
    for t in range(1, steps + 1):
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(z), z)
        z, m, v = adam(z.detach(), grad, m, v, t, lr)
    return z
