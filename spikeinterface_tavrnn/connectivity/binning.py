"""Shared helpers of the estimators: windows in samples, spike selection per window, binning.

Conventions used by every built-in estimator
--------------------------------------------
* A window ``[start_s, stop_s]`` is converted to samples by rounding both bounds to the nearest sample:
  ``w0 = round(start_s * fs)``, ``w1 = round(stop_s * fs)``. Its length is ``w1 - w0`` samples.
* A spike at sample ``s`` belongs to the window when ``w0 <= s < w1`` (half-open), so that back-to-back windows
  share no spike.
* Bins (Pearson, cross-correlation) start at the window start, have width ``bin_ms`` and only whole bins are
  used, as :class:`elephant.conversion.BinnedSpikeTrain` does: when the window length is not a multiple of the
  bin, the spikes of the last partial bin are not binned (a warning says so).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings

import numpy as np
from numba import njit

from ..spiketrains import SpikeTrains
from ..windows import Windows

#: Spikes within this fraction of a bin of the next bin edge go to the next bin (Elephant's ``tolerance``), so
#: that floating-point error in a non-integer bin width never moves a spike back by one bin.
BIN_EDGE_TOLERANCE = 1e-8


@contextlib.contextmanager
def quiet_elephant():
    """Silence Elephant's binning log messages and warnings (the cases they report are documented here)."""
    import elephant.utils

    # Elephant's binning logger is named after its file and does not propagate: silence it directly.
    loggers = [logging.getLogger("elephant"), getattr(elephant.utils, "logger", logging.getLogger("elephant"))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def window_samples(spikes: SpikeTrains, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Window bounds rounded to the nearest sample, as int64 ``(w0, w1)``; checks they lie in the recording."""
    windows.check_within(spikes.t_start_s, spikes.t_stop_s)
    fs = spikes.sampling_frequency
    w0 = np.rint(windows.starts * fs).astype(np.int64)
    w1 = np.rint(windows.stops * fs).astype(np.int64)
    w0 = np.maximum(w0, spikes.t_start_sample)
    w1 = np.minimum(w1, spikes.t_stop_sample)
    bad = np.flatnonzero(w1 <= w0)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"Window #{i} ({windows.starts[i]:g}-{windows.stops[i]:g} s) is shorter than one sample at "
            f"{fs:g} Hz: make the windows longer."
        )
    return w0, w1


def unit_window_bounds(spikes: SpikeTrains, w0: np.ndarray, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute index ranges ``[lo, hi)`` into ``spikes.to_concatenated()[0]`` of each unit in each window, (T, N)."""
    offsets = np.concatenate([[0], np.cumsum(spikes.spike_counts)])
    lo = np.empty((w0.size, spikes.num_units), dtype=np.int64)
    hi = np.empty_like(lo)
    for a, train in enumerate(spikes.spike_samples):
        lo[:, a] = offsets[a] + np.searchsorted(train, w0, side="left")
        hi[:, a] = offsets[a] + np.searchsorted(train, w1, side="left")
    return lo, hi


def window_spike_counts(spikes: SpikeTrains, windows: Windows) -> np.ndarray:
    """Number of spikes of each unit in each window (half-open in samples), int64 (T, N)."""
    w0, w1 = window_samples(spikes, windows)
    lo, hi = unit_window_bounds(spikes, w0, w1)
    return hi - lo


def regular_grid(w0: np.ndarray, w1: np.ndarray) -> tuple[int, int, int] | None:
    """``(block, blocks_per_window, blocks_per_step)`` in samples when the windows are a regular overlapping grid.

    Windows of equal length ``size`` starting every ``step < size`` samples are unions of consecutive blocks of
    ``gcd(size, step)`` samples; per-block results can then be computed once and shared by the windows that
    contain the block. None otherwise (one window, unequal lengths or steps, no overlap).
    """
    if len(w0) < 2:
        return None
    lengths = w1 - w0
    steps = np.diff(w0)
    if np.any(lengths != lengths[0]) or np.any(steps != steps[0]) or not 0 < steps[0] < lengths[0]:
        return None
    size, step = int(lengths[0]), int(steps[0])
    block = math.gcd(size, step)
    return block, size // block, step // block


def check_positive_ms(name: str, value: float) -> float:
    """A finite positive duration in milliseconds, or a clear error."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a number of milliseconds, got {value!r}.")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of milliseconds, got {value!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number of milliseconds, got {value}.")
    return value


def bin_width_samples(bin_ms: float, fs: float) -> float:
    """Bin width in samples (float); exact integers are snapped so that binning is exact integer arithmetic."""
    width = bin_ms * fs / 1000.0
    if abs(width - round(width)) < 1e-9 * max(1.0, width):
        width = float(round(width))
    return width


def n_whole_bins(length_samples: int, width_samples: float) -> int:
    """Whole bins of ``width_samples`` in a window of ``length_samples`` (Elephant's rounding tolerance)."""
    value = length_samples / width_samples
    n = math.floor(value)
    if value - n >= 1.0 - BIN_EDGE_TOLERANCE:
        n += 1
    return int(n)


def check_bins_fit(bin_ms: float, spikes: SpikeTrains, w0: np.ndarray, w1: np.ndarray, min_bins: int = 2) -> float:
    """Validate a bin width against every window; warn once about partial last bins. Returns the width in samples."""
    bin_ms = check_positive_ms("bin_ms", bin_ms)
    fs = spikes.sampling_frequency
    width = bin_width_samples(bin_ms, fs)
    if width < 1.0:
        raise ValueError(
            f"bin_ms={bin_ms} is shorter than one sample at {fs:g} Hz ({1000.0 / fs:g} ms): use a larger bin."
        )
    lengths = w1 - w0
    shortest = int(lengths.min())
    if n_whole_bins(shortest, width) < min_bins:
        raise ValueError(
            f"bin_ms={bin_ms} is too large for the shortest window ({shortest / fs * 1000.0:g} ms): "
            f"each window needs at least {min_bins} whole bins."
        )
    tails = np.array([length - n_whole_bins(int(length), width) * width for length in np.unique(lengths)])
    if np.any(tails > 1e-6):
        warnings.warn(
            f"Window length is not a multiple of bin_ms={bin_ms}: spikes in the last "
            f"{tails.max() / fs * 1000.0:.6g} ms of a window (the partial last bin) are not binned, as in "
            "elephant.conversion.BinnedSpikeTrain. Choose windows that are a whole number of bins to use every spike.",
            stacklevel=3,
        )
    return width


@njit(cache=True)
def _bin_index(sample: int, origin: int, width: float) -> int:
    value = (sample - origin) / width
    index = int(np.floor(value))
    if value - index >= 1.0 - BIN_EDGE_TOLERANCE:
        index += 1
    return index


@njit(cache=True)
def bin_units(unit_samples, offsets, origin, stop, width, n_bins, binary, out):
    """Add the binned spikes of samples ``[origin, stop)`` to ``out`` (N, n_bins): bins start at ``origin``."""
    n_units = offsets.size - 1
    for a in range(n_units):
        train = unit_samples[offsets[a] : offsets[a + 1]]
        lo = np.searchsorted(train, origin)
        hi = np.searchsorted(train, stop)
        for i in range(lo, hi):
            b = _bin_index(train[i], origin, width)
            if b < n_bins:
                if binary:
                    out[a, b] = 1
                else:
                    out[a, b] += 1


@njit(cache=True)
def stable_time_order(samples):
    """Stable argsort of integer ``samples`` (ties keep input order) by LSD radix sort.

    Linear time, and faster than ``np.argsort(kind="stable")`` on millions of spikes.
    """
    n = samples.size
    order = np.arange(n)
    if n == 0:
        return order
    lo = samples.min()
    keys = samples - lo
    span = keys.max()
    total_bits = 1
    while (span >> total_bits) > 0:
        total_bits += 1
    n_passes = (total_bits + 15) // 16
    bits = (total_bits + n_passes - 1) // n_passes
    mask = (1 << bits) - 1
    key_buffer = np.empty(n, dtype=np.int64)
    order_buffer = np.empty(n, dtype=np.int64)
    for p in range(n_passes):
        shift = p * bits
        counts = np.zeros((1 << bits) + 1, dtype=np.int64)
        for i in range(n):
            counts[((keys[i] >> shift) & mask) + 1] += 1
        for k in range(1 << bits):
            counts[k + 1] += counts[k]
        for i in range(n):
            digit = (keys[i] >> shift) & mask
            slot = counts[digit]
            key_buffer[slot] = keys[i]
            order_buffer[slot] = order[i]
            counts[digit] = slot + 1
        keys, key_buffer = key_buffer, keys
        order, order_buffer = order_buffer, order
    return order
