"""Interval arithmetic on Unix-second intervals ``(start, end)``, ``start < end``.

A normalised list is sorted, with no two intervals overlapping or touching.
"""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[float, float]


def normalise(intervals: Iterable[Interval]) -> list[Interval]:
    """The union, as a normalised list (empty intervals dropped, overlapping or touching ones
    merged)."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], low: float, high: float) -> list[Interval]:
    return normalise((max(start, low), min(end, high)) for start, end in intervals)


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """``a`` minus ``b`` (both normalised)."""
    result: list[Interval] = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                result.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """``a`` ∩ ``b`` (both normalised)."""
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def total(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def from_transitions(
    transitions: Iterable[tuple[float, bool]], initially: bool, low: float, high: float
) -> list[Interval]:
    """The intervals of ``[low, high)`` during which a state was on, given whether it was on at
    ``low`` and its changes ``(time, on)`` in time order (repeats are ignored)."""
    intervals: list[Interval] = []
    since = low if initially else None
    for changed_at, on in transitions:
        at = min(max(changed_at, low), high)
        if on and since is None:
            since = at
        elif not on and since is not None:
            intervals.append((since, at))
            since = None
    if since is not None:
        intervals.append((since, high))
    return normalise(intervals)
