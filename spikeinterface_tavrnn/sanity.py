"""Plausibility checks on spike times and windows, run before any connectivity is computed.

One corrupt spike time (a flipped exponent bit, a spike at +1e6 s) or times stored in milliseconds stretch a
ten-minute recording to days: a run then makes tens of thousands of windows, almost all empty, and never ends.
These checks refuse such input with a :class:`~spikeinterface_tavrnn.errors.TavrnnInputError` that names the unit,
the time and how to override (``check_spike_times=False`` in :func:`~spikeinterface_tavrnn.compute_connectivity`).
The thresholds are the named constants below; they flag input that no real recording produces.
"""

from __future__ import annotations

import numpy as np

from .errors import TavrnnInputError
from .spiketrains import SpikeTrains
from .windows import Windows

__all__ = [
    "MAX_EMPTY_WINDOW_FRACTION",
    "MAX_SPIKES_PER_HOUR_OVER_DAYS",
    "MIN_OUTLIER_GAP_S",
    "MIN_WINDOWS_FOR_OCCUPANCY_CHECK",
    "MS_MIN_ISI_S",
    "MS_MIN_MEDIAN_ISI_S",
    "MS_MIN_SPAN_S",
    "OUTLIER_GAP_RATIO",
    "OUTLIER_MAX_TAIL_FRACTION",
    "OUTLIER_MAX_TAIL_SPIKES",
    "OUTLIER_MIN_SPIKES_BEFORE",
    "check_spike_times",
    "check_window_occupancy",
]

_OVERRIDE = "If the times are right, pass check_spike_times=False."

#: A silence before the last spikes longer than this many times the span of all the spikes before it marks
#: those last spikes as corrupt ...
OUTLIER_GAP_RATIO = 1.0
#: ... when the silence is also longer than this (seconds) ...
MIN_OUTLIER_GAP_S = 60.0
#: ... and the spikes after it are at most this many, or this fraction of all spikes, whichever is larger ...
OUTLIER_MAX_TAIL_SPIKES = 10
OUTLIER_MAX_TAIL_FRACTION = 0.001
#: ... and at least this many spikes lie before it (too few spikes say nothing about the recording's span).
OUTLIER_MIN_SPIKES_BEFORE = 20

#: A span of more than a day holding fewer spikes per hour than this is not a recording.
MAX_SPIKES_PER_HOUR_OVER_DAYS = 1000.0
_DAY_S = 86_400.0

#: Times look like milliseconds when the recording spans more than this (seconds) ...
MS_MIN_SPAN_S = 3600.0
#: ... no unit ever fires two spikes closer than this (seconds; real units burst within milliseconds) ...
MS_MIN_ISI_S = 0.5
#: ... and the units' median inter-spike intervals have a median above this (seconds).
MS_MIN_MEDIAN_ISI_S = 10.0
_MS_MIN_SPIKES = 100

#: A run with at least this many windows is refused when more than ``MAX_EMPTY_WINDOW_FRACTION`` of them
#: hold no spike.
MIN_WINDOWS_FOR_OCCUPANCY_CHECK = 200
MAX_EMPTY_WINDOW_FRACTION = 0.5


def _merged_times_s(spikes: SpikeTrains) -> tuple[np.ndarray, np.ndarray]:
    """All spike times in seconds, sorted, and the index of each one's unit."""
    samples, offsets = spikes.to_concatenated()
    units = np.repeat(np.arange(spikes.num_units), np.diff(offsets))
    order = np.argsort(samples, kind="stable")
    return samples[order] / spikes.sampling_frequency, units[order]


def check_spike_times(spikes: SpikeTrains) -> None:
    """Refuse spike times that make the recording's span implausible for the data.

    Three signs of corrupt or mis-scaled times: a few spikes far beyond all the others (a flipped exponent bit, a
    spike at +1e6 s), a span of days holding a few thousand spikes, and times that look like milliseconds (a span
    of hours in which no unit ever fires two spikes within half a second).

    Parameters
    ----------
    spikes : SpikeTrains
        The spikes to check.

    Raises
    ------
    TavrnnInputError
        Naming the unit, the time and how to override (``check_spike_times=False``).
    """
    times, units = _merged_times_s(spikes)
    n = times.size
    if n < 2:
        return
    unit_ids = spikes.unit_ids.tolist()

    gaps = np.diff(times)
    largest = int(np.argmax(gaps))
    tail = n - (largest + 1)
    before_span = times[largest] - times[0]
    if (
        gaps[largest] > MIN_OUTLIER_GAP_S
        and gaps[largest] > OUTLIER_GAP_RATIO * max(before_span, 0.0)
        and tail <= max(OUTLIER_MAX_TAIL_SPIKES, OUTLIER_MAX_TAIL_FRACTION * n)
        and largest + 1 >= OUTLIER_MIN_SPIKES_BEFORE
    ):
        first_bad = largest + 1
        raise TavrnnInputError(
            f"Unit {unit_ids[units[first_bad]]!r} has a spike at {times[first_bad]:g} s, {gaps[largest]:g} s after all "
            f"other spikes (which end at {times[largest]:g} s); {tail} spike(s) lie that far out. Such a time is "
            f"usually corrupt: remove it or pass t_stop= to crop. {_OVERRIDE}"
        )

    span_s = times[-1] - min(times[0], spikes.t_start_s)
    if span_s > MS_MIN_SPAN_S and n >= _MS_MIN_SPIKES:
        min_isi, median_isis, fastest = np.inf, [], None
        for index, train in enumerate(spikes.spike_samples):
            if train.size < 2:
                continue
            isi = np.diff(train) / spikes.sampling_frequency
            median_isis.append(float(np.median(isi)))
            if isi.min() < min_isi:
                min_isi, fastest = float(isi.min()), index
        if median_isis and min_isi >= MS_MIN_ISI_S and float(np.median(median_isis)) > MS_MIN_MEDIAN_ISI_S:
            raise TavrnnInputError(
                f"The spike times look like milliseconds: they span {span_s:g} s, yet no unit fires two spikes within "
                f"{MS_MIN_ISI_S} s (closest pair: unit {unit_ids[fastest]!r}, {min_isi:g} s apart). Divide the times "
                f"by 1000. {_OVERRIDE}"
            )

    if span_s > _DAY_S and n / (span_s / 3600.0) < MAX_SPIKES_PER_HOUR_OVER_DAYS:
        raise TavrnnInputError(
            f"{n} spikes span {span_s / _DAY_S:.1f} days (last one: unit {unit_ids[units[-1]]!r} at {times[-1]:g} s): "
            f"are the times in seconds? Convert them to seconds. {_OVERRIDE}"
        )


def check_window_occupancy(spikes: SpikeTrains, windows: Windows) -> None:
    """Refuse a run whose windows are mostly empty, before any connectivity is computed.

    Parameters
    ----------
    spikes : SpikeTrains
        The spikes.
    windows : Windows
        The windows the run will make.

    Raises
    ------
    TavrnnInputError
        When at least ``MIN_WINDOWS_FOR_OCCUPANCY_CHECK`` windows are asked for and more than
        ``MAX_EMPTY_WINDOW_FRACTION`` of them hold no spike.
    """
    n_windows = len(windows)
    if n_windows < MIN_WINDOWS_FOR_OCCUPANCY_CHECK:
        return
    times, _ = _merged_times_s(spikes)
    counts = np.searchsorted(times, windows.stops, side="left") - np.searchsorted(times, windows.starts, side="left")
    n_empty = int(np.count_nonzero(counts == 0))
    if n_empty > MAX_EMPTY_WINDOW_FRACTION * n_windows:
        last = f"the last spike is at {times[-1]:g} s" if times.size else "there are no spikes"
        raise TavrnnInputError(
            f"The run would make {n_windows} windows, {n_empty} of them without a spike (recording "
            f"{spikes.t_start_s:g}-{spikes.t_stop_s:g} s, {last}): check for a corrupt spike time, a wrong t_stop or "
            f"a window step far below the activity. {_OVERRIDE}"
        )
