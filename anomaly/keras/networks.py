"""DCGAN-style building blocks shared by the GAN detectors (and open to plugin authors).

Every network is sized from the sample shape: square images of 2^k pixels go through
stride-2 convolutions down to 4x4 and transposed convolutions back up; series windows go
through a dense stack (default) or stride-2 1-D convolutions. A "body" ends in a feature
tensor, so a discriminator's features can be matched (GANomaly's adversarial loss, AnoGAN's
discrimination loss) and an encoder's latent read from a head on top.
"""

from __future__ import annotations

import math

import keras
from keras import layers


def _image_levels(size: int) -> int:
    return int(math.log2(size // 4))


def _output(x):
    """A network's output in float32 under a mixed policy, so losses mixing networks' outputs with the data
    (float32) and with each other add up in one dtype; the layers inside still compute in 16 bits."""
    if keras.config.dtype_policy().compute_dtype == "float32":
        return x
    return layers.Activation("linear", dtype="float32")(x)


def body(shape: tuple[int, ...], width: int, kind: str, name: str) -> keras.Model:
    """Downsampling feature extractor: image (S,S,C) -> (4,4,F); series (W,C) -> (F,)."""
    inputs = keras.Input(shape)
    x = inputs
    if len(shape) == 3:
        for level in range(_image_levels(shape[0])):
            x = layers.Conv2D(width * 2**level, 4, strides=2, padding="same", use_bias=level == 0)(x)
            if level:
                x = layers.BatchNormalization()(x)
            x = layers.LeakyReLU(0.2)(x)
    elif kind == "conv":
        level = 0
        while x.shape[1] > 4:
            x = layers.Conv1D(width * 2**level, 4, strides=2, padding="same")(x)
            x = layers.LeakyReLU(0.2)(x)
            level += 1
        x = layers.Flatten()(x)
    else:
        x = layers.Flatten()(x)
        for units in (width * 4, width * 2):
            x = layers.Dense(units)(x)
            x = layers.LeakyReLU(0.2)(x)
    return keras.Model(inputs, _output(x), name=name)


def head(features: keras.Model, units: int, name: str) -> keras.Model:
    """A linear head on a body: the latent code of an encoder, or a discriminator's logit."""
    x = features.output
    if len(x.shape) == 4:
        x = layers.Conv2D(units, x.shape[1], padding="valid")(x)
        x = layers.Flatten()(x)
    else:
        x = layers.Dense(units)(x)
    return keras.Model(features.input, _output(x), name=name)


def encoder(shape: tuple[int, ...], latent: int, width: int, kind: str, name: str) -> keras.Model:
    return head(body(shape, width, kind, f"{name}_body"), latent, name)


def decoder(shape: tuple[int, ...], latent: int, width: int, kind: str, bounded: bool, name: str) -> keras.Model:
    """Generator from a latent code back to a sample; ``bounded`` ends in tanh for data in [-1, 1]."""
    inputs = keras.Input((latent,))
    activation = "tanh" if bounded else None
    if len(shape) == 3:
        levels = _image_levels(shape[0])
        top = width * 2 ** (levels - 1)
        x = layers.Dense(4 * 4 * top, use_bias=False)(inputs)
        x = layers.Reshape((4, 4, top))(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        for level in reversed(range(1, levels)):
            x = layers.Conv2DTranspose(width * 2 ** (level - 1), 4, strides=2, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.Conv2DTranspose(shape[2], 4, strides=2, padding="same", activation=activation)(x)
    elif kind == "conv":
        window, channels = shape
        steps = max(1, math.ceil(math.log2(window / 4)))
        start = math.ceil(window / 2**steps)
        top = width * 2 ** (steps - 1)
        x = layers.Dense(start * top)(inputs)
        x = layers.Reshape((start, top))(x)
        x = layers.ReLU()(x)
        for level in reversed(range(steps)):
            x = layers.Conv1DTranspose(width * 2 ** max(level - 1, 0), 4, strides=2, padding="same")(x)
            x = layers.ReLU()(x)
        x = layers.Conv1D(channels, 3, padding="same", activation=activation)(x)
        x = layers.Cropping1D((0, x.shape[1] - window))(x)
    else:
        x = inputs
        for units in (width * 2, width * 4):
            x = layers.Dense(units)(x)
            x = layers.ReLU()(x)
        x = layers.Dense(math.prod(shape), activation=activation)(x)
        x = layers.Reshape(shape)(x)
    return keras.Model(inputs, _output(x), name=name)
