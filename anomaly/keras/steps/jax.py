"""Training steps on JAX: pure functions of the variables' values, differentiated and ``jax.jit``-compiled.

Keras variables cannot change inside a compiled JAX function, so a step takes the variables' values,
runs the networks under a ``keras.StatelessScope`` that maps variables to those values (and collects
the values the networks assign: batch normalisation's moving statistics, the noise seed), and
returns the new values. Between steps the values stay with the step, on the device, and the step's
input buffers are donated to its outputs: writing some hundred variables back and copying the
losses to the host after every step cost more than a small network's step on a GPU. ``flush``
writes them back into the Keras variables; everything that reads or sets the variables calls it
first (``function`` here, ``anomaly.keras.detector.KerasDetector``'s state), as Keras' own JAX
trainer syncs its state before callbacks read it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import keras
import numpy as np

from anomaly.keras.steps import Phase, adam


def _unique(items: Sequence[Any]) -> list[Any]:
    return list({id(item): item for item in items}.values())


class _Held:
    """The values of groups of Keras variables while training steps hold them, on the device."""

    def __init__(self, groups: Sequence[Sequence[Any]]) -> None:
        self.groups = groups
        self.values: list[list[Any]] | None = None

    def take(self) -> list[list[Any]]:
        """The values the last step left, or the variables' own when nothing is held (after a ``flush``)."""
        if self.values is None:
            _holding.add(self)
            return [[v.value for v in group] for group in self.groups]
        return self.values

    def flush(self) -> None:
        if self.values is not None:
            for group, values in zip(self.groups, self.values):
                for variable, value in zip(group, values):
                    variable.assign(value)
            self.values = None
        _holding.discard(self)


_holding: weakref.WeakSet[_Held] = weakref.WeakSet()


def flush() -> None:
    """Write every value training steps hold back into its Keras variable (see the module's docstring)."""
    for held in list(_holding):
        held.flush()


def train_step(
    phases: Sequence[Phase], state: Sequence[Any], shape: tuple[int, ...], xla: bool
) -> Callable[[np.ndarray], dict[str, Any]]:
    trainable = _unique([v for phase in phases for update in phase.updates for v in update.variables])
    index = {id(v): i for i, v in enumerate(trainable)}
    others = [v for v in _unique(list(state)) if id(v) not in index]
    optimizers = _unique([update.optimizer for phase in phases for update in phase.updates])
    slot = {id(opt): i for i, opt in enumerate(optimizers)}

    def losses(phase: Phase, values: list, other_values: list, x: jax.Array) -> tuple[list, tuple[dict, list]]:
        mapping = [*zip(trainable, values), *zip(others, other_values)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = phase.losses(x)
        return [out[u.loss] for u in phase.updates], (out, [scope.get_current_value(v) for v in others])

    ends = np.cumsum([len(opt.variables) for opt in optimizers]).tolist()
    bounds = list(zip([0, *ends[:-1]], ends))

    def step(values: list, other_values: list, opt_flat: list, x: jax.Array) -> tuple[list, list, list, dict]:
        opt_values = [opt_flat[a:b] for a, b in bounds]
        logs = {}
        for phase in phases:
            loss_values, pullback, (out, other_values) = jax.vjp(
                lambda vals, phase=phase, others=other_values: losses(phase, vals, others, x), values, has_aux=True
            )
            moved = []
            for i, update in enumerate(phase.updates):
                cotangents = [
                    jax.numpy.ones_like(v) if j == i else jax.numpy.zeros_like(v) for j, v in enumerate(loss_values)
                ]
                (grads,) = pullback(cotangents)
                at = [index[id(v)] for v in update.variables]
                k = slot[id(update.optimizer)]
                new, opt_values[k] = update.optimizer.stateless_apply(
                    opt_values[k], [grads[j] for j in at], [values[j] for j in at]
                )
                moved.append((at, new))
            values = list(values)
            for at, new in moved:
                for j, value in zip(at, new):
                    values[j] = value
            logs.update(out)
        return values, other_values, [v for group in opt_values for v in group], logs

    compiled = jax.jit(step, donate_argnums=(0, 1, 2))
    held = _Held([trainable, others, [v for opt in optimizers for v in opt.variables]])

    def run(x: np.ndarray) -> dict[str, Any]:
        values, other_values, opt_values, logs = compiled(*held.take(), jax.numpy.asarray(x, dtype="float32"))
        held.values = [values, other_values, opt_values]
        return logs

    return run


def function(fn: Callable[[Any], Any], state: Sequence[Any], shape: tuple[int, ...]) -> Callable[[np.ndarray], Any]:
    variables = _unique(list(state))

    def pure(values: list, x: jax.Array) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(x)

    compiled = jax.jit(pure)

    def run(x: np.ndarray) -> Any:
        flush()
        return keras.tree.map_structure(
            np.asarray, compiled([v.value for v in variables], jax.numpy.asarray(x, dtype="float32"))
        )

    return run


def descend(loss: Callable[[Any], Any], start: Any, steps: int, lr: float) -> Any:
    grad = jax.grad(loss)

    def move(t: jax.Array, carry: tuple) -> tuple:
        z, m, v = carry
        return adam(z, grad(z), m, v, t, lr)

    zeros = jax.numpy.zeros_like(start)
    z, _, _ = jax.lax.fori_loop(1, steps + 1, move, (start, zeros, zeros))
    return z
