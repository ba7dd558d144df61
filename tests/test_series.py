"""Chart series and progress text."""

from __future__ import annotations

import pytest

from gan.series import evenly, format_duration, smooth, thin


def test_smoothing_starts_at_the_first_value_and_follows_a_step():
    smoothed = smooth([1.0] * 3 + [3.0] * 20, weight=0.6)
    assert smoothed[:3] == pytest.approx([1.0] * 3), "debiased: the start is not pulled towards zero"
    assert 1.0 < smoothed[3] < 3.0 and smoothed[-1] == pytest.approx(3.0, abs=1e-3)
    assert smooth([1.0, 5.0], weight=0.0) == [1.0, 5.0]


def test_thinning_keeps_evenly_spaced_values_within_the_limit():
    assert thin(list(range(10)), limit=4) == [0, 3, 6, 9]
    assert thin(list(range(3)), limit=4) == [0, 1, 2]


@pytest.mark.parametrize("seconds, text", [(None, "–"), (0, "0:00"), (65.4, "1:05"), (3725, "1:02:05")])
def test_durations_read_as_minutes_and_seconds_or_hours(seconds, text):
    assert format_duration(seconds) == text


def test_picking_evenly_keeps_the_first_and_the_last():
    assert evenly(list(range(1, 101)), 4) == [1, 34, 67, 100]
    assert evenly([1, 2], 4) == [1, 2]
