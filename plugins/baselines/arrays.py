"""Learned state as named numpy arrays in one ``.npz`` file, read back without pickles.

A model folder is data only: ``np.load(..., allow_pickle=False)`` refuses object arrays, and each
array is checked for its kind and number of dimensions here, so a hand-edited, truncated or foreign
file is one ``ArtifactError`` line. What the numbers must mean (shapes that fit the input, tree
links that lead somewhere) is the detector's to check.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from anomaly.artifact import state_file
from anomaly.errors import ArtifactError

# name -> (dtype kind, number of dimensions): "f" floating point, "i" signed integer.
Layout = dict[str, tuple[str, int]]
KINDS = {"f": "floating-point", "i": "integer"}


def save_arrays(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    with (directory / name).open("wb") as file:
        np.savez(file, **arrays)


def load_arrays(directory: Path, name: str, layout: Layout) -> dict[str, np.ndarray]:
    """The arrays ``layout`` names, each of its kind and rank with finite values, or one ArtifactError line."""
    path = state_file(directory, name)
    try:
        stored = np.load(path, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise ArtifactError(f"{path}: a single array, not the .npz archive of named arrays this detector writes")
        with stored:
            missing = sorted(set(layout) - set(stored.files))
            if missing:
                raise ArtifactError(f"{path}: lacks the arrays {', '.join(missing)}")
            arrays = {key: stored[key] for key in layout}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{path}: not a readable .npz array file ({exc})") from None
    for key, (kind, ndim) in layout.items():
        array = arrays[key]
        if array.dtype.kind != kind or array.ndim != ndim:
            raise ArtifactError(
                f"{path}: array {key} should hold {KINDS[kind]} values in {ndim} dimension(s), "
                f"not {array.dtype} in {array.ndim}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ArtifactError(f"{path}: array {key} holds values that are not finite")
    return arrays
