"""Interval arithmetic on sorted, disjoint, half-open [start, end) lists of POSIX seconds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

Interval = tuple[float, float]
INF: Final = math.inf


# Interval arithmetic (sorted, disjoint, half-open [start, end) lists) -----------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Return the union of intervals as a sorted list of disjoint intervals."""
    merged: list[Interval] = []
    for start, end in sorted(item for item in intervals if item[1] > item[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """Return the intersection of two merged interval lists."""
    found: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            found.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return found


def subtract(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """Return the parts of first (merged) not in second (merged)."""
    found: list[Interval] = []
    j = 0
    for start, end in first:
        cursor = start
        while j < len(second) and second[j][1] <= cursor:
            j += 1
        k = j
        while k < len(second) and second[k][0] < end:
            if second[k][0] > cursor:
                found.append((cursor, second[k][0]))
            cursor = max(cursor, second[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            found.append((cursor, end))
    return found


def clip(intervals: Sequence[Interval], start: float, end: float) -> list[Interval]:
    """Return the parts of merged intervals inside [start, end)."""
    return intersect(intervals, [(start, end)]) if end > start else []


def total(intervals: Iterable[Interval]) -> float:
    """Return the summed length of disjoint intervals, in seconds."""
    return sum(end - start for start, end in intervals)


def take_first(intervals: Sequence[Interval], amount: float) -> list[Interval]:
    """Return the earliest `amount` seconds of merged intervals."""
    taken: list[Interval] = []
    left = amount
    for start, end in intervals:
        if left <= 0:
            break
        stop = min(end, start + left)
        taken.append((start, stop))
        left -= stop - start
    return taken
