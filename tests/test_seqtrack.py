"""Which seqs of a device the collector holds, and what it may acknowledge."""

from __future__ import annotations

from collector.ingest.seqtrack import SeqTracker


def test_the_mark_advances_only_over_contiguous_seqs() -> None:
    tracker = SeqTracker()
    assert not tracker.commit(1)
    assert tracker.commit(4)  # 2 and 3 missing: a gap opens
    assert (tracker.upto, tracker.max_seq, tracker.missing()) == (1, 4, [(2, 3)])
    assert not tracker.commit(3)  # inside the known gap: no new gap
    assert tracker.missing() == [(2, 2)]
    tracker.commit(2)
    assert (tracker.upto, tracker.above, tracker.missing_count()) == (4, set(), 0)


def test_duplicates_are_recognised_below_and_above_the_mark() -> None:
    tracker = SeqTracker.restore(10, [12, 15])
    assert tracker.has(3) and tracker.has(12) and not tracker.has(11)
    assert not tracker.commit(12)
    assert tracker.missing() == [(11, 11), (13, 14)]
    assert tracker.missing_count() == 3
