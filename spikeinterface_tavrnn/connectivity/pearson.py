"""Pearson correlation of binned spike trains for all unit pairs in every window.

For units A and B binned into ``L`` bins of ``bin_ms`` (counts, or 0/1 when ``binary``), with
``S_A = sum_k x_A[k]``, ``Q_A = sum_k x_A[k]^2`` and ``G_AB = sum_k x_A[k] x_B[k]``::

    r_AB = (L G_AB - S_A S_B) / sqrt((L Q_A - S_A^2) (L Q_B - S_B^2))

which is :func:`numpy.corrcoef` of the binned matrix and
:func:`elephant.spike_train_correlation.correlation_coefficient`. The sums are integers, accumulated exactly, so
the only rounding is in the final division.

Defined behaviours
------------------
* Bins start at each window start; only whole bins are used (as ``elephant.conversion.BinnedSpikeTrain``): when
  the window is not a multiple of ``bin_ms`` the spikes of the partial last bin are not binned, with a warning.
* A unit whose binned train is constant in a window (no spike, or with ``binary=True`` a spike in every bin) has
  an undefined correlation: its row and column are 0, diagonal included (Elephant and numpy return NaN, Elephant
  with a warning). Every other unit has 1 on the diagonal.
* ``binary=True`` is the default here; Elephant's ``correlation_coefficient`` defaults to ``binary=False``.

Overlapping windows
-------------------
When the windows form a regular sliding grid (equal lengths, equal steps) whose block ``gcd(size, step)`` is a
whole number of bins, each block is binned and its sums ``S``, ``G`` (one float32 BLAS product, exact for integer
counts below 2**24) are computed once and shared by every window that contains it: with a 50 % overlap, half of
the products are saved. Other windows are computed one by one.
"""

from __future__ import annotations

import math

import numpy as np

from ..spiketrains import SpikeTrains
from ..windows import Windows
from .binning import bin_units, check_bins_fit, n_whole_bins, quiet_elephant, window_samples

__all__ = ["pearson_matrices", "pearson_matrices_elephant", "correlation_from_sums"]

_FLOAT32_EXACT = 2**24
_BLOCK_CACHE_BYTES = 512 * 2**20


def correlation_from_sums(gram: np.ndarray, sums: np.ndarray, n_bins: int, dtype=np.float32) -> np.ndarray:
    """Pearson matrix from ``G = X X^T`` (N, N), ``S = X 1`` (N,) and the number of bins ``L``.

    Units with zero variance get a row, column and diagonal of 0.
    """
    gram = np.asarray(gram, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    variance = n_bins * np.diag(gram) - sums * sums
    defined = variance > 0
    scale = np.zeros_like(variance)
    scale[defined] = 1.0 / np.sqrt(variance[defined])
    r = n_bins * gram
    r -= np.outer(sums, sums)
    r *= scale[:, None]
    r *= scale[None, :]
    np.clip(r, -1.0, 1.0, out=r)
    r[np.diag_indices_from(r)] = defined.astype(np.float64)
    return r.astype(dtype, copy=False)


def _regular_blocks(w0: np.ndarray, w1: np.ndarray, width: float, n_units: int) -> tuple[int, int, int] | None:
    """``(block, blocks_per_window, blocks_per_step)`` when windows tile a regular grid of whole-bin blocks."""
    if width != round(width):
        return None
    width = int(width)
    lengths = w1 - w0
    if np.any(lengths != lengths[0]):
        return None
    size = int(lengths[0])
    if len(w0) == 1:
        return None
    steps = np.diff(w0)
    if np.any(steps != steps[0]) or steps[0] <= 0:
        return None
    step = int(steps[0])
    if step >= size:  # no overlap: nothing to share
        return None
    block = math.gcd(size, step)
    if block % width or (size // block + 1) * n_units**2 * 8 > _BLOCK_CACHE_BYTES:
        return None
    return block, size // block, step // block


def _gram(x: np.ndarray) -> np.ndarray:
    # float32 BLAS is exact for integer entries while every partial sum stays below 2**24.
    if x.shape[1] * float(x.max(initial=0.0)) ** 2 < _FLOAT32_EXACT:
        return (x @ x.T).astype(np.float64)
    x64 = x.astype(np.float64)
    return x64 @ x64.T


def _binned(samples, offsets, n_units, origin, stop, width, n_bins, binary) -> np.ndarray:
    x = np.zeros((n_units, n_bins), dtype=np.float32)
    bin_units(samples, offsets, origin, stop, width, n_bins, binary, x)
    return x


def pearson_matrices(
    spikes: SpikeTrains,
    windows: Windows,
    bin_ms: float = 50.0,
    binary: bool = True,
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """Pearson correlation of binned spike trains, all pairs, every window.

    Parameters
    ----------
    spikes : SpikeTrains
        The sorted spikes.
    windows : Windows
        Time windows inside the recording (bounds rounded to the nearest sample; spikes in ``[w0, w1)``).
    bin_ms : float, default: 50.0
        Bin width in milliseconds; bins start at each window start.
    binary : bool, default: True
        Count a bin with one or more spikes as 1 (``True``) or use spike counts (``False``).
    verbose : bool, default: True
        Show a progress bar.
    dtype : numpy dtype, default: np.float32
        Output type.

    Returns
    -------
    matrices : np.ndarray, shape (n_windows, n_units, n_units)
        Symmetric correlation matrices; 0 for units with a constant binned train (diagonal included).
    extra : dict
        ``{"n_bins": np.ndarray}``, the number of bins of each window.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, sliding_windows
    >>> from spikeinterface_tavrnn.connectivity.pearson import pearson_matrices
    >>> a = np.array([0.01, 0.21, 0.41, 0.61])
    >>> spikes = SpikeTrains.from_arrays([a, a + 0.02, np.array([0.15])], t_start=0.0, t_stop=0.8,
    ...                                  sampling_frequency=1000.0)
    >>> r, _ = pearson_matrices(spikes, sliding_windows(0.0, 0.8, 0.8), bin_ms=100.0, verbose=False)
    >>> r[0].round(3)
    array([[ 1.   ,  1.   , -0.378],
           [ 1.   ,  1.   , -0.378],
           [-0.378, -0.378,  1.   ]], dtype=float32)

    References
    ----------
    Pearson, K. (1895). Proc. R. Soc. Lond. 58:240-242. For spike trains: Cohen, M. R. & Kohn, A. (2011).
    Measuring and interpreting neuronal correlations. Nat. Neurosci. 14:811-819.
    """
    from tqdm.auto import tqdm

    w0, w1 = window_samples(spikes, windows)
    width = check_bins_fit(bin_ms, spikes, w0, w1)
    samples, offsets = spikes.to_concatenated()
    n_windows, n_units = len(w0), spikes.num_units
    out = np.empty((n_windows, n_units, n_units), dtype=dtype)
    n_bins = np.array([n_whole_bins(int(length), width) for length in w1 - w0], dtype=np.int64)
    grid = _regular_blocks(w0, w1, width, n_units)
    with tqdm(total=n_windows, desc="pearson", unit="window", disable=not verbose) as bar:
        if grid is None:
            for t in range(n_windows):
                x = _binned(samples, offsets, n_units, w0[t], w1[t], width, int(n_bins[t]), bool(binary))
                out[t] = correlation_from_sums(_gram(x), x.sum(axis=1, dtype=np.float64), int(n_bins[t]), dtype)
                bar.update(1)
        else:
            block, per_window, per_step = grid
            bins_per_block = block // int(width)
            cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for t in range(n_windows):
                first = t * per_step
                for k in [k for k in cache if k < first]:
                    del cache[k]
                gram = np.zeros((n_units, n_units), dtype=np.float64)
                sums = np.zeros(n_units, dtype=np.float64)
                for k in range(first, first + per_window):
                    if k not in cache:
                        origin = w0[0] + k * block
                        x = _binned(samples, offsets, n_units, origin, origin + block, width, bins_per_block, binary)
                        cache[k] = (_gram(x), x.sum(axis=1, dtype=np.float64))
                    gram += cache[k][0]
                    sums += cache[k][1]
                out[t] = correlation_from_sums(gram, sums, int(n_bins[t]), dtype)
                bar.update(1)
    return out, {"n_bins": n_bins}


def pearson_matrices_elephant(
    spikes: SpikeTrains,
    windows: Windows,
    bin_ms: float = 50.0,
    binary: bool = True,
    verbose: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, dict]:
    """Pearson correlation through ``elephant.conversion.BinnedSpikeTrain`` and
    :func:`elephant.spike_train_correlation.correlation_coefficient`, one call per window.

    Each window's spikes (the same half-open selection as :func:`pearson_matrices`) become Neo spike trains on
    ``[w0 / fs, w1 / fs]``; Elephant's NaN rows of silent units are replaced by 0 and their diagonal by 0, as in
    :func:`pearson_matrices`. About 0.4 s per window for 1,024 units.
    """
    import neo
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    from tqdm.auto import tqdm

    fs = spikes.sampling_frequency
    w0, w1 = window_samples(spikes, windows)
    check_bins_fit(bin_ms, spikes, w0, w1)
    out = np.empty((len(w0), spikes.num_units, spikes.num_units), dtype=np.float64)
    n_bins = np.zeros(len(w0), dtype=np.int64)
    for t in tqdm(range(len(w0)), desc="pearson (elephant)", unit="window", disable=not verbose):
        t_start, t_stop = w0[t] / fs * pq.s, w1[t] / fs * pq.s
        trains = []
        for samples in spikes.spike_samples:
            lo, hi = np.searchsorted(samples, [w0[t], w1[t]], side="left")
            trains.append(neo.SpikeTrain(samples[lo:hi] / fs * pq.s, t_start=t_start, t_stop=t_stop))
        with quiet_elephant():  # empty-train and discarded-spike warnings: handled and documented here
            binned = BinnedSpikeTrain(trains, bin_size=bin_ms * pq.ms, t_start=t_start, t_stop=t_stop)
            r = np.atleast_2d(correlation_coefficient(binned, binary=binary))
        n_bins[t] = binned.n_bins
        undefined = ~np.isfinite(np.diag(r))
        r = np.nan_to_num(r, nan=0.0)
        r[undefined, :] = 0.0
        r[:, undefined] = 0.0
        out[t] = r
    return out.astype(dtype), {"n_bins": n_bins}
