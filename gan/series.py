"""Series for charts, animations and progress lines: TensorBoard's smoothing, even thinning and picking, durations
as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Item = TypeVar("Item")


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the start is not pulled to zero."""
    smoothed, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**count) if weight > 0 else value)
    return smoothed


def thin(values: Sequence[Item], limit: int) -> list[Item]:
    """Every n-th value, the smallest n that leaves at most `limit` (a browser need not draw 50,000 points)."""
    stride = max(1, -(-len(values) // limit))
    return list(values[::stride])


def evenly(values: Sequence[Item], count: int) -> list[Item]:
    """At most `count` values picked evenly, the first and the last always among them."""
    if len(values) <= count:
        return list(values)
    return [values[round(index * (len(values) - 1) / (count - 1))] for index in range(count)]


def format_duration(seconds: float | None) -> str:
    """1:05 for 65 s, 1:01:05 past an hour, and a dash when unknown."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
