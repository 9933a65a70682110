"""The speed suite's FLOP count, checked against a hand count: GFLOP/s figures are only as good as it."""

from __future__ import annotations

from benchmarks.speed import layer_flops


def test_layer_flops_counts_convolutions_transposes_and_dense_layers():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4×4 outputs × 3·3·1·4 weights
    x = layers.LeakyReLU(0.2)(x)
    inner = keras.Model(inputs, x)
    y = layers.Conv2DTranspose(2, 4, strides=2, padding="same")(inner.output)  # 4×4 inputs × 4·4·2·4 weights
    y = layers.Dense(3)(layers.Flatten()(y))  # 128 × 3 weights
    outer = keras.Model(inner.input, y)
    assert layer_flops(outer) == 2 * (16 * 36 + 16 * 128 + 128 * 3)
    nested = keras.Model(inputs, layers.Dense(5)(inner(inputs)))  # a model used as a layer is counted inside
    assert layer_flops(nested) == 2 * (16 * 36 + 16 * 4 * 5)
