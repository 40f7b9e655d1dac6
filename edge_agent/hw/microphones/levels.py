"""The level of the last second of audio: RMS and peak in dBFS, and the share of clipped samples.

Fed by the capture thread block by block, read by ``health()`` on the loop; a lock keeps the two
apart. Silence is reported as :data:`FLOOR_DBFS`, not minus infinity (JSON has no infinity).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

FLOOR_DBFS = -120.0
CLIP_LEVEL = 32_767 - 1
"""int16 samples at or beyond this magnitude count as clipped."""


@dataclass(frozen=True)
class Levels:
    rms_dbfs: float
    peak_dbfs: float
    clipped_ratio: float


def _dbfs(value: float) -> float:
    if value <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(value / 32_768.0))


class LevelMeter:
    def __init__(self, sample_rate: int, window_s: float = 1.0) -> None:
        self._window = max(1, int(sample_rate * window_s))
        self._blocks: deque[tuple[int, float, int, int]] = deque()
        self._samples = 0
        self._lock = threading.Lock()

    def add(self, samples: np.ndarray) -> None:
        """One block of int16 samples (any shape; channels are pooled)."""
        flat = samples.reshape(-1).astype(np.int32)
        if flat.size == 0:
            return
        magnitude = np.abs(flat)
        block = (
            int(flat.size),
            float(np.square(flat, dtype=np.float64).sum()),
            int(magnitude.max()),
            int(np.count_nonzero(magnitude >= CLIP_LEVEL)),
        )
        with self._lock:
            self._blocks.append(block)
            self._samples += block[0]
            while len(self._blocks) > 1 and self._samples - self._blocks[0][0] >= self._window:
                self._samples -= self._blocks.popleft()[0]

    def read(self) -> Levels | None:
        with self._lock:
            blocks = list(self._blocks)
        if not blocks:
            return None
        count = sum(b[0] for b in blocks)
        rms = math.sqrt(sum(b[1] for b in blocks) / count)
        return Levels(
            rms_dbfs=round(_dbfs(rms), 2),
            peak_dbfs=round(_dbfs(max(b[2] for b in blocks)), 2),
            clipped_ratio=round(sum(b[3] for b in blocks) / count, 5),
        )
