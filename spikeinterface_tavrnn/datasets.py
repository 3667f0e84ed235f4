"""The small real dataset shipped with the package: rat CA1 units on a linear track, with the animal's position.

Source: github nelpy/example-data, commit 099548c, folder ``linear-track/`` (Kemere lab), MIT licence (see
``spikeinterface_tavrnn/data/LICENSE-nelpy``). Converted by ``scripts/build_linear_track_dataset.py``.

The recording: 31 sorted units from 6 tetrodes over 1968 s; the rat runs back and forth on a linear track for
the first ~985 s (the position is tracked from 25.9 s to 985.2 s), then rests (the camera lost the LED: no
position). The helpers below implement the rat protocol of the TAVRNN paper: cut the track into a start, middle
and end segment, find each visit to a segment, and make one connectivity window per visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import numpy as np

LINEAR_TRACK_FILE = "linear_track.npz"
LINEAR_TRACK_ATTRIBUTION = (
    "nelpy/example-data, commit 099548c, folder linear-track (Kemere lab, Rice University), MIT licence"
)


@dataclass(frozen=True)
class Position:
    """Animal position samples on the time base of the sorting.

    Attributes
    ----------
    times_s : np.ndarray
        Sample times in s (float64, increasing), on the same time base as the spike trains (sample 0 = 0 s).
    x, y : np.ndarray
        Camera coordinates (float32), NaN where the tracking was lost.
    units : str
        Unit of ``x`` and ``y``: ``"px"`` (camera pixels; the recording has no pixel-to-cm calibration).
    """

    times_s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    units: str = "px"

    def __post_init__(self):
        if not (len(self.times_s) == len(self.x) == len(self.y)):
            raise ValueError("Position: times_s, x and y must have the same length.")

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of the samples with a tracked position."""
        return np.isfinite(self.x) & np.isfinite(self.y)


@dataclass(frozen=True)
class TrackGeometry:
    """A straight track fitted to positions: ``center + s * direction`` with ``s`` from ``start`` to ``end``.

    Attributes
    ----------
    center : np.ndarray
        Mean valid position (2,).
    direction : np.ndarray
        Unit vector of the principal axis (2,), oriented so that its largest component is positive.
    start, end : float
        Projections (same unit as the positions) taken as the two ends of the track.
    """

    center: np.ndarray
    direction: np.ndarray
    start: float
    end: float

    @property
    def length(self) -> float:
        """Track length in the unit of the positions."""
        return float(self.end - self.start)


def load_linear_track():
    """Load the shipped linear-track recording (works without network or the original files).

    Returns
    -------
    sorting : spikeinterface.core.NumpySorting
        31 units at 30 kHz, unit ids ``"tetrode{t}_cluster{c}"`` (1-based, as in the MatClust file), unit
        properties ``tetrode`` and ``cluster``. Sample 0 is the start of the clustered recording, which is
        ``t_offset_s`` = 4396.9975 s on the acquisition clock. Annotations: ``t_start_s`` (0.0), ``t_stop_s``
        (1968.2732 s, the end of the clustered range), ``t_offset_s``, ``run_epoch_s`` (first and last tracked
        position, s), ``source``.
    position : Position
        Position at ~60 Hz on the same time base, in camera pixels (640 x 480 camera; no cm calibration is
        stored), NaN where the LED was lost (the whole rest epoch, and short drop-outs while running).

    Examples
    --------
    >>> sorting, position = load_linear_track()
    >>> sorting.get_num_units(), sorting.sampling_frequency
    (31, 30000.0)
    """
    from spikeinterface.core import NumpySorting

    with resources.files("spikeinterface_tavrnn").joinpath("data", LINEAR_TRACK_FILE).open("rb") as f:
        data = dict(np.load(f, allow_pickle=False))
    fs = float(data["sampling_frequency"])
    unit_ids = data["unit_ids"].astype(str)
    labels = np.repeat(unit_ids, data["spike_counts"])
    samples = data["spike_samples"]
    order = np.argsort(samples, kind="stable")
    sorting = NumpySorting.from_samples_and_labels([samples[order]], [labels[order]], fs, unit_ids=unit_ids)
    sorting.set_property("tetrode", data["tetrode"].astype(np.int64))
    sorting.set_property("cluster", data["cluster"].astype(np.int64))

    position = Position(
        times_s=data["position_samples"] / fs, x=data["position_x"], y=data["position_y"], units="px"
    )
    tracked = position.times_s[position.valid]
    sorting.annotate(
        t_start_s=0.0,
        t_stop_s=float(data["t_stop_samples"]) / fs,
        t_offset_s=float(data["t_offset_samples"]) / fs,
        run_epoch_s=[float(tracked[0]), float(tracked[-1])],
        source=LINEAR_TRACK_ATTRIBUTION,
    )
    return sorting, position


def fit_track_axis(position: Position, end_quantiles: tuple[float, float] = (0.01, 0.99)) -> TrackGeometry:
    """Fit a straight track to the valid positions (principal axis) and locate its ends.

    Parameters
    ----------
    position : Position
        Positions; NaN samples are ignored.
    end_quantiles : tuple of float, default: (0.01, 0.99)
        Quantiles of the projections onto the axis taken as the track ends; robust to tracking glitches.

    Returns
    -------
    TrackGeometry
    """
    lo, hi = end_quantiles
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"end_quantiles must satisfy 0 <= low < high <= 1, got {end_quantiles}.")
    xy = np.column_stack([position.x, position.y]).astype(np.float64)[position.valid]
    if len(xy) < 2:
        raise ValueError("fit_track_axis needs at least two tracked positions (all are NaN).")
    center = xy.mean(axis=0)
    direction = np.linalg.svd(xy - center, full_matrices=False)[2][0]
    if direction[np.argmax(np.abs(direction))] < 0:  # the SVD sign is arbitrary: make it deterministic
        direction = -direction
    start, end = np.quantile((xy - center) @ direction, [lo, hi])
    if end <= start:
        raise ValueError("the tracked positions do not extend along any axis.")
    return TrackGeometry(center=center, direction=direction, start=float(start), end=float(end))


def linearize_position(position: Position, geometry: TrackGeometry | None = None) -> np.ndarray:
    """Position along the track as a fraction of its length, 0 at the start end and 1 at the other.

    Parameters
    ----------
    position : Position
        Positions.
    geometry : TrackGeometry or None, default: None
        The track; fitted with :func:`fit_track_axis` when None.

    Returns
    -------
    np.ndarray
        float64 in [0, 1] (clipped), NaN where the position is missing.
    """
    geometry = fit_track_axis(position) if geometry is None else geometry
    xy = np.column_stack([position.x, position.y]).astype(np.float64)
    projection = (xy - geometry.center) @ geometry.direction
    return np.clip((projection - geometry.start) / geometry.length, 0.0, 1.0)


def linear_track_visit_intervals(
    position: Position,
    boundaries: Sequence[float] = (0.2, 0.8),
    labels: Sequence[str] = ("start", "middle", "end"),
    min_duration_s: float = 0.5,
    max_gap_s: float = 0.25,
    geometry: TrackGeometry | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visits of the animal to segments of a linear track, as labelled time intervals.

    The track is linearised (:func:`linearize_position`) and cut at ``boundaries`` (fractions of its length).
    A visit is a run of consecutive samples inside one segment. Scanning in time order, a run that starts at
    most ``max_gap_s`` after the end of the latest visit to the same segment extends that visit, and whatever
    happened in between (a tracking drop-out, jitter across a segment boundary) is absorbed. Visits shorter
    than ``min_duration_s`` are then dropped. Visits never overlap.

    Parameters
    ----------
    position : Position
        Positions (NaN = not tracked; no visit spans a gap longer than ``max_gap_s``).
    boundaries : sequence of float, default: (0.2, 0.8)
        Increasing cut points in (0, 1): the default makes the first 20 %, the middle 60 % and the last 20 %.
    labels : sequence of str, default: ("start", "middle", "end")
        One label per segment (``len(boundaries) + 1``).
    min_duration_s : float, default: 0.5
        Shortest visit kept, in s.
    max_gap_s : float, default: 0.25
        Longest interruption, in s, absorbed into a visit.
    geometry : TrackGeometry or None, default: None
        The track; fitted to ``position`` when None.

    Returns
    -------
    starts_s, stops_s : np.ndarray
        Time of the first and last sample of each visit (s), sorted by start.
    labels : np.ndarray
        The segment label of each visit (str).

    Examples
    --------
    >>> sorting, position = load_linear_track()
    >>> starts, stops, labels = linear_track_visit_intervals(position)
    >>> sorted(set(labels.tolist()))
    ['end', 'middle', 'start']
    """
    cuts = np.asarray(boundaries, dtype=np.float64)
    labels = list(labels)
    if cuts.ndim != 1 or np.any(cuts <= 0) or np.any(cuts >= 1) or np.any(np.diff(cuts) <= 0):
        raise ValueError(f"boundaries must be increasing fractions strictly between 0 and 1, got {boundaries}.")
    if len(labels) != cuts.size + 1:
        raise ValueError(
            f"{cuts.size} boundaries make {cuts.size + 1} segments but {len(labels)} labels were given."
        )
    if min_duration_s < 0 or max_gap_s < 0:
        raise ValueError("min_duration_s and max_gap_s must be >= 0.")
    times = np.asarray(position.times_s, dtype=np.float64)
    linear = linearize_position(position, geometry)
    segment = np.where(np.isfinite(linear), np.searchsorted(cuts, np.nan_to_num(linear), side="right"), -1)

    # runs of consecutive samples with the same segment (-1 = not tracked)
    change = np.flatnonzero(np.diff(segment)) + 1
    run_first = np.r_[0, change]
    run_last = np.r_[change - 1, segment.size - 1]
    visits = []  # [segment, start_s, stop_s], in time order, never overlapping
    for first, last in zip(run_first, run_last):
        k = segment[first]
        if k < 0:
            continue
        t0, t1 = times[first], times[last]
        # the latest visit to the same segment, if it ended at most max_gap_s ago: the runs in between were a
        # short excursion (or drop-out) and are absorbed into it
        j = len(visits) - 1
        while j >= 0 and visits[j][0] != k and t0 - visits[j][2] <= max_gap_s:
            j -= 1
        if j >= 0 and visits[j][0] == k and t0 - visits[j][2] <= max_gap_s:
            del visits[j + 1 :]
            visits[j][2] = t1
        else:
            visits.append([k, t0, t1])
    visits = [v for v in visits if v[2] - v[1] >= min_duration_s]
    starts = np.array([v[1] for v in visits], dtype=np.float64)
    stops = np.array([v[2] for v in visits], dtype=np.float64)
    visit_labels = np.array([labels[v[0]] for v in visits], dtype=str)
    return starts, stops, visit_labels


def linear_track_visit_windows(position: Position, **kwargs):
    """One connectivity window per track-segment visit (see :func:`linear_track_visit_intervals`).

    Parameters
    ----------
    position : Position
        Positions.
    **kwargs
        Passed to :func:`linear_track_visit_intervals` (``boundaries``, ``labels``, ``min_duration_s``,
        ``max_gap_s``, ``geometry``).

    Returns
    -------
    Windows
        ``.starts`` / ``.stops`` in s and ``.labels`` (segment names).
    """
    from .windows import windows_from_intervals

    starts, stops, labels = linear_track_visit_intervals(position, **kwargs)
    return windows_from_intervals(starts, stops, labels)
