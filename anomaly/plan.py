"""The input plan for images: whole images or tiles, the size they are scaled to, and how long to train.

One fixed default does not fit every image set. Shrinking a 300-px part to one 64-px square makes
a 6-px blowhole vanish, so large images are cut into tiles of a scaled copy; but upscaling a
28-px digit to 128 px and cutting 49 overlapping tiles of it makes each tile a blurry stroke
fragment that says nothing about the digit (0.64 AUROC against 0.95 for the whole image at 32 px
in issue 16). And a small set trains few steps per epoch: 180 images at batch 64 are 3 steps, so
15 epochs are 45 steps, far short of what a GAN needs.

The rule, from the images' sizes and their number. Its boundaries come from the figures above and
the tile setup already chosen on magnetic_tile; ``TARGET_STEPS`` is provisional (issue 16's 0.95 came from
100 epochs on digits; 600 steps are 200 epochs of 144 images at batch 64, early stopping ending
them sooner) until issue 16's development sweep measures it:

- median short side at most ``WHOLE_MAX`` px: whole images, resized to the power of two at or
  above that side (28 px -> 32, 16 -> 16): native detail, nothing invented by upscaling;
- larger: tiles of ``TILE`` px cut from the image scaled to short side ``SCALE`` (the tile setup
  measured on magnetic_tile, docs/decisions/0002-image-tile-pooling-and-score.md);
- epochs: enough for about ``TARGET_STEPS`` training steps, at least ``MIN_EPOCHS`` (the old fixed
  default, which large tiled sets already exceed in steps) and at most ``MAX_EPOCHS``.

An option the operator sets always wins; the plan says which choices were its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from anomaly.errors import DataError

WHOLE_MAX = 64
TILE = 32
SCALE = 128
TARGET_STEPS = 600
MIN_EPOCHS = 15
MAX_EPOCHS = 200
PLANNED = ("tile", "image_size", "scale", "epochs")


@dataclass
class Plan:
    """The chosen input plan; ``auto`` names the choices the rule made (the rest the operator set)."""

    tile: bool
    image_size: int
    scale: int | None
    epochs: int
    images: int
    short_side: int
    auto: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the training log: what was chosen, and from what."""
        if self.tile:
            what = f"tiles of {self.image_size} px from the image at short side {self.scale or 'native'}"
        else:
            what = f"whole images at {self.image_size} px"
        given = [name.replace("_", "-") for name in PLANNED if name not in self.auto]
        why = f"{self.short_side}-px images, {self.images} of them"
        if given:
            why += "; set: " + ", ".join(given)
        label = "auto" if self.auto else "given"
        return f"plan: {what}, {self.epochs} epochs ({label}: {why})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def whole_size(short_side: int) -> int:
    """The power of two at or above ``short_side``, at least 16 (the smallest network input)."""
    return max(16, 1 << max(0, math.ceil(math.log2(max(short_side, 1)))))


def tiles_per_image(short_side: int, long_side: int, image_size: int, scale: int | None) -> int:
    """Tiles a ``short x long`` image gives at stride ``image_size // 2`` (the tile default)."""
    short = max(scale or short_side, image_size)
    long = max(image_size, round(long_side * short / short_side))
    stride = image_size // 2

    def count(length: int) -> int:
        return max(1, math.ceil((length - image_size) / stride) + 1)

    return count(short) * count(long)


def plan_images(
    sizes: list[tuple[int, int]],
    batch_size: int,
    holdout: float,
    *,
    tile: bool | None = None,
    image_size: int | None = None,
    scale: int | None = None,
    epochs: int | None = None,
) -> Plan:
    """The plan for images of these (height, width) sizes; each option given (not None) is kept as given."""
    if not sizes:
        raise DataError("no images to plan training for")
    shorts = np.array([min(s) for s in sizes])
    longs = np.array([max(s) for s in sizes])
    short, long = int(np.median(shorts)), int(np.median(longs))
    auto = [name for name, value in zip(PLANNED, (tile, image_size, scale, epochs)) if value is None]
    if tile is None:
        tile = short > WHOLE_MAX
    if image_size is None:
        image_size = TILE if tile else min(whole_size(short), WHOLE_MAX)
    if scale is None:
        scale = SCALE if tile else None
    if epochs is None:
        per_image = tiles_per_image(short, long, image_size, scale or None) if tile else 1
        samples = max(1, round(len(sizes) * (1 - holdout))) * per_image
        steps = max(1, math.ceil(samples / batch_size))
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps)))
    return Plan(
        tile=tile,
        image_size=image_size,
        scale=scale or None,
        epochs=epochs,
        images=len(sizes),
        short_side=short,
        auto=auto,
    )
