"""Anomaly-map pictures: their fixed size, what they show, and their file names."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from anomaly.maps import PICTURE_SIZE, picture, picture_name


def test_a_picture_outlines_the_mask_and_shows_the_verdict() -> None:
    image = np.full((24, 32, 1), 120, np.uint8)
    anomaly_map = np.zeros((24, 32), np.float32)
    anomaly_map[5:10, 5:10] = 1.0
    mask = anomaly_map > 0
    common = dict(image=image, anomaly_map=anomaly_map, scale=1.0, threshold=0.5)
    plain = np.asarray(Image.open(io.BytesIO(picture(score=0.9, **common))))
    outlined = np.asarray(Image.open(io.BytesIO(picture(score=0.9, mask=mask, **common))))
    normal = np.asarray(Image.open(io.BytesIO(picture(score=0.1, **common))))
    assert plain.shape[:2] == outlined.shape[:2] == (PICTURE_SIZE[1], PICTURE_SIZE[0])
    assert not np.array_equal(plain, outlined)
    assert not np.array_equal(plain, normal)  # the title says the score and the verdict


def test_a_picture_is_named_by_its_item_id_without_folders() -> None:
    assert picture_name("MT_Crack/Imgs/exp1.jpg") == "MT_Crack__Imgs__exp1.png"
    assert picture_name("p0.jpg") == "p0.png"
