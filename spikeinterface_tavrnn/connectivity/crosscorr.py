"""Peak of the normalised cross-correlation of binned spike trains, all unit pairs, every window.

For units A and B binned into ``L`` bins of ``bin_ms`` (counts, or 0/1 when ``binary``), the cross-correlation
histogram at lag ``k`` (in bins; positive when B fires after A) is ``C_AB[k] = sum_i x_A[i] x_B[i + k]`` over the
bins where both exist (no border correction). It is normalised as in
``elephant.spike_train_correlation.cross_correlation_histogram(..., cross_correlation_coefficient=True)``
(Eggermont 2010, Eq. 5.10)::

    rho_AB[k] = (C_AB[k] - S_A S_B / L) / sqrt((Q_A - S_A^2 / L) (Q_B - S_B^2 / L))

with ``S`` the spike (or occupied-bin) count and ``Q`` the sum of squared bin counts. At lag 0 this is the
Pearson correlation of :mod:`.pearson`.

For each pair the value kept is the peak of ``rho`` over ``|k| <= max_lag_ms / bin_ms``: the largest ``|rho|``
(``peak="abs"``, the default; the signed value is kept) or the largest ``rho`` (``peak="max"``). Ties go to the
smallest ``|k|``, then to positive ``k``. The lag of the peak is returned in ms in an antisymmetric matrix:
``lags_ms[t, a, b] = +x`` means B follows A by ``x`` ms, and ``lags_ms[t, b, a] = -x``.

Defined behaviours
------------------
* Bins start at each window start; only whole bins are used (spikes of a partial last bin are not binned, with a
  warning), as in Elephant.
* A unit with a constant binned train in a window (silent, or occupying every bin) has an undefined coefficient:
  its row and column are 0 (diagonal included) and its lags 0. Otherwise the diagonal is 1 (lag 0).
* ``max_lag_ms`` must be a whole number of bins (0 allowed) shorter than the window.

Algorithm
---------
The occupied bins of all units are merged into one bin-sorted event list; for each event of A, only the events
within ``±max_lag`` bins are visited, so the cost is the number of events times the events of all units within
the lag range, not ``N^2 x n_bins``. Rows run in parallel (numba ``prange``).

References
----------
Eggermont, J. J. (2010). Pair-correlation in the time and frequency domain. In: Gruen, S. & Rotter, S. (eds.),
Analysis of Parallel Spike Trains, Springer, pp. 77-102.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..spiketrains import SpikeTrains
from ..windows import Windows
from .binning import (
    _bin_index,
    check_bins_fit,
    check_positive_ms,
    n_whole_bins,
    quiet_elephant,
    stable_time_order,
    window_samples,
)

__all__ = ["crosscorr_matrices", "crosscorr_matrices_elephant", "lag_order"]


def lag_order(max_lag: int) -> np.ndarray:
    """Lags in bins in the order that breaks ties: 0, +1, -1, +2, -2, ..."""
    order = [0]
    for k in range(1, max_lag + 1):
        order += [k, -k]
    return np.array(order, dtype=np.int64)


def _max_lag_bins(max_lag_ms: float, bin_ms: float) -> int:
    max_lag_ms = float(max_lag_ms)
    if not math.isfinite(max_lag_ms) or max_lag_ms < 0:
        raise ValueError(f"max_lag_ms must be a finite number >= 0 ms, got {max_lag_ms}.")
    ratio = max_lag_ms / bin_ms
    if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
        raise ValueError(f"max_lag_ms={max_lag_ms} must be a whole number of bins of bin_ms={bin_ms}.")
    return int(round(ratio))


@njit(cache=True)
def _window_events(unit_samples, offsets, origin, stop, width, n_bins, binary):
    """Occupied bins of each unit in ``[origin, stop)``: unit-major ``(event_offsets, bins, weights)``."""
    n_units = offsets.size - 1
    lo = np.empty(n_units, dtype=np.int64)
    hi = np.empty(n_units, dtype=np.int64)
    counts = np.zeros(n_units + 1, dtype=np.int64)
    for a in range(n_units):
        train = unit_samples[offsets[a] : offsets[a + 1]]
        lo[a] = offsets[a] + np.searchsorted(train, origin)
        hi[a] = offsets[a] + np.searchsorted(train, stop)
        last = -1
        for i in range(lo[a], hi[a]):
            b = _bin_index(unit_samples[i], origin, width)
            if b >= n_bins:
                break
            if b != last:
                last = b
                counts[a + 1] += 1
    for a in range(n_units):
        counts[a + 1] += counts[a]
    bins = np.empty(counts[n_units], dtype=np.int64)
    weights = np.zeros(counts[n_units], dtype=np.float64)
    for a in range(n_units):
        e = counts[a] - 1
        last = -1
        for i in range(lo[a], hi[a]):
            b = _bin_index(unit_samples[i], origin, width)
            if b >= n_bins:
                break
            if b != last:
                last = b
                e += 1
                bins[e] = b
                weights[e] = 1.0
            elif not binary:
                weights[e] += 1.0
    return counts, bins, weights


@njit(cache=True, parallel=True, nogil=True)
def _cch_peaks(ev_off, ev_bins, ev_w, pos, m_bins, m_units, m_w, n_bins, max_lag, use_abs, out, lags):
    n_units = ev_off.size - 1
    n_lags = 2 * max_lag + 1
    n_events = m_bins.size
    sums = np.zeros(n_units)
    squares = np.zeros(n_units)
    for a in range(n_units):
        for e in range(ev_off[a], ev_off[a + 1]):
            sums[a] += ev_w[e]
            squares[a] += ev_w[e] * ev_w[e]
    order = np.empty(n_lags, dtype=np.int64)
    order[0] = 0
    for k in range(1, max_lag + 1):
        order[2 * k - 1] = k
        order[2 * k] = -k
    for a in prange(n_units):
        cch = np.empty((n_units, n_lags))
        touched = np.zeros(n_units, dtype=np.bool_)
        for e in range(ev_off[a], ev_off[a + 1]):
            bin_a = ev_bins[e]
            w_a = ev_w[e]
            p = pos[e]
            k = p - 1
            while k >= 0 and m_bins[k] >= bin_a - max_lag:
                b = m_units[k]
                if b > a:
                    if not touched[b]:
                        touched[b] = True
                        cch[b, :] = 0.0
                    cch[b, m_bins[k] - bin_a + max_lag] += w_a * m_w[k]
                k -= 1
            k = p + 1
            while k < n_events and m_bins[k] <= bin_a + max_lag:
                b = m_units[k]
                if b > a:
                    if not touched[b]:
                        touched[b] = True
                        cch[b, :] = 0.0
                    cch[b, m_bins[k] - bin_a + max_lag] += w_a * m_w[k]
                k += 1
        var_a = squares[a] - sums[a] * sums[a] / n_bins
        out[a, a] = 1.0 if var_a > 0 else 0.0
        lags[a, a] = 0
        for b in range(a + 1, n_units):
            var_b = squares[b] - sums[b] * sums[b] / n_bins
            value = 0.0
            lag = 0
            if var_a > 0 and var_b > 0:
                mean = sums[a] * sums[b] / n_bins
                den = np.sqrt(var_a * var_b)
                if not touched[b]:
                    value = (0.0 - mean) / den
                else:
                    best = -np.inf
                    for j in range(n_lags):
                        kk = order[j]
                        v = (cch[b, kk + max_lag] - mean) / den
                        score = abs(v) if use_abs else v
                        if score > best:
                            best = score
                            value = v
                            lag = kk
            out[a, b] = value
            out[b, a] = value
            lags[a, b] = lag
            lags[b, a] = -lag


def _check_peak(peak: str) -> bool:
    if peak not in ("abs", "max"):
        raise ValueError(f"peak must be 'abs' (largest |rho|) or 'max' (largest rho), got {peak!r}.")
    return peak == "abs"


def crosscorr_matrices(
    spikes: SpikeTrains,
    windows: Windows,
    bin_ms: float = 1.0,
    max_lag_ms: float = 10.0,
    binary: bool = True,
    peak: str = "abs",
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """Peak normalised cross-correlation (value and lag) of every unit pair in every window.

    Parameters
    ----------
    spikes : SpikeTrains
        The sorted spikes.
    windows : Windows
        Time windows inside the recording (bounds rounded to the nearest sample; spikes in ``[w0, w1)``).
    bin_ms : float, default: 1.0
        Bin width in milliseconds; bins start at each window start.
    max_lag_ms : float, default: 10.0
        Largest lag searched, in milliseconds (a whole number of bins; 0 gives the Pearson correlation).
    binary : bool, default: True
        Count a bin with one or more spikes as 1 (``True``) or use spike counts (``False``).
    peak : "abs" | "max", default: "abs"
        Keep the lag of largest ``|rho|`` (signed value kept) or of largest ``rho``.
    verbose : bool, default: True
        Show a progress bar over windows.
    dtype : numpy dtype, default: np.float32
        Output type of the values.

    Returns
    -------
    matrices : np.ndarray, shape (n_windows, n_units, n_units)
        Symmetric peak values.
    extra : dict
        ``{"lags_ms": (n_windows, n_units, n_units) float32}``, antisymmetric: ``lags_ms[t, a, b] > 0`` when B
        follows A.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, sliding_windows
    >>> from spikeinterface_tavrnn.connectivity.crosscorr import crosscorr_matrices
    >>> a = np.arange(0.05, 1.95, 0.1)
    >>> spikes = SpikeTrains.from_arrays([a, a + 0.003], t_start=0.0, t_stop=2.0, sampling_frequency=1000.0)
    >>> values, extra = crosscorr_matrices(spikes, sliding_windows(0.0, 2.0, 2.0), bin_ms=1.0, max_lag_ms=5.0,
    ...                                    verbose=False)
    >>> float(values[0, 0, 1]), float(extra["lags_ms"][0, 0, 1])
    (1.0, 3.0)

    References
    ----------
    Eggermont, J. J. (2010). In: Analysis of Parallel Spike Trains, Springer, pp. 77-102.
    """
    from tqdm.auto import tqdm

    use_abs = _check_peak(peak)
    bin_ms = check_positive_ms("bin_ms", bin_ms)
    w0, w1 = window_samples(spikes, windows)
    width = check_bins_fit(bin_ms, spikes, w0, w1)
    max_lag = _max_lag_bins(max_lag_ms, bin_ms)
    samples, offsets = spikes.to_concatenated()
    n_windows, n_units = len(w0), spikes.num_units
    out = np.empty((n_windows, n_units, n_units), dtype=dtype)
    lags = np.empty((n_windows, n_units, n_units), dtype=np.int64)
    for t in tqdm(range(n_windows), desc="crosscorr", unit="window", disable=not verbose):
        n_bins = n_whole_bins(int(w1[t] - w0[t]), width)
        if max_lag >= n_bins:
            raise ValueError(f"max_lag_ms={max_lag_ms} is not shorter than window #{t}.")
        ev_off, ev_bins, ev_w = _window_events(samples, offsets, w0[t], w1[t], width, n_bins, bool(binary))
        order = stable_time_order(ev_bins)
        pos = np.empty(order.size, dtype=np.int64)
        pos[order] = np.arange(order.size)
        ev_units = np.repeat(np.arange(n_units, dtype=np.int64), np.diff(ev_off))
        _cch_peaks(
            ev_off, ev_bins, ev_w, pos, ev_bins[order], ev_units[order], ev_w[order], float(n_bins), max_lag,
            use_abs, out[t], lags[t],
        )  # fmt: skip
    return out, {"lags_ms": (lags * bin_ms).astype(np.float32)}


def crosscorr_matrices_elephant(
    spikes: SpikeTrains,
    windows: Windows,
    bin_ms: float = 1.0,
    max_lag_ms: float = 10.0,
    binary: bool = True,
    peak: str = "abs",
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """The same through :func:`elephant.spike_train_correlation.cross_correlation_histogram`, one call per pair.

    ``cross_correlation_histogram(b_a, b_b, window=[-K, K], binary=binary, cross_correlation_coefficient=True)``
    on ``elephant.conversion.BinnedSpikeTrain`` of each unit over ``[w0 / fs, w1 / fs]``; the peak is picked with
    the rule of :func:`crosscorr_matrices`, and units with a constant binned train get 0 (Elephant divides by 0).

    .. warning::
       Slow: 6-26 ms per pair and window (1 ms bins, 120 s, binning included; measured by
       ``benchmarks/bench_connectivity.py``), i.e. about 1-4 h per window for 1,024 units.
    """
    import neo
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import cross_correlation_histogram
    from tqdm.auto import tqdm

    use_abs = _check_peak(peak)
    bin_ms = check_positive_ms("bin_ms", bin_ms)
    fs = spikes.sampling_frequency
    w0, w1 = window_samples(spikes, windows)
    check_bins_fit(bin_ms, spikes, w0, w1)
    max_lag = _max_lag_bins(max_lag_ms, bin_ms)
    n_windows, n_units = len(w0), spikes.num_units
    out = np.zeros((n_windows, n_units, n_units), dtype=np.float64)
    lags = np.zeros((n_windows, n_units, n_units), dtype=np.float64)
    span = max(max_lag, 1)  # Elephant needs left < right: for max_lag 0 compute [-1, 1] and keep lag 0
    keep = lag_order(max_lag) + span
    for t in tqdm(range(n_windows), desc="crosscorr (elephant)", unit="window", disable=not verbose):
        t_start, t_stop = w0[t] / fs * pq.s, w1[t] / fs * pq.s
        binned, defined = [], []
        with quiet_elephant():
            for samples in spikes.spike_samples:
                lo, hi = np.searchsorted(samples, [w0[t], w1[t]], side="left")
                train = neo.SpikeTrain(samples[lo:hi] / fs * pq.s, t_start=t_start, t_stop=t_stop)
                b = BinnedSpikeTrain(train, bin_size=bin_ms * pq.ms, t_start=t_start, t_stop=t_stop)
                b = b.binarize() if binary else b
                data = b.sparse_matrix.data.astype(np.float64)
                defined.append(data.dot(data) - data.sum() ** 2 / b.n_bins > 0)
                binned.append(b)
            if max_lag >= binned[0].n_bins:
                raise ValueError(f"max_lag_ms={max_lag_ms} is not shorter than window #{t}.")
            for a in range(n_units):
                out[t, a, a] = 1.0 if defined[a] else 0.0
                for b in range(a + 1, n_units):
                    if not (defined[a] and defined[b]):
                        continue
                    cch, _ = cross_correlation_histogram(
                        binned[a], binned[b], window=[-span, span], binary=binary, cross_correlation_coefficient=True
                    )
                    rho = np.asarray(cch.magnitude).ravel()[keep]
                    score = np.abs(rho) if use_abs else rho
                    j = int(np.argmax(score))  # first maximum in tie-break order
                    out[t, a, b] = out[t, b, a] = rho[j]
                    lags[t, a, b] = lag_order(max_lag)[j] * bin_ms
                    lags[t, b, a] = -lags[t, a, b]
    return out.astype(dtype), {"lags_ms": lags.astype(np.float32)}
