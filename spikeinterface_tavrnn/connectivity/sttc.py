"""Spike time tiling coefficient (STTC) of all unit pairs in every window, exact in integer samples.

Definition (Cutts & Eglen 2014)
-------------------------------
For units A and B in a window of length ``L`` and a coincidence half-width ``dt``:

* ``P_A``: fraction of A's spikes that lie within ``[-dt, +dt]`` (closed) of at least one spike of B;
* ``T_A``: fraction of the window covered by the union of the intervals ``[s - dt, s + dt]`` around A's spikes
  (clipped to the window);
* ``STTC = 1/2 * ((P_A - T_B) / (1 - P_A T_B) + (P_B - T_A) / (1 - P_B T_A))``; a term whose ``P T`` equals 1 is
  0/0 and is set to 1 (then every spike of the first train is within ``dt`` of the other; Elephant does the
  same).

Everything is counted in integer samples: ``dt`` is rounded to ``dt_samples = round(dt_ms * fs / 1000)``, two
spikes are coincident when ``|s_a - s_b| <= dt_samples`` and the covered time is an integer number of samples,
so the result does not depend on floating-point rounding nor on where the recording sits in absolute time.

Defined behaviours
------------------
* A unit with no spike in a window: its row and column are 0 in that window, diagonal included (STTC is
  undefined; Elephant returns NaN). ``ConnectivitySequence.spike_counts`` tells silent units apart.
* The diagonal is 1 for every unit with at least one spike in the window.
* ``dt`` must be at least one sample and shorter than every window.

Differences from :func:`elephant.spike_train_correlation.spike_time_tiling_coefficient`
-------------------------------------------------------------------------------------
Elephant tests coincidence with ``np.isclose(t_a, t_b, atol=dt)``, i.e. ``|t_a - t_b| <= dt + 1e-5 * |t_b|``:
its coincidence window grows with absolute time (by 1 ms at t = 100 s, by 10 ms at t = 1,000 s), so its value
for the same spikes changes when the recording is shifted in time, and pairs exactly ``dt`` apart are counted
or not depending on float rounding. This module is exact and shift invariant; it equals Elephant where
``1e-5 * t`` is smaller than the distance of every spike pair from ``dt`` (recordings that start near 0), and
everywhere once Elephant's relative tolerance is set to 0. Elephant also costs O(n_a n_b) time and memory per
pair and is called once per pair: 4-9 ms per pair for 120 s at 5 Hz in ``benchmarks/bench_connectivity.py``
(on a busy 2-core machine), i.e. hours per window for 1,024 units, against seconds for all 19 windows here.

Algorithm
---------
All spikes are merged once into one time-sorted list. For each spike of unit A, the spikes of the merged list
within ``±dt`` are its only possible partners; each distinct partner unit B is counted once per spike of A
(``count[A, B] += 1``). The cost is the number of spikes times the mean number of spikes of all units within
``±dt`` (about 50 for 1,024 units at 5 Hz with dt = 5 ms), instead of a pass per pair. Rows A are independent,
so units run in parallel (numba ``prange``) without locks.

Overlapping sliding windows (equal sizes, equal steps smaller than the size) are unions of blocks of
``gcd(size, step)``: each block's spikes are counted once against all spikes of the recording, a window sums its
blocks, and the only correction is for its spikes within ``dt`` of its edges, whose partners outside the window
are removed. With 50 % overlap this halves the work, and the result is identical to one window at a time.

References
----------
Cutts, C. S. & Eglen, S. J. (2014). Detecting pairwise correlations in spike trains: an objective comparison of
methods and application to the study of retinal waves. J. Neurosci. 34(43):14288-14303.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import njit, prange

from ..spiketrains import SpikeTrains
from ..windows import Windows
from .binning import check_positive_ms, regular_grid, stable_time_order, unit_window_bounds, window_samples

__all__ = ["sttc_matrices", "sttc_matrices_elephant", "dt_to_samples"]

# float32 holds every integer up to 2**24 exactly: coincidence counts are accumulated in the output array itself.
_FLOAT32_EXACT_COUNT = 2**24
_BLOCK_CACHE_BYTES = 512 * 2**20


def dt_to_samples(dt_ms: float, sampling_frequency: float) -> int:
    """Coincidence half-width in samples, ``round(dt_ms * fs / 1000)``; warns when rounding changes ``dt``."""
    dt_ms = check_positive_ms("dt_ms", dt_ms)
    exact = dt_ms * sampling_frequency / 1000.0
    dt_samples = int(round(exact))
    if dt_samples < 1:
        raise ValueError(
            f"dt_ms={dt_ms} is shorter than one sample at {sampling_frequency:g} Hz "
            f"({1000.0 / sampling_frequency:g} ms): use a larger dt_ms."
        )
    if abs(exact - dt_samples) > 1e-6:
        warnings.warn(
            f"dt_ms={dt_ms} is not a whole number of samples at {sampling_frequency:g} Hz; using "
            f"{dt_samples} samples ({dt_samples * 1000.0 / sampling_frequency:.6g} ms).",
            stacklevel=3,
        )
    return dt_samples


@njit(cache=True, nogil=True)
def _count_partners(s, p, i, lo, hi, dt, merged_samples, merged_units, last_seen, row):
    """``row[b] += 1`` once for every unit ``b`` with a spike within dt of spike ``i`` (sample ``s``, at position ``p``
    of the time-sorted spikes of all units), looking only at merged positions ``[lo, hi)``."""
    k = p - 1
    while k >= lo and merged_samples[k] >= s - dt:
        b = merged_units[k]
        if last_seen[b] != i:
            last_seen[b] = i
            row[b] += 1
        k -= 1
    k = p + 1
    while k < hi and merged_samples[k] <= s + dt:
        b = merged_units[k]
        if last_seen[b] != i:
            last_seen[b] = i
            row[b] += 1
        k += 1


@njit(cache=True, parallel=True, nogil=True)
def _sttc_counts(unit_samples, pos, merged_samples, merged_units, w0, w1, mlo, mhi, ulo, uhi, dt, out, cover):
    """Coincidence counts into ``out[t, a, b]`` (spikes of a with a b spike within dt) and covered samples."""
    n_windows = w0.size
    n_units = ulo.shape[1]
    for item in prange(n_windows * n_units):
        t = item // n_units
        a = item - t * n_units
        lo = ulo[t, a]
        hi = uhi[t, a]
        if hi <= lo:
            cover[t, a] = 0
            continue
        row = out[t, a]
        last_seen = np.full(n_units, -1, dtype=np.int64)
        first = mlo[t]
        end = mhi[t]
        covered = min(unit_samples[lo] - w0[t], dt)
        for i in range(lo, hi):
            s = unit_samples[i]
            if i > lo:
                covered += min(s - unit_samples[i - 1], 2 * dt)
            _count_partners(s, pos[i], i, first, end, dt, merged_samples, merged_units, last_seen, row)
        covered += min(w1[t] - unit_samples[hi - 1], dt)
        cover[t, a] = covered


@njit(cache=True, parallel=True, nogil=True)
def _sttc_block_counts(unit_samples, pos, merged_samples, merged_units, blo, bhi, dt, out):
    """Counts of the spikes of block ``[blo[a], bhi[a])`` of each unit ``a`` against *all* spikes of the recording.

    ``out[a, b] += 1`` per spike of ``a`` with a spike of ``b`` within dt, whichever window that spike is in: the
    windows made of this block correct their edges with :func:`_sttc_edge_correction`.
    """
    n_units = blo.size
    n_total = merged_samples.size
    for a in prange(n_units):
        row = out[a]
        last_seen = np.full(n_units, -1, dtype=np.int64)
        for i in range(blo[a], bhi[a]):
            _count_partners(unit_samples[i], pos[i], i, 0, n_total, dt, merged_samples, merged_units, last_seen, row)


@njit(cache=True, nogil=True)
def _sttc_edge_correction(unit_samples, pos, merged_samples, merged_units, w0, w1, ulo, uhi, dt, out):
    """Remove from the counts of one window the partners that lie only outside it (spikes within dt of an edge).

    Serial: it visits only the few spikes near the edges, and a parallel region would cost more than the work.
    """
    n_units = ulo.size
    n_total = merged_samples.size
    seen_any = np.full(n_units, -1, dtype=np.int64)
    seen_inside = np.full(n_units, -1, dtype=np.int64)
    partners = np.empty(n_units, dtype=np.int64)
    for a in range(n_units):
        row = out[a]
        for i in range(ulo[a], uhi[a]):
            s = unit_samples[i]
            if w0 + dt <= s < w1 - dt:
                continue  # its whole neighbourhood is inside the window
            n_partners = 0
            p = pos[i]
            k = p - 1
            while k >= 0 and merged_samples[k] >= s - dt:
                b = merged_units[k]
                if seen_any[b] != i:
                    seen_any[b] = i
                    partners[n_partners] = b
                    n_partners += 1
                if merged_samples[k] >= w0:
                    seen_inside[b] = i
                k -= 1
            k = p + 1
            while k < n_total and merged_samples[k] <= s + dt:
                b = merged_units[k]
                if seen_any[b] != i:
                    seen_any[b] = i
                    partners[n_partners] = b
                    n_partners += 1
                if merged_samples[k] < w1:
                    seen_inside[b] = i
                k += 1
            for j in range(n_partners):
                if seen_inside[partners[j]] != i:
                    row[partners[j]] -= 1


@njit(cache=True, parallel=True, nogil=True)
def _sttc_cover(unit_samples, w0, w1, ulo, uhi, dt, cover):
    """Samples of each window covered by ``[s - dt, s + dt]`` around each unit's spikes (union, clipped)."""
    n_windows, n_units = ulo.shape
    for item in prange(n_windows * n_units):
        t = item // n_units
        a = item - t * n_units
        lo = ulo[t, a]
        hi = uhi[t, a]
        if hi <= lo:
            cover[t, a] = 0
            continue
        covered = min(unit_samples[lo] - w0[t], dt) + min(w1[t] - unit_samples[hi - 1], dt)
        for i in range(lo + 1, hi):
            covered += min(unit_samples[i] - unit_samples[i - 1], 2 * dt)
        cover[t, a] = covered


@njit(cache=True, parallel=True, nogil=True)
def _sttc_finalize(out, n_spikes, cover, lengths):
    """Turn the counts of ``out`` into STTC values in place (symmetric; 0 for silent units, 1 on the diagonal)."""
    n_windows, n_units = n_spikes.shape
    for t in prange(n_windows):
        length = lengths[t]
        for a in range(n_units):
            na = n_spikes[t, a]
            out[t, a, a] = 1.0 if na > 0 else 0.0
            for b in range(a + 1, n_units):
                nb = n_spikes[t, b]
                value = 0.0
                if na > 0 and nb > 0:
                    count_ab = out[t, a, b]
                    count_ba = out[t, b, a]
                    pa = count_ab / na
                    pb = count_ba / nb
                    ta = cover[t, a] / length
                    tb = cover[t, b] / length
                    if count_ab == na and cover[t, b] == length:
                        first = 1.0
                    else:
                        first = (pa - tb) / (1.0 - pa * tb)
                    if count_ba == nb and cover[t, a] == length:
                        second = 1.0
                    else:
                        second = (pb - ta) / (1.0 - pb * ta)
                    value = 0.5 * (first + second)
                out[t, a, b] = value
                out[t, b, a] = value


def _merged_order(spikes: SpikeTrains):
    samples, offsets = spikes.to_concatenated()
    unit_of = np.repeat(np.arange(spikes.num_units, dtype=np.int32), np.diff(offsets))
    order = stable_time_order(samples)  # stable: ties stay in unit order, so the result is deterministic
    pos = np.empty(samples.size, dtype=np.int64)
    pos[order] = np.arange(samples.size, dtype=np.int64)
    return samples, offsets, unit_of, pos, samples[order], unit_of[order]


def _window_chunks(n_windows: int, n_items_per_window: int, target_items: int = 4096) -> list[slice]:
    per_chunk = max(1, min(n_windows, math.ceil(target_items / max(1, n_items_per_window))))
    per_chunk = max(per_chunk, min(n_windows, 2))  # at least two windows per call so both cores have work
    return [slice(i, min(n_windows, i + per_chunk)) for i in range(0, n_windows, per_chunk)]


def sttc_matrices(
    spikes: SpikeTrains,
    windows: Windows,
    dt_ms: float = 5.0,
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """STTC of every unit pair in every window (Cutts & Eglen 2014), exact in integer samples.

    Parameters
    ----------
    spikes : SpikeTrains
        The sorted spikes.
    windows : Windows
        Time windows inside the recording; bounds are rounded to the nearest sample and a spike at sample ``s``
        belongs to ``[w0, w1)``.
    dt_ms : float, default: 5.0
        Coincidence half-width in milliseconds, rounded to whole samples.
    verbose : bool, default: True
        Show a progress bar over windows.
    dtype : numpy dtype, default: np.float32
        Output type; use ``np.float64`` for full precision.

    Returns
    -------
    matrices : np.ndarray, shape (n_windows, n_units, n_units)
        Symmetric STTC matrices; rows and columns of units silent in a window are 0, the diagonal of active
        units is 1.
    extra : dict
        ``{"dt_samples": int}``.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, sliding_windows
    >>> from spikeinterface_tavrnn.connectivity.sttc import sttc_matrices
    >>> spikes = SpikeTrains.from_arrays([np.array([0.100, 0.500]), np.array([0.102, 0.900])],
    ...                                  t_start=0.0, t_stop=1.0, sampling_frequency=1000.0)
    >>> matrices, _ = sttc_matrices(spikes, sliding_windows(0.0, 1.0, 1.0), dt_ms=5.0, verbose=False)
    >>> round(float(matrices[0, 0, 1]), 4)
    0.4848

    References
    ----------
    Cutts, C. S. & Eglen, S. J. (2014). J. Neurosci. 34(43):14288-14303.
    """
    from tqdm.auto import tqdm

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}.")
    dt = dt_to_samples(dt_ms, spikes.sampling_frequency)
    w0, w1 = window_samples(spikes, windows)
    lengths = w1 - w0
    if dt >= lengths.min():
        i = int(np.argmin(lengths))
        raise ValueError(
            f"dt_ms={dt_ms} is not shorter than window #{i} ({lengths[i] / spikes.sampling_frequency * 1000:g} ms): "
            "STTC needs dt much shorter than the window."
        )
    samples, offsets, unit_of, pos, merged_samples, merged_units = _merged_order(spikes)
    ulo, uhi = unit_window_bounds(spikes, w0, w1)
    n_spikes = uhi - ulo
    mlo = np.searchsorted(merged_samples, w0, side="left").astype(np.int64)
    mhi = np.searchsorted(merged_samples, w1, side="left").astype(np.int64)

    n_windows, n_units = len(w0), spikes.num_units
    work_dtype = dtype
    if dtype == np.float32 and n_spikes.size and n_spikes.max() >= _FLOAT32_EXACT_COUNT:
        work_dtype = np.dtype(np.float64)
    out = np.zeros((n_windows, n_units, n_units), dtype=work_dtype)
    cover = np.zeros((n_windows, n_units), dtype=np.int64)
    grid = regular_grid(w0, w1)
    if grid is not None and (grid[1] + 1) * n_units**2 * work_dtype.itemsize > _BLOCK_CACHE_BYTES:
        grid = None
    with tqdm(total=n_windows, desc="sttc", unit="window", disable=not verbose) as bar:
        if grid is None:
            for chunk in _window_chunks(n_windows, n_units):
                _sttc_counts(
                    samples, pos, merged_samples, merged_units, w0[chunk], w1[chunk], mlo[chunk], mhi[chunk],
                    ulo[chunk], uhi[chunk], dt, out[chunk], cover[chunk],
                )  # fmt: skip
                _sttc_finalize(out[chunk], n_spikes[chunk], cover[chunk], lengths[chunk])
                bar.update(chunk.stop - chunk.start)
        else:
            # Overlapping sliding windows: count each block of gcd(size, step) samples once, against all spikes;
            # a window is the sum of its blocks minus the partners that lie outside it (near its edges only).
            block, per_window, per_step = grid
            ring = np.zeros((per_window, n_units, n_units), dtype=work_dtype)
            edges = w0[0] + block * np.arange((n_windows - 1) * per_step + per_window + 1)
            blo, bhi = unit_window_bounds(spikes, edges[:-1], edges[1:])
            next_block = 0
            for t in range(n_windows):
                while next_block < t * per_step + per_window:
                    slot = ring[next_block % per_window]
                    slot[:] = 0
                    _sttc_block_counts(
                        samples, pos, merged_samples, merged_units, blo[next_block], bhi[next_block], dt, slot
                    )
                    next_block += 1
                np.sum(ring, axis=0, out=out[t])
                _sttc_edge_correction(
                    samples, pos, merged_samples, merged_units, w0[t], w1[t], ulo[t], uhi[t], dt, out[t]
                )
                bar.update(1)
            del ring
            _sttc_cover(samples, w0, w1, ulo, uhi, dt, cover)
            _sttc_finalize(out, n_spikes, cover, lengths)
    if out.dtype != dtype:
        out = out.astype(dtype)
    return out, {"dt_samples": dt}


def sttc_matrices_elephant(
    spikes: SpikeTrains,
    windows: Windows,
    dt_ms: float = 5.0,
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """STTC through :func:`elephant.spike_train_correlation.spike_time_tiling_coefficient`, one call per pair.

    The reference implementation, for cross-checks. Each window's spikes (the same half-open selection
    ``[w0, w1)`` in samples as the fast backend) become Neo spike trains with ``t_start = w0 / fs`` and
    ``t_stop = w1 / fs``; ``dt`` is the same rounded ``dt_samples / fs``. Elephant's NaN for an empty train is
    replaced by 0, and the diagonal is 1 for active units, as in :func:`sttc_matrices`.

    .. warning::
       Slow: one Python call per pair and window, each O(n_a * n_b) in time and memory (4-9 ms per pair of
       5 Hz units in a 120 s window, measured by ``benchmarks/bench_connectivity.py``: 0.6-1.3 h per window for
       1,024 units, thousands of times slower than :func:`sttc_matrices`). Its coincidence test
       ``np.isclose`` has a relative tolerance of 1e-5, so results drift with absolute time (see
       :mod:`spikeinterface_tavrnn.connectivity.sttc`).

    Parameters and returns are those of :func:`sttc_matrices`.
    """
    import neo
    import quantities as pq
    from elephant.spike_train_correlation import spike_time_tiling_coefficient
    from tqdm.auto import tqdm

    fs = spikes.sampling_frequency
    dt = dt_to_samples(dt_ms, fs)
    w0, w1 = window_samples(spikes, windows)
    if dt >= (w1 - w0).min():
        raise ValueError(f"dt_ms={dt_ms} is not shorter than the shortest window.")
    n_windows, n_units = len(w0), spikes.num_units
    out = np.zeros((n_windows, n_units, n_units), dtype=np.float64)
    dt_q = (dt / fs) * pq.s
    for t in tqdm(range(n_windows), desc="sttc (elephant)", unit="window", disable=not verbose):
        t_start, t_stop = w0[t] / fs, w1[t] / fs
        trains = []
        for samples in spikes.spike_samples:
            lo, hi = np.searchsorted(samples, [w0[t], w1[t]], side="left")
            trains.append(neo.SpikeTrain(samples[lo:hi] / fs * pq.s, t_start=t_start * pq.s, t_stop=t_stop * pq.s))
        active = np.array([len(train) > 0 for train in trains])
        for a in range(n_units):
            out[t, a, a] = 1.0 if active[a] else 0.0
            if not active[a]:
                continue
            for b in range(a + 1, n_units):
                if active[b]:
                    value = spike_time_tiling_coefficient(trains[a], trains[b], dt=dt_q)
                    out[t, a, b] = out[t, b, a] = value
    return out.astype(dtype), {"dt_samples": dt}
