"""Training steps on TensorFlow: gradient tapes inside ``tf.function`` graphs (XLA when asked)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from anomaly.keras.steps import Phase, adam


def train_step(
    phases: Sequence[Phase], state: Sequence[Any], shape: tuple[int, ...], xla: bool
) -> Callable[[np.ndarray], dict[str, float]]:
    def step(x: tf.Tensor) -> dict[str, tf.Tensor]:
        logs = {}
        for phase in phases:
            with tf.GradientTape(persistent=True) as tape:
                out = phase.losses(x)
            grads = [tape.gradient(out[update.loss], update.variables) for update in phase.updates]
            for update, grad in zip(phase.updates, grads):
                update.optimizer.apply(grad, update.variables)
            logs.update(out)
        return logs

    compiled = tf.function(step, input_signature=[tf.TensorSpec([None, *shape], tf.float32)], jit_compile=xla)
    return lambda x: {k: float(v) for k, v in compiled(tf.convert_to_tensor(x, tf.float32)).items()}


def function(fn: Callable[[Any], Any], state: Sequence[Any], shape: tuple[int, ...]) -> Callable[[np.ndarray], Any]:
    compiled = tf.function(fn, input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
    return lambda x: keras.tree.map_structure(np.asarray, compiled(tf.convert_to_tensor(x, tf.float32)))


def descend(loss: Callable[[Any], Any], start: Any, steps: int, lr: float) -> Any:
    def move(t: tf.Tensor, z: tf.Tensor, m: tf.Tensor, v: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(z)
        return (t + 1, *adam(z, tape.gradient(value, z), m, v, t, lr))

    zeros = tf.zeros_like(start)
    _, z, _, _ = tf.while_loop(lambda t, *_: t <= steps, move, (tf.constant(1), start, zeros, zeros))
    return z
