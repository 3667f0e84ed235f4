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
whole number of bins, each block is binned and its sums ``S``, ``G`` are computed once and shared by every window
that contains it: with a 50 % overlap, half of the products are saved. Other windows are computed one by one.
``G`` is exact: for binary trains each unit's bins are a bit set and ``G_AB`` is a popcount of ``A & B`` (64 bins
per instruction, about 4x faster than a float32 matrix product here); for counts it is a float32 BLAS product,
exact while every sum stays below 2**24 (float64 otherwise). These kernels take a few milliseconds each and are
serial on purpose: on a busy 2-core machine numba's parallel regions made them 3-5x slower, not faster.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from ..spiketrains import SpikeTrains
from ..windows import Windows
from .binning import (
    _bin_index,
    bin_units,
    check_bins_fit,
    n_whole_bins,
    quiet_elephant,
    regular_grid,
    window_samples,
)

__all__ = ["pearson_matrices", "pearson_matrices_elephant"]

_FLOAT32_EXACT = 2**24
_BLOCK_CACHE_BYTES = 512 * 2**20


@intrinsic
def _popcount64(typingctx, x):
    """The CPU's population count of a uint64 (LLVM ``ctpop``)."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(cache=True, nogil=True)
def _bin_units_bits(unit_samples, offsets, origin, stop, width, n_bins, bits):
    """Binary binning as bit sets: bit ``k`` of row ``a`` is set when unit ``a`` fires in bin ``k``."""
    n_units = offsets.size - 1
    for a in range(n_units):
        train = unit_samples[offsets[a] : offsets[a + 1]]
        lo = np.searchsorted(train, origin)
        hi = np.searchsorted(train, stop)
        for i in range(lo, hi):
            b = _bin_index(train[i], origin, width)
            if b < n_bins:
                bits[a, b >> 6] |= np.uint64(1) << np.uint64(b & 63)


@njit(cache=True, nogil=True)
def _gram_bits_upper(bits, out):
    """Upper triangle of ``X X^T`` for binary ``X`` stored as bit sets: one popcount per 64 bins and pair."""
    n, n_words = bits.shape
    for a in range(n):
        for b in range(a, n):
            count = np.uint64(0)
            for k in range(n_words):
                count += _popcount64(bits[a, k] & bits[b, k])
            out[a, b] = count


_TILE = 64


@njit(cache=True, nogil=True)
def _pearson_finalize(grams, sums, n_bins, out):
    """``out`` = Pearson matrix of the bins summed over the blocks ``grams`` (B, N, N; upper triangles read) and
    ``sums`` (B, N). Units with zero variance get 0 (row, column and diagonal)."""
    n_blocks, n = sums.shape
    total = np.zeros(n)
    scale = np.zeros(n)
    for a in range(n):
        gaa = 0.0
        for j in range(n_blocks):
            total[a] += sums[j, a]
            gaa += grams[j, a, a]
        variance = n_bins * gaa - total[a] * total[a]
        if variance > 0:
            scale[a] = 1.0 / np.sqrt(variance)
    n_tiles = (n + _TILE - 1) // _TILE
    for ti in range(n_tiles):  # tiles keep the mirrored (column) writes in cache
        a0 = ti * _TILE
        a1 = min(n, a0 + _TILE)
        for a in range(a0, a1):
            out[a, a] = 1.0 if scale[a] > 0 else 0.0
        for tj in range(ti, n_tiles):
            b0 = tj * _TILE
            b1 = min(n, b0 + _TILE)
            for a in range(a0, a1):
                for b in range(max(b0, a + 1), b1):
                    value = 0.0
                    if scale[a] > 0 and scale[b] > 0:
                        gab = 0.0
                        for j in range(n_blocks):
                            gab += grams[j, a, b]
                        value = (n_bins * gab - total[a] * total[b]) * scale[a] * scale[b]
                        value = min(1.0, max(-1.0, value))
                    out[a, b] = value
                    out[b, a] = value


def _regular_blocks(w0: np.ndarray, w1: np.ndarray, width: float, n_units: int) -> tuple[int, int, int] | None:
    """The shared block grid (see :func:`.binning.regular_grid`) when blocks are whole bins and the cache fits."""
    grid = regular_grid(w0, w1)
    if grid is None or width != round(width):
        return None
    block, per_window, _ = grid
    if block % int(width) or (per_window + 1) * n_units**2 * 8 > _BLOCK_CACHE_BYTES:
        return None
    return grid


def _block_stats(samples, offsets, n_units, origin, stop, width, n_bins, binary, gram) -> np.ndarray:
    """Write ``X X^T`` of the bins of ``[origin, stop)`` into ``gram`` (upper triangle exact); return ``X 1``."""
    if binary:
        bits = np.zeros((n_units, (n_bins + 63) // 64), dtype=np.uint64)
        _bin_units_bits(samples, offsets, origin, stop, width, n_bins, bits)
        _gram_bits_upper(bits, gram)
        return np.diag(gram).copy()  # binary: x^2 = x
    x = np.zeros((n_units, n_bins), dtype=np.float32)
    bin_units(samples, offsets, origin, stop, width, n_bins, False, x)
    # float32 BLAS is exact for integer entries while every partial sum stays below 2**24.
    if n_bins * float(x.max(initial=0.0)) ** 2 < _FLOAT32_EXACT:
        gram[:] = x @ x.T
    else:
        x64 = x.astype(np.float64)
        gram[:] = x64 @ x64.T
    return x.sum(axis=1, dtype=np.float64)


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
    binary = bool(binary)
    samples, offsets = spikes.to_concatenated()
    n_windows, n_units = len(w0), spikes.num_units
    out = np.empty((n_windows, n_units, n_units), dtype=dtype)
    n_bins = np.array([n_whole_bins(int(length), width) for length in w1 - w0], dtype=np.int64)
    grid = _regular_blocks(w0, w1, width, n_units)
    with tqdm(total=n_windows, desc="pearson", unit="window", disable=not verbose) as bar:
        if grid is None:
            gram = np.empty((1, n_units, n_units), dtype=np.float64)
            sums = np.empty((1, n_units), dtype=np.float64)
            for t in range(n_windows):
                sums[0] = _block_stats(samples, offsets, n_units, w0[t], w1[t], width, int(n_bins[t]), binary, gram[0])
                _pearson_finalize(gram, sums, float(n_bins[t]), out[t])
                bar.update(1)
        else:
            block, per_window, per_step = grid
            bins_per_block = block // int(width)
            # A ring of the last `per_window` blocks: when block k is done, slots hold blocks k - per_window + 1..k.
            grams = np.empty((per_window, n_units, n_units), dtype=np.float64)
            sums = np.empty((per_window, n_units), dtype=np.float64)
            next_block = 0
            for t in range(n_windows):
                while next_block < t * per_step + per_window:
                    origin = w0[0] + next_block * block
                    slot = next_block % per_window
                    sums[slot] = _block_stats(
                        samples, offsets, n_units, origin, origin + block, width, bins_per_block, binary, grams[slot]
                    )
                    next_block += 1
                _pearson_finalize(grams, sums, float(n_bins[t]), out[t])
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
    :func:`pearson_matrices`. About 0.4-6 s per 120 s window for 1,024 units (50 ms bins; slower on a busy machine).
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
