"""Capped exponential backoff with jitter, for every reconnect and retry loop on both sides.

Jitter matters for a fleet: after a broker restart, hundreds of rooms must not reconnect in the same
millisecond. "Equal jitter": half the current step is fixed, the other half random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = self.delay_after(self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        return delay

    def delay_after(self, failures: int) -> float:
        """The delay after ``failures`` earlier failures, for retries whose count is stored."""
        step = min(self.maximum, self.initial * self.factor ** min(failures, 64))
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        """Call after a success: the next failure starts again from ``initial``."""
        self._attempt = 0
