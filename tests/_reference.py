"""Brute-force reference implementations of the connectivity measures, written from their published definitions.

They share no code with the package's estimators, and are slow: use them on small inputs only.
"""

from __future__ import annotations

import numpy as np
import h5py

from spikeinterface_tavrnn.spiketrains import SpikeTrains


# ----------------------------------------------------------------------------------------------- STTC
def sttc_pair_loops(a: list[float], b: list[float], dt: float, start: float, stop: float) -> float:
    """STTC of two trains by plain loops over spike pairs (Cutts & Eglen 2014), any time unit.

    Coincidence ``|t_a - t_b| <= dt`` (closed); T = measure of the union of ``[t - dt, t + dt]`` clipped to
    ``[start, stop]``, computed by sorting interval ends; 0/0 terms are 1; NaN when a train is empty.
    """
    if len(a) == 0 or len(b) == 0:
        return float("nan")

    def proportion(x, y):
        hits = 0
        for tx in x:
            for ty in y:
                if abs(tx - ty) <= dt:
                    hits += 1
                    break
        return hits / len(x)

    def tiled(x):
        intervals = sorted((max(start, t - dt), min(stop, t + dt)) for t in x)
        total, cur_lo, cur_hi = 0.0, intervals[0][0], intervals[0][1]
        for lo, hi in intervals[1:]:
            if lo <= cur_hi:
                cur_hi = max(cur_hi, hi)
            else:
                total += cur_hi - cur_lo
                cur_lo, cur_hi = lo, hi
        total += cur_hi - cur_lo
        return total / (stop - start)

    pa, pb, ta, tb = proportion(a, b), proportion(b, a), tiled(a), tiled(b)
    first = 1.0 if pa * tb == 1 else (pa - tb) / (1 - pa * tb)
    second = 1.0 if pb * ta == 1 else (pb - ta) / (1 - pb * ta)
    return 0.5 * (first + second)


def tiled_fraction_samples(x: np.ndarray, dt: int, w0: int, w1: int) -> float:
    """T of one integer-sample train in window ``[w0, w1]``: the fraction of unit sample intervals ``[k, k + 1]``
    that lie within ``dt`` of a spike (``s - dt <= k`` and ``k + 1 <= s + dt``), by a difference array."""
    if x.size == 0:
        return 0.0
    covered = np.zeros(w1 - w0 + 1, dtype=np.int32)
    np.add.at(covered, np.clip(x - dt - w0, 0, w1 - w0), 1)
    np.add.at(covered, np.clip(x + dt - w0, 0, w1 - w0), -1)
    return float(np.count_nonzero(np.cumsum(covered)[: w1 - w0])) / (w1 - w0)


def proportion_tiled_samples(x: np.ndarray, y: np.ndarray, dt: int) -> float:
    """P: fraction of the spikes of ``x`` with a spike of ``y`` within ``dt`` (nearest neighbour by binary search)."""
    idx = np.searchsorted(y, x)
    left = np.abs(x - y[np.clip(idx - 1, 0, y.size - 1)])
    right = np.abs(y[np.clip(idx, 0, y.size - 1)] - x)
    return float(np.mean(np.minimum(left, right) <= dt))


def sttc_from_parts(pa: float, pb: float, ta: float, tb: float) -> float:
    first = 1.0 if pa * tb == 1 else (pa - tb) / (1 - pa * tb)
    second = 1.0 if pb * ta == 1 else (pb - ta) / (1 - pb * ta)
    return 0.5 * (first + second)


def sttc_reference_matrices(spikes: SpikeTrains, w0: np.ndarray, w1: np.ndarray, dt: int) -> np.ndarray:
    """All pairs, all windows ``[w0, w1)`` of integer-sample trains; silent units 0, diagonal 1 for active units.

    A different algorithm from the package's (for speed on real recordings): nearest neighbours by binary search
    and coverage by a difference array over the window's samples.
    """
    n = spikes.num_units
    out = np.zeros((len(w0), n, n))
    for t in range(len(w0)):
        lo, hi = int(w0[t]), int(w1[t])
        trains = [s[(s >= lo) & (s < hi)] for s in spikes.spike_samples]
        tiled = [tiled_fraction_samples(x, dt, lo, hi) for x in trains]
        for i in range(n):
            out[t, i, i] = 1.0 if trains[i].size else 0.0
            for j in range(i + 1, n):
                if trains[i].size and trains[j].size:
                    pa = proportion_tiled_samples(trains[i], trains[j], dt)
                    pb = proportion_tiled_samples(trains[j], trains[i], dt)
                    out[t, i, j] = out[t, j, i] = sttc_from_parts(pa, pb, tiled[i], tiled[j])
    return out


# ----------------------------------------------------------------------------------------------- binning
def binned_matrix(spikes: SpikeTrains, w0: int, n_bins: int, bin_samples: int, binary: bool) -> np.ndarray:
    """(N, n_bins) binned counts with np.histogram, bins ``[w0 + k * bin, w0 + (k + 1) * bin)``."""
    edges = w0 + bin_samples * np.arange(n_bins + 1)
    rows = []
    for s in spikes.spike_samples:
        counts, _ = np.histogram(s[(s >= edges[0]) & (s < edges[-1])], bins=edges)
        rows.append(np.minimum(counts, 1) if binary else counts)
    return np.array(rows, dtype=np.float64)


def cch_coefficient(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised CCH of two binned trains at lags -max_lag..max_lag by explicit sums (Eggermont 2010, 5.10)."""
    n = x.size
    out = []
    var_x = np.dot(x, x) - x.sum() ** 2 / n
    var_y = np.dot(y, y) - y.sum() ** 2 / n
    for k in range(-max_lag, max_lag + 1):
        c = sum(x[i] * y[i + k] for i in range(n) if 0 <= i + k < n)
        out.append((c - x.sum() * y.sum() / n) / np.sqrt(var_x * var_y))
    return np.array(out)


# ----------------------------------------------------------------------------------------------- data
def read_sjemea(path, sampling_frequency: float = 25000.0) -> SpikeTrains:
    """A sjemea HDF5 file (``/spikes`` concatenated per electrode, ``/sCount``) as SpikeTrains, t_start 0."""
    with h5py.File(path, "r") as f:
        times = np.asarray(f["spikes"][:], dtype=float)
        counts = np.asarray(f["sCount"][:], dtype=np.int64)
    trains = np.split(times, np.cumsum(counts)[:-1])
    trains = [np.sort(t) for t in trains]
    t_stop = float(np.ceil(times.max() + 1e-3))
    return SpikeTrains.from_arrays(trains, t_start=0.0, t_stop=t_stop, sampling_frequency=sampling_frequency,
                                   duplicates="keep")  # fmt: skip
