"""Compiled (numba) CPU kernel for the dense reconstruction term ``sum_ij softplus(z_i . z_j)`` and its gradient.

At DishBrain size (900 nodes, 19 windows, z_dim 8) the term has 15 million logits per epoch. The PyTorch path
(:class:`.losses._PairwiseSoftplusSum`) computes them block by block with batched products and several elementwise
passes over (T, B, B) buffers. Here one pass over each row block does everything while the row block's logits are in
the first-level cache:

* rows are taken four at a time and only columns ``j >= i0`` (the first row of the block) are visited, so each
  unordered pair is computed once (the logits are symmetric): off-diagonal pairs count twice, and the 4 x 4 corner,
  which holds both orientations of its pairs, once;
* with ``e = exp(-|x|)``: ``softplus(x) = max(x, 0) + log(1 + e)`` and ``sigmoid(x) = (1 if x >= 0 else e) / (1 + e)``.
  ``1 + e`` lies in (1, 2], so the logarithms are taken of products: 64 consecutive terms multiplied in float32
  (at most 2^64), those products in float64, one scalar logarithm per row;
* the gradient ``d/dz_i = 2 sum_j sigmoid(x_ij) z_j`` is accumulated in the same pass, for the block's rows (a
  reduction) and, by symmetry, for the columns (a scatter into the transposed gradient).

The rows are split between threads at points that give each the same work; every thread writes its own gradient
buffer, summed at the end. The threads are PyTorch's own OpenMP workers where :mod:`.omp_team` found them, else
``nogil`` kernels on a small thread pool. Windows can also be handed over in ranges as they become final
(:class:`PairwiseSum`), a range running on a pool thread while the caller goes on (used where the recurrence runs on
the calling thread alone).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import cfunc, njit, types

from . import omp_team
from .cpu_kernels import _FASTMATH, _exp, _log1p
from .omp_team import f32, f64, i64, table, team_position, value

__all__ = ["PairwiseSum", "pairwise_softplus_sum_grad", "row_splits"]

_ROWS = 4  # rows per block: each column value is loaded once for four rows
_GROUP = 64  # terms per float32 product: 64 values of 1 + e <= 2 stay below 2^64
# Fixed cost of a row (its block's setup, corner and short loops) in columns' worth of sweep, for balancing threads
_ROW_OVERHEAD = 64.0

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _softplus_sigmoid(xrow, grow, lo, hi, weight):
    """``sum_{lo <= j < hi} softplus(xrow[j])``; writes ``grow[j] = weight * sigmoid(xrow[j])``."""
    # Every loop indexes a slice from 0 (range(n)): numba must otherwise allow for negative indices (wrapping
    # around), and inside the large kernel those per-element checks stopped LLVM from vectorising the loads (2x).
    xs = xrow[lo:hi]
    gs = grow[lo:hi]
    relu = np.float32(0.0)
    logs = 0.0
    product = 1.0  # float64: a row's products stay far below its range, so one logarithm per row
    for start in range(0, xs.size, _GROUP):
        xc = xs[start : start + _GROUP]
        gc = gs[start : start + _GROUP]
        group = np.float32(1.0)
        for j in range(xc.size):
            xv = xc[j]
            ev = _exp(-abs(xv))
            relu += max(xv, np.float32(0.0))
            one_e = np.float32(1.0) + ev
            group *= one_e
            gc[j] = weight * (np.float32(1.0) if xv >= np.float32(0.0) else ev) / one_e
        product *= group
        if product > 1e250:
            logs += math.log(product)
            product = 1.0
    return relu + logs + math.log(product)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _corner(x, g, i0, weights, xs, gs):
    """The 4 x 4 block of logits ``x[q, i0 + c]`` as :func:`_softplus_sigmoid` with a weight per entry
    (``weights`` (16,)): sets ``g[q, i0 + c]`` and returns the weighted sum. One vectorised loop over the 16
    (``xs``, ``gs``: (16,) scratch)."""
    for q in range(_ROWS):
        for c in range(_ROWS):
            xs[q * _ROWS + c] = x[q, i0 + c]
    total = np.float32(0.0)
    for e in range(_ROWS * _ROWS):
        xv = xs[e]
        ev = _exp(-abs(xv))
        w = weights[e]
        total += w * (max(xv, np.float32(0.0)) + _log1p(ev))
        gs[e] = w * (np.float32(1.0) if xv >= np.float32(0.0) else ev) / (np.float32(1.0) + ev)
    for q in range(_ROWS):
        for c in range(_ROWS):
            g[q, i0 + c] = gs[q * _ROWS + c]
    return total


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def pairwise_rows(zt, n, row_lo, row_hi, totals, grad_t, x, g):
    """Rows ``row_lo <= i < row_hi`` (``row_lo`` a multiple of 4) of every window: adds the softplus of their pairs
    ``(i, j >= i)`` to ``totals`` (T,) float64 and writes their gradient into ``grad_t`` (T, k, N8) float32 (zeroed
    here). ``zt`` is (T, k, N8) float32: the ``n`` nodes, then zeros up to N8 (a multiple of 8, so that every sweep
    has a multiple of 4 columns); ``x`` and ``g`` are (4, N8) scratch.

    A block of four rows ``i0 <= i < i0 + 4`` sweeps the columns ``i0 <= j < N8``. The zero columns beyond ``n`` have
    ``x = 0``: their softplus, ``log 2`` each, is subtracted, and what they add to the gradient lands in the padding.
    """
    n_windows, k, n8 = zt.shape
    f32 = np.float32
    padding = 2.0 * (n8 - n) * math.log(2.0)
    # Weights of the 4 x 4 corner for 1-4 live rows: both orientations of a pair among live rows are computed, so
    # each counts once; a pair of a live row and a column beyond the range (another part's row) counts twice.
    corner_weights = np.zeros((_ROWS + 1, _ROWS * _ROWS), dtype=np.float32)
    for n_live in range(1, _ROWS + 1):
        for q in range(n_live):
            for c in range(_ROWS):
                corner_weights[n_live, q * _ROWS + c] = 1.0 if c < n_live else 2.0
    zi = np.zeros((_ROWS, k), dtype=np.float32)
    corner_x = np.empty(_ROWS * _ROWS, dtype=np.float32)
    corner_g = np.empty(_ROWS * _ROWS, dtype=np.float32)
    for t in range(n_windows):
        z = zt[t]
        gt = grad_t[t]
        gt[:, :] = 0.0
        total = 0.0
        for i0 in range(row_lo, row_hi, _ROWS):
            m = n8 - i0  # columns j = i0 + jj, 0 <= jj < m
            n_live = min(_ROWS, row_hi - i0)
            for q in range(_ROWS):
                for c in range(k):
                    zi[q, c] = z[c, i0 + q] if q < n_live else f32(0.0)
            # Scratch rows are indexed like the columns (x[q, j], j >= i0): with the sweeps' start moving along the
            # rows from block to block, the elementwise pass ran 1.7x faster than with every sweep starting at x[q, 0].
            x0, x1, x2, x3 = x[0][i0:], x[1][i0:], x[2][i0:], x[3][i0:]
            g0, g1, g2, g3 = g[0][i0:], g[1][i0:], g[2][i0:], g[3][i0:]
            # logits of the block's rows: x[q, i0 + jj] = z_{i0+q} . z_{i0+jj}, two latent dimensions per pass
            x[:, i0:] = 0.0
            for c in range(0, k - 1, 2):
                ra = z[c, i0:]
                rb = z[c + 1, i0:]
                a0, a1, a2, a3 = zi[0, c], zi[1, c], zi[2, c], zi[3, c]
                b0, b1, b2, b3 = zi[0, c + 1], zi[1, c + 1], zi[2, c + 1], zi[3, c + 1]
                for jj in range(m):
                    u = ra[jj]
                    v = rb[jj]
                    x0[jj] += a0 * u + b0 * v
                    x1[jj] += a1 * u + b1 * v
                    x2[jj] += a2 * u + b2 * v
                    x3[jj] += a3 * u + b3 * v
            if k % 2:
                ra = z[k - 1, i0:]
                a0, a1, a2, a3 = zi[0, k - 1], zi[1, k - 1], zi[2, k - 1], zi[3, k - 1]
                for jj in range(m):
                    u = ra[jj]
                    x0[jj] += a0 * u
                    x1[jj] += a1 * u
                    x2[jj] += a2 * u
                    x3[jj] += a3 * u
            # softplus and sigmoid: the corner, then every column right of it (counted twice)
            total += _corner(x, g, i0, corner_weights[n_live], corner_x, corner_g)
            for q in range(_ROWS):
                if q < n_live:
                    total += 2.0 * _softplus_sigmoid(x[q][i0:], g[q][i0:], _ROWS, m, f32(2.0)) - padding
                else:
                    g[q, i0:] = 0.0
            # gradient: rows of the block (reduction) and, by symmetry, their columns (scatter)
            for c in range(k):
                row = z[c, i0:]
                grow = gt[c, i0:]
                a0, a1, a2, a3 = zi[0, c], zi[1, c], zi[2, c], zi[3, c]
                s0 = f32(0.0)
                s1 = f32(0.0)
                s2 = f32(0.0)
                s3 = f32(0.0)
                for jj in range(m):
                    rv = row[jj]
                    v0, v1, v2, v3 = g0[jj], g1[jj], g2[jj], g3[jj]
                    s0 += v0 * rv
                    s1 += v1 * rv
                    s2 += v2 * rv
                    s3 += v3 * rv
                    grow[jj] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                sums = (s0, s1, s2, s3)
                for q in range(n_live):
                    grow[q] += sums[q]
        totals[t] += total


_TEAM_LAYOUT = omp_team.Layout(["f4:3", "int", "i8:1", "f8:2", "f4:4"])


@cfunc(types.void(types.voidptr), cache=True)
def _team_entry(data):
    """:func:`pairwise_rows` for one thread of a team (:mod:`.omp_team`): the parts ``thread, thread + n_threads,
    ...`` of the row bounds. Table: ``zt`` (T, k, N8), ``n``, ``bounds`` (P + 1,), ``totals`` (P, T) float64,
    ``grad_t`` (P, T, k, N8)."""
    tb = table(data)
    thread, n_threads, _ = team_position(tb)
    zt, n, bounds, totals, grads = f32(tb, 0, 3), value(tb, 1), i64(tb, 2, 1), f64(tb, 3, 2), f32(tb, 4, 4)
    x = np.zeros((_ROWS, zt.shape[2]), dtype=np.float32)
    g = np.zeros((_ROWS, zt.shape[2]), dtype=np.float32)
    for part in range(thread, bounds.size - 1, n_threads):
        pairwise_rows(zt, n, bounds[part], bounds[part + 1], totals[part], grads[part], x, g)


def row_splits(n_nodes: int, n_parts: int, row_overhead: float = _ROW_OVERHEAD) -> list[int]:
    """Row boundaries ``0 = r_0 < ... < r_p = n_nodes`` (multiples of the block size) giving each part about the
    same work: row ``i`` costs its ``n_nodes - i`` columns plus ``row_overhead`` columns' worth of fixed cost."""
    n_parts = max(1, min(-(-int(n_nodes) // _ROWS), int(n_parts)))
    cost = (n_nodes - np.arange(n_nodes, dtype=np.float64)) + row_overhead
    cumulative = np.cumsum(cost)
    bounds = [0]
    for p in range(1, n_parts):
        r = int(np.searchsorted(cumulative, cumulative[-1] * p / n_parts))
        r = int(round(r / _ROWS)) * _ROWS
        if bounds[-1] < r < n_nodes:
            bounds.append(r)
    bounds.append(int(n_nodes))
    return bounds


def _pool(n_workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < n_workers:
        if _POOL is not None:
            _POOL.shutdown(wait=True)
        _POOL = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="tavrnn-pairwise")
        _POOL_SIZE = n_workers
    return _POOL


class PairwiseSum:
    """``sum_ij softplus(z_i . z_j)`` per window and its gradient, for a (T, N, k) float32 ``z`` whose windows may be
    handed over in ranges as they become available (:meth:`start`), then completed by :meth:`finish`.

    A started range runs on one pool thread while the caller goes on (with ``n_threads >= 2``); :meth:`finish` splits
    the rows of the windows not started yet between the calling thread and the pool, waits for everything and
    returns ``(totals (T,) float64, grad (T, N, k) float32)``. A window with a non-finite value gets NaN. Its
    arrays are kept between uses by the calling thread, so a thread runs one ``PairwiseSum`` at a time.
    """

    def __init__(self, shape: tuple, n_threads: int = 1):
        self.n_windows, self.n, self.k = (int(x) for x in shape)
        self.n_threads = max(1, int(n_threads))
        self.bounds = row_splits(self.n, self.n_threads)
        self.parts = len(self.bounds) - 1
        self.n8 = -(-self.n // 8) * 8
        self.zt, self.grads = _buffers(self.n_windows, self.n8, self.k, self.parts)
        self.totals = np.zeros((self.parts, self.n_windows), dtype=np.float64)
        self.bad = np.zeros(self.n_windows, dtype=bool)
        self.loaded = 0  # windows [0, loaded) are copied into zt
        self.started = 0  # windows [0, started) run (or ran) on the pool
        self.pending = []

    def _load(self, z: np.ndarray, t0: int, t1: int) -> None:
        block = np.asarray(z[t0:t1], dtype=np.float32)
        bad = ~np.isfinite(block).all(axis=(1, 2))
        self.zt[t0:t1, :, : self.n] = block.transpose(0, 2, 1)  # the padding columns stay zero
        if bad.any():  # the kernel's max() and clamps would not carry NaN through
            self.bad[t0:t1] |= bad
            self.zt[t0:t1][bad] = 0.0
        self.loaded = t1

    def _run(self, part: int, t0: int, t1: int, row_lo: int, row_hi: int) -> None:
        scratch = (_zeros((_ROWS, self.n8)), _zeros((_ROWS, self.n8)))  # one per task: tasks overlap
        pairwise_rows(
            self.zt[t0:t1], self.n, row_lo, row_hi, self.totals[part, t0:t1], self.grads[part, t0:t1], *scratch
        )

    def start(self, z: np.ndarray, t0: int, t1: int) -> None:
        """Windows ``t0 <= t < t1`` of ``z`` are final (``t0`` is where the previous range stopped): begin them on a
        pool thread. With one thread they wait for :meth:`finish`."""
        if t0 != self.loaded:
            raise ValueError(f"windows must be handed over in order: expected {self.loaded}, got {t0}.")
        self._load(z, t0, t1)
        if self.parts > 1 and t1 > t0:
            self.pending.append(_pool(self.parts - 1).submit(self._run, self.parts - 1, t0, t1, 0, self.n))
            self.started = t1

    def finish(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the windows not started yet and return ``(totals, grad)``."""
        if self.loaded < self.n_windows:
            self._load(z, self.loaded, self.n_windows)
        t0, t1 = self.started, self.n_windows
        team = omp_team.team_size(limit=self.parts) if t0 == 0 else 1
        if t1 > t0 and team > 1:  # on PyTorch's own threads (see omp_team): they may still be busy-waiting
            bounds = np.asarray(self.bounds, dtype=np.int64)
            arrays = (self.zt, self.n, bounds, self.totals, self.grads)
            omp_team.run(_team_entry, omp_team.pack(_TEAM_LAYOUT, arrays), team)
        elif t1 > t0:
            # split rows: part 0 on this thread, the others on the pool (after any started range)
            futures = [
                _pool(self.parts - 1).submit(self._run, p, t0, t1, self.bounds[p], self.bounds[p + 1])
                for p in range(1, self.parts)
            ]
            self._run(0, t0, t1, self.bounds[0], self.bounds[1])
            self.pending.extend(futures)
        for future in self.pending:
            future.result()
        # started ranges wrote part parts-1 alone; the split windows' other parts are added to it
        grad_t = self.grads[self.parts - 1]
        if t1 > t0 and self.parts > 1:
            grad_t[t0:t1] += self.grads[: self.parts - 1, t0:t1].sum(axis=0)
        totals = self.totals.sum(axis=0)
        grad = np.ascontiguousarray(grad_t[:, :, : self.n].transpose(0, 2, 1))
        if self.bad.any():
            totals[self.bad] = np.nan
            grad[self.bad] = np.nan
        return totals, grad


def pairwise_softplus_sum_grad(z: np.ndarray, n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``sum_ij softplus(z_i . z_j)`` per window and its gradient with respect to ``z``.

    Parameters
    ----------
    z : ndarray (T, N, k) float32
    n_threads : int, default: 1
        Threads that share the rows (the calling thread and ``n_threads - 1`` pool threads).

    Returns
    -------
    totals : ndarray (T,) float64
        NaN for a window with a non-finite value.
    grad : ndarray (T, N, k) float32
    """
    z = np.asarray(z, dtype=np.float32)
    return PairwiseSum(z.shape, n_threads).finish(z)


_CACHE = threading.local()


def _buffers(n_windows: int, n8: int, k: int, parts: int) -> tuple:
    """The kernel's arrays for this shape, kept between calls (per calling thread): fresh multi-MB arrays cost page
    faults at every epoch. Returns ``zt`` (T, k, N8) (zero padding) and the per-part gradients (P, T, k, N8)."""
    key = (n_windows, n8, k, parts)
    cached = getattr(_CACHE, "buffers", None)
    if cached is None or cached[0] != key:
        cached = (key, _zeros((n_windows, k, n8)), _zeros((parts, n_windows, k, n8)))
        _CACHE.buffers = cached
    return cached[1:]


def _zeros(shape: tuple) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)
