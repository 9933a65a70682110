"""Training steps on JAX: pure functions of the variables' values, differentiated and ``jax.jit``-compiled.

Keras variables cannot change inside a compiled JAX function, so each call reads their values, runs
the networks under a ``keras.StatelessScope`` that maps variables to those values (and collects the
values the networks assign: batch normalisation's moving statistics, the noise seed), and writes
the new values back into the variables, so ``get_weights`` and a saved model carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import keras
import numpy as np

from anomaly.keras.steps import Phase, adam


def _unique(items: Sequence[Any]) -> list[Any]:
    return list({id(item): item for item in items}.values())


def train_step(
    phases: Sequence[Phase], state: Sequence[Any], shape: tuple[int, ...], xla: bool
) -> Callable[[np.ndarray], dict[str, float]]:
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

    def step(values: list, other_values: list, opt_values: list, x: jax.Array) -> tuple[list, list, list, dict]:
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
        return values, other_values, opt_values, logs

    compiled = jax.jit(step)
    opt_variables = [opt.variables for opt in optimizers]

    def run(x: np.ndarray) -> dict[str, float]:
        values, other_values, opt_values, logs = compiled(
            [v.value for v in trainable],
            [v.value for v in others],
            [[v.value for v in group] for group in opt_variables],
            jax.numpy.asarray(x, dtype="float32"),
        )
        for variable_group, value_group in ((trainable, values), (others, other_values)):
            for variable, value in zip(variable_group, value_group):
                variable.assign(value)
        for group, value_group in zip(opt_variables, opt_values):
            for variable, value in zip(group, value_group):
                variable.assign(value)
        return {k: float(v) for k, v in logs.items()}

    return run


def function(fn: Callable[[Any], Any], state: Sequence[Any], shape: tuple[int, ...]) -> Callable[[np.ndarray], Any]:
    variables = _unique(list(state))

    def pure(values: list, x: jax.Array) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(x)

    compiled = jax.jit(pure)
    return lambda x: keras.tree.map_structure(
        np.asarray, compiled([v.value for v in variables], jax.numpy.asarray(x, dtype="float32"))
    )


def descend(loss: Callable[[Any], Any], start: Any, steps: int, lr: float) -> Any:
    grad = jax.grad(loss)

    def move(t: jax.Array, carry: tuple) -> tuple:
        z, m, v = carry
        return adam(z, grad(z), m, v, t, lr)

    zeros = jax.numpy.zeros_like(start)
    z, _, _ = jax.lax.fori_loop(1, steps + 1, move, (start, zeros, zeros))
    return z
