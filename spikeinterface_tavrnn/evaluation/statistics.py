"""Statistics shared by the evaluation tools: mean with a t interval, permutation p-values, circular shifts."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import scipy.stats


def _progress(iterable: Iterable, verbose: bool, desc: str, total: int | None = None) -> Iterable:
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total)


# ============================================================================================== statistics helpers
def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of repeated scores (one per seed).

    The interval is ``mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (ddof=1): the interval for the expected score over seeds, assuming roughly normal seed-to-seed variation. With a
    handful of seeds a bootstrap interval would be too narrow, the t interval is the honest small-sample choice. NaN
    values are dropped; with fewer than two values the bounds are NaN; with zero spread the interval collapses on the
    mean (a deterministic method). Bounds are not clipped to a score's range: with two or three seeds a wide interval
    reaching past 0 or 1 is the honest answer.

    Parameters
    ----------
    values : sequence of float
    confidence : float, default: 0.95

    Returns
    -------
    mean, low, high : float

    Examples
    --------
    >>> m, lo, hi = mean_ci([0.8, 0.85, 0.9])
    >>> round(m, 3), round(lo, 3), round(hi, 3)
    (0.85, 0.726, 0.974)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    sem = float(x.std(ddof=1) / np.sqrt(x.size))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2.0, df=x.size - 1) * sem)
    return mean, mean - half, mean + half


def permutation_p_value(observed: float, null: Sequence[float], alternative: str = "greater") -> float:
    """Permutation p-value ``(k + 1) / (n + 1)``.

    Parameters
    ----------
    observed : float
        The statistic on the real data.
    null : sequence of float
        The statistic on n permuted data sets (NaN entries are ignored).
    alternative : {"greater", "less", "two-sided"}, default: "greater"
        k counts null values ``>= observed``, ``<= observed``, or ``|null| >= |observed|``.

    Returns
    -------
    float
        NaN when ``observed`` is NaN or no null value is finite.

    Examples
    --------
    >>> permutation_p_value(0.9, [0.5, 0.6, 0.95, 0.4])
    0.4
    """
    null = np.asarray(null, dtype=np.float64).ravel()
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    tol = 1e-12 * max(1.0, abs(observed))  # ties (common with discrete scores) count as extreme
    if alternative == "greater":
        k = np.sum(null >= observed - tol)
    elif alternative == "less":
        k = np.sum(null <= observed + tol)
    elif alternative == "two-sided":
        k = np.sum(np.abs(null) >= abs(observed) - tol)
    else:
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}.")
    return float((k + 1) / (null.size + 1))


def _circular_shifts(n: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Non-zero circular shifts: all ``n - 1`` of them when ``n_permutations >= n - 1``, else a random subset."""
    if n < 2 or n_permutations <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_permutations >= n - 1:
        return np.arange(1, n)
    return rng.choice(np.arange(1, n), size=n_permutations, replace=False)


def _encode(labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.ravel(), classes
