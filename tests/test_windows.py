"""Window builders and their validation."""

import numpy as np
import pytest

from spikeinterface_tavrnn.windows import Windows, sliding_windows, windows_from_events, windows_from_intervals


def test_sliding_windows_match_the_paper_layout():
    windows = sliding_windows(0.0, 1200.0, size_s=120.0, step_s=60.0)
    assert len(windows) == 19
    np.testing.assert_allclose(windows.starts, np.arange(19) * 60.0)
    np.testing.assert_allclose(windows.durations_s, 120.0)
    assert windows.stops[-1] == 1200.0


def test_sliding_windows_drop_partial_last_window_and_default_step():
    windows = sliding_windows(10.0, 35.5, size_s=10.0)
    np.testing.assert_allclose(windows.starts, [10.0, 20.0])
    windows = sliding_windows(0.0, 0.3, size_s=0.1, step_s=0.1)  # floating point: 0.3 / 0.1 != 3 exactly
    assert len(windows) == 3


def test_window_longer_than_recording_is_an_error():
    with pytest.raises(ValueError, match="longer than the recording"):
        sliding_windows(0.0, 60.0, size_s=120.0, step_s=60.0)
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(0.0, 60.0, size_s=10.0, step_s=0.0)


def test_intervals_and_events_carry_labels():
    windows = windows_from_intervals([1.0, 5.0], [2.0, 7.5], labels=["start", "end"])
    assert list(windows.labels) == ["start", "end"]
    events = windows_from_events([10.0, 20.0], pre_s=1.0, post_s=2.0, labels=[0, 1])
    np.testing.assert_allclose(events.starts, [9.0, 19.0])
    np.testing.assert_allclose(events.stops, [12.0, 22.0])
    assert list(events[1].labels) == [1]


@pytest.mark.parametrize(
    "starts, stops, labels, message",
    [
        ([1.0], [1.0], None, "end at or before"),
        ([1.0, 2.0], [3.0], None, "one length"),
        ([np.nan], [1.0], None, "NaN"),
        ([], [], None, "No windows"),
        ([0.0, 1.0], [1.0, 2.0], ["a"], "one entry per window"),
    ],
)
def test_bad_windows(starts, stops, labels, message):
    with pytest.raises(ValueError, match=message):
        Windows(starts, stops, labels)


def test_windows_outside_the_recording_are_not_cropped():
    windows = windows_from_events([1.0, 59.5], pre_s=1.0, post_s=1.0)
    windows.check_within(0.0, 61.0)
    with pytest.raises(ValueError, match="outside the recording"):
        windows.check_within(0.0, 60.0)
