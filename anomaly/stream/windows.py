"""Per-source sliding windows, so producers send single readings and never cut windows themselves.

A series model scores windows of ``window`` steps; a window's score belongs to its last step. The
consumer keeps each source's last ``window - 1`` readings here: every new reading yields the window
ending at it. Until a source has sent a full window, the window is padded by repeating its first
reading, so every reading gets a score from the start (less informative for the first few steps,
which the README says). The buffers live in the consumer's memory: after a restart or a rebalance a
source starts padded again.

A batch is windowed per source with one ``sliding_window_view``, not reading by reading: at
thousands of readings per second the per-message Python work is what limits throughput.
"""

from __future__ import annotations

import numpy as np


class WindowBuffers:
    """The last ``window - 1`` readings of every source seen, as (rows, channels) arrays."""

    def __init__(self, window: int, channels: int) -> None:
        self.window = window
        self.channels = channels
        self._history: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._history)

    def windows(self, items: list[tuple[str, np.ndarray]]) -> np.ndarray:
        """The window ending at each item, in order; an item is one reading (1, C) or a whole window (window, C)."""
        out = np.empty((len(items), self.window, self.channels), np.float32)
        by_source: dict[str, list[int]] = {}
        for index, (source, _) in enumerate(items):
            by_source.setdefault(source, []).append(index)
        for source, indexes in by_source.items():
            history = self._history.get(source)
            parts = [items[i][1] for i in indexes]
            if history is not None:
                parts.insert(0, history)
            series = np.concatenate(parts).astype(np.float32, copy=False)
            lengths = np.array([items[i][1].shape[0] for i in indexes])
            ends = np.cumsum(lengths) - 1 + (0 if history is None else len(history))
            missing = max(0, self.window - 1 - int(ends[0]))
            if missing:
                series = np.concatenate([np.repeat(series[:1], missing, axis=0), series])
                ends = ends + missing
            view = np.lib.stride_tricks.sliding_window_view(series, self.window, axis=0)
            out[indexes] = view[ends - (self.window - 1)].transpose(0, 2, 1)
            self._history[source] = series[-(self.window - 1) :].copy()
        return out
