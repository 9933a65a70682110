"""What scoring returns: per-item scores, their components, the threshold and optional anomaly maps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ScoreResult:
    """One scored item: maps straight onto a stored event row."""

    id: str
    score: float
    is_anomaly: bool
    threshold: float
    components: dict[str, float]
    anomaly_map: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "is_anomaly": self.is_anomaly,
            "threshold": self.threshold,
            "components": self.components,
        }


@dataclass
class Scores:
    """Scores of a batch, one entry per item (image, or window identified by its last step)."""

    ids: list[str]
    scores: np.ndarray
    components: dict[str, np.ndarray]
    threshold: float
    maps: list[np.ndarray] | None = None
    steps: np.ndarray | None = None

    @property
    def is_anomaly(self) -> np.ndarray:
        return self.scores > self.threshold

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[ScoreResult]:
        flags = self.is_anomaly
        for i, item_id in enumerate(self.ids):
            yield ScoreResult(
                id=item_id,
                score=float(self.scores[i]),
                is_anomaly=bool(flags[i]),
                threshold=self.threshold,
                components={k: float(v[i]) for k, v in self.components.items()},
                anomaly_map=None if self.maps is None else self.maps[i],
            )
