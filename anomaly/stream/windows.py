"""Per-source sliding windows, so producers send single readings and never cut windows themselves.

A series model scores windows of ``window`` steps; a window's score belongs to its last step. The
consumer keeps each source's last ``window`` readings here: every new reading yields the window
ending at it. Until a source has sent a full window, the window is padded by repeating its first
reading, so every reading gets a score from the start (less informative for the first few steps,
which the README says). The buffers live in the consumer's memory: after a restart or a rebalance a
source starts padded again.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class WindowBuffers:
    """The last ``window`` readings of every source seen, each shaped (channels,)."""

    def __init__(self, window: int, channels: int) -> None:
        self.window = window
        self.channels = channels
        self._buffers: dict[str, deque[np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._buffers)

    def push(self, source: str, values: np.ndarray) -> np.ndarray:
        """Add one reading (1, C) or a whole window (window, C); return the window ending at it."""
        buffer = self._buffers.get(source)
        if buffer is None:
            buffer = self._buffers[source] = deque(maxlen=self.window)
        buffer.extend(values)
        rows = list(buffer)
        if len(rows) < self.window:
            rows = [rows[0]] * (self.window - len(rows)) + rows
        return np.stack(rows).astype(np.float32, copy=False)
