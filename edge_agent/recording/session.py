"""One recording session (from a start to a stop) and where its segments cut.

Boundaries are shared by every stream: ``t0 + k * segment_s`` (``t0`` is the moment ``start`` was
called), rounded up to the grid on which the camera adapters force keyframes (whole seconds of the
monotonic clock). Audio cuts on the first packet at or after a boundary and video on the first
keyframe at or after it, so all streams of a room cut within one frame of each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from uuid import UUID

EPSILON_S = 1e-6
"""A packet this close before a boundary counts as on it (float noise of simulated clocks); the
cameras' keyframe grid uses the same tolerance, so both agree which frame is the first of a
second."""


@dataclass
class Session:
    recording_id: UUID
    reason: str
    t0: float
    segment_s: float
    grid_s: float = 1.0
    stop_mono: float | None = None

    def boundary(self, k: int) -> float:
        nominal = self.t0 + k * self.segment_s
        if self.grid_s <= 0:
            return nominal
        return math.ceil(nominal / self.grid_s - 1e-9) * self.grid_s

    def boundary_after(self, mono: float) -> float:
        """The first boundary after ``mono`` (by more than :data:`EPSILON_S`)."""
        k = max(1, math.floor((mono - self.t0) / self.segment_s) + 1)
        while (boundary := self.boundary(k)) <= mono + EPSILON_S:
            k += 1
        return boundary
