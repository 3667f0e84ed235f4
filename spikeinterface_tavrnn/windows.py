"""Time windows over a recording: sliding, or aligned to behaviour (intervals, events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import TavrnnInputError

#: Most windows :func:`sliding_windows` makes; more is a mistake (a step in the wrong unit, a corrupt t_stop).
MAX_SLIDING_WINDOWS = 1_000_000


@dataclass
class Windows:
    """A sequence of time windows in seconds, with optional labels for later classification.

    Parameters
    ----------
    starts, stops : np.ndarray
        Window bounds in seconds, one per window, ``starts < stops``. Windows may overlap and need not be
        ordered, but each graph of the sequence follows this order, so keep them in time order when the
        model should see time pass.
    labels : np.ndarray or None, default: None
        One label per window (behavioural state, track segment, condition).

    Examples
    --------
    >>> from spikeinterface_tavrnn import sliding_windows
    >>> windows = sliding_windows(0.0, 1200.0, size_s=120.0, step_s=60.0)
    >>> len(windows)
    19
    """

    starts: np.ndarray
    stops: np.ndarray
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            self.starts = np.atleast_1d(np.asarray(self.starts, dtype=float))
            self.stops = np.atleast_1d(np.asarray(self.stops, dtype=float))
        except (TypeError, ValueError):
            raise TavrnnInputError("Window starts and stops must be numbers of seconds.") from None
        if self.starts.ndim != 1 or self.starts.shape != self.stops.shape:
            raise TavrnnInputError(f"starts and stops must be 1-D of one length, got {self.starts.shape} and {self.stops.shape}.")
        if self.starts.size == 0:
            raise TavrnnInputError("No windows: give at least one start and stop.")
        if not (np.all(np.isfinite(self.starts)) and np.all(np.isfinite(self.stops))):
            raise TavrnnInputError("Window bounds contain NaN or infinite values.")
        bad = np.flatnonzero(self.stops <= self.starts)
        if bad.size:
            raise TavrnnInputError(
                f"{bad.size} window(s) end at or before they start (first: #{bad[0]}, "
                f"{self.starts[bad[0]]}-{self.stops[bad[0]]} s)."
            )
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if self.labels.shape != self.starts.shape:
                raise TavrnnInputError(f"labels must have one entry per window ({self.starts.size}), got {self.labels.shape}.")

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, key) -> "Windows":
        if isinstance(key, (int, np.integer)):
            key = slice(key, key + 1 if key != -1 else None)
        return Windows(self.starts[key], self.stops[key], None if self.labels is None else self.labels[key])

    def __repr__(self) -> str:
        labelled = ", labelled" if self.labels is not None else ""
        return f"Windows({len(self)} windows, {self.starts.min():g}-{self.stops.max():g} s{labelled})"

    @property
    def durations_s(self) -> np.ndarray:
        return self.stops - self.starts

    def check_within(self, t_start_s: float, t_stop_s: float, tolerance_s: float = 1e-9) -> None:
        """Raise if a window reaches outside ``[t_start_s, t_stop_s]`` (windows are never silently cropped)."""
        outside = np.flatnonzero((self.starts < t_start_s - tolerance_s) | (self.stops > t_stop_s + tolerance_s))
        if outside.size:
            i = outside[0]
            raise TavrnnInputError(
                f"{outside.size} window(s) reach outside the recording [{t_start_s:g}, {t_stop_s:g}] s "
                f"(first: #{i}, {self.starts[i]:g}-{self.stops[i]:g} s). Shorten or drop them; windows are not cropped."
            )

    def to_dict(self) -> dict:
        """Plain arrays for storage (``starts``, ``stops`` and, when present, ``labels``)."""
        data = {"starts": self.starts, "stops": self.stops}
        if self.labels is not None:
            data["labels"] = self.labels
        return data


def sliding_windows(t_start: float, t_stop: float, size_s: float, step_s: float | None = None) -> Windows:
    """Windows of ``size_s`` seconds every ``step_s`` seconds, all inside ``[t_start, t_stop]``.

    The last partial window is not made: every window has the same length.

    Parameters
    ----------
    t_start, t_stop : float
        Span to cover, in seconds.
    size_s : float
        Window length in seconds.
    step_s : float or None, default: None
        Step between window starts in seconds; ``size_s`` (no overlap) when None.

    Returns
    -------
    Windows
    """
    step_s = size_s if step_s is None else step_s
    try:
        t_start, t_stop, size_s, step_s = (float(v) for v in (t_start, t_stop, size_s, step_s))
    except (TypeError, ValueError):
        raise TavrnnInputError(
            f"t_start, t_stop, size_s and step_s must be numbers of seconds, got {t_start!r}, {t_stop!r}, "
            f"{size_s!r} and {step_s!r}."
        ) from None
    if not all(np.isfinite(v) for v in (t_start, t_stop, size_s, step_s)):
        raise TavrnnInputError(
            f"t_start, t_stop, size_s and step_s must be finite seconds, got {t_start}, {t_stop}, {size_s} and {step_s}."
        )
    if size_s <= 0 or step_s <= 0:
        raise TavrnnInputError(f"size_s and step_s must be positive, got {size_s} and {step_s}.")
    if t_stop <= t_start:
        raise TavrnnInputError(f"t_stop ({t_stop}) must be after t_start ({t_start}).")
    duration = t_stop - t_start
    # Rounding slack in seconds, so that a window ending exactly at t_stop is kept at any magnitude of the times.
    slack_s = 1e-9 + 1e-12 * max(abs(t_start), abs(t_stop))
    if size_s > duration + slack_s:
        raise TavrnnInputError(
            f"The window ({size_s:g} s) is longer than the recording ({duration:g} s): choose a smaller size_s."
        )
    # Counted as a float first: a step of a few subnormal seconds makes it infinite. At least one window, since
    # size_s fits the span within the slack.
    n_windows_float = max(np.floor((duration - size_s + slack_s) / step_s) + 1, 1.0)
    if not n_windows_float <= MAX_SLIDING_WINDOWS:
        raise TavrnnInputError(
            f"{n_windows_float:.0f} windows of {size_s:g} s every {step_s:g} s over {duration:g} s is more than "
            f"{MAX_SLIDING_WINDOWS}: choose a larger step_s (or check t_stop and the times' unit)."
        )
    starts = t_start + step_s * np.arange(int(n_windows_float))
    return Windows(starts, np.minimum(starts + size_s, t_stop))


def windows_from_intervals(starts_s: Sequence[float], stops_s: Sequence[float], labels: Sequence | None = None) -> Windows:
    """One window per behavioural interval (trial, track visit, game rally), with its label.

    Parameters
    ----------
    starts_s, stops_s : sequence of float
        Interval bounds in seconds.
    labels : sequence or None, default: None
        One label per interval.

    Returns
    -------
    Windows
    """
    return Windows(starts_s, stops_s, labels)


def windows_from_events(
    event_times_s: Sequence[float], pre_s: float, post_s: float, labels: Sequence | None = None
) -> Windows:
    """One window ``[t - pre_s, t + post_s]`` around each event time ``t`` (stimulus, reward, lick).

    Parameters
    ----------
    event_times_s : sequence of float
        Event times in seconds.
    pre_s, post_s : float
        Seconds before and after each event; their sum must be positive.
    labels : sequence or None, default: None
        One label per event.

    Returns
    -------
    Windows
    """
    try:
        times = np.asarray(event_times_s, dtype=float)
    except (TypeError, ValueError):
        raise TavrnnInputError("event_times_s must be numbers of seconds.") from None
    if not pre_s + post_s > 0:
        raise TavrnnInputError(f"pre_s + post_s must be positive, got {pre_s} + {post_s}.")
    return Windows(times - pre_s, times + post_s, labels)
