"""Which seqs of a device are committed: the highest contiguous one, and the set above it.

The contiguous high mark is what the collector acknowledges; anything above it sits beyond a gap
(an alarm that jumped the queue, or something lost) and is listed until the gap closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class SeqTracker:
    upto: int = 0
    above: set[int] = field(default_factory=set)
    highest: int = 0

    @classmethod
    def restore(cls, upto: int, committed_above: Iterable[int]) -> SeqTracker:
        tracker = cls(upto)
        for seq in committed_above:
            tracker.commit(seq)
        return tracker

    def has(self, seq: int) -> bool:
        return seq <= self.upto or seq in self.above

    @property
    def max_seq(self) -> int:
        return max(self.highest, self.upto)

    def commit(self, seq: int) -> bool:
        """Record a committed seq; return whether it opened a new gap (skipped past the highest)."""
        if self.has(seq):
            return False
        opens_gap = seq > self.max_seq + 1
        self.highest = max(self.highest, seq)
        if seq == self.upto + 1:
            self.upto = seq
            while self.upto + 1 in self.above:
                self.upto += 1
                self.above.discard(self.upto)
        else:
            self.above.add(seq)
        return opens_gap

    def missing(self, limit: int = 100) -> list[tuple[int, int]]:
        """Missing ranges (inclusive) between the contiguous mark and the highest seq."""
        ranges: list[tuple[int, int]] = []
        expected = self.upto + 1
        for seq in sorted(self.above):
            if seq > expected:
                ranges.append((expected, seq - 1))
                if len(ranges) >= limit:
                    break
            expected = seq + 1
        return ranges

    def missing_count(self) -> int:
        return self.max_seq - self.upto - len(self.above)
