"""Statistics shared by the evaluation tools: mean with a t interval, permutation p-values, paired tests of two
methods scored on the same splits, circular shifts."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class PairedTest:
    """Paired comparison of two methods scored on the same cross-validation splits (see :func:`paired_test`).

    Attributes
    ----------
    mean_difference : float
        Mean of ``a - b`` over the pairs.
    ci_low, ci_high : float
        Student-t interval of the mean difference (uncorrected, like ``t_p_value``).
    n_pairs : int
    t_p_value : float
        Two-sided paired t-test treating the pairs as independent (:func:`scipy.stats.ttest_rel`).
    wilcoxon_p_value : float
        Two-sided Wilcoxon signed-rank test of the pairs (:func:`scipy.stats.wilcoxon`, zero differences dropped);
        NaN when every difference is zero.
    corrected_t_p_value : float
        Two-sided corrected resampled t-test (Nadeau & Bengio 2003; for repeated k-fold, Bouckaert & Frank 2004):
        the variance of the mean difference is ``(1 / n_pairs + n_test / n_train) * s**2`` instead of
        ``s**2 / n_pairs``, which accounts for the overlap of training sets between folds. NaN when no
        ``test_train_ratio`` was given.
    test_train_ratio : float or None
    """

    mean_difference: float
    ci_low: float
    ci_high: float
    n_pairs: int
    t_p_value: float
    wilcoxon_p_value: float
    corrected_t_p_value: float
    test_train_ratio: float | None


def paired_test(
    a: Sequence[float], b: Sequence[float], test_train_ratio: float | None = None, confidence: float = 0.95
) -> PairedTest:
    """Is method ``a`` better than method ``b`` on the same folds (and seeds)? Paired tests of ``a - b``.

    Scores of cross-validation folds are not independent: every pair of folds shares most of its training data, so the
    plain paired t-test (and the Wilcoxon test) over fold x seed pairs is too liberal. The corrected resampled t-test
    inflates the variance by the test / train size ratio to account for that and is the one to quote when
    ``test_train_ratio`` is known; the other two are given for reference.

    Parameters
    ----------
    a, b : sequence of float
        Scores of the two methods, paired by position (e.g. per fold and seed, flattened in the same order).
    test_train_ratio : float or None, default: None
        Mean number of test windows over mean number of training windows of a fold (about ``1 / (k - 1)`` for k-fold).
    confidence : float, default: 0.95

    Returns
    -------
    PairedTest

    Examples
    --------
    >>> res = paired_test([0.9, 0.8, 0.85, 0.95, 0.9], [0.8, 0.8, 0.8, 0.85, 0.8], test_train_ratio=0.25)
    >>> round(res.mean_difference, 3), round(res.t_p_value, 3), round(res.corrected_t_p_value, 3)
    (0.07, 0.025, 0.08)
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same number of paired scores, got {a.size} and {b.size}.")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = d.size
    mean, low, high = mean_ci(d, confidence)
    nan = float("nan")
    if n < 2:
        return PairedTest(mean, low, high, n, nan, nan, nan, test_train_ratio)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        t_p = 1.0 if mean == 0.0 else 0.0
        corrected = t_p if test_train_ratio is not None else nan
    else:
        t_p = float(2.0 * scipy.stats.t.sf(abs(mean) / (sd / np.sqrt(n)), df=n - 1))
        corrected = nan
        if test_train_ratio is not None:
            if test_train_ratio <= 0:
                raise ValueError(f"test_train_ratio must be > 0, got {test_train_ratio}.")
            t_corr = mean / (sd * np.sqrt(1.0 / n + float(test_train_ratio)))
            corrected = float(2.0 * scipy.stats.t.sf(abs(t_corr), df=n - 1))
    if np.any(d != 0):
        wilcoxon = float(scipy.stats.wilcoxon(d[d != 0]).pvalue)
    else:
        wilcoxon = nan
    return PairedTest(mean, low, high, n, t_p, wilcoxon, corrected, test_train_ratio)


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


def mcnemar_p_value(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value of two classifiers' predictions of the same items (1.0 when no item is
    decided differently): a binomial test, p = 1/2, of the items only ``a`` gets right among those only one does."""
    right_a, right_b = np.asarray(pred_a) == np.asarray(y_true), np.asarray(pred_b) == np.asarray(y_true)
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    return 1.0 if only_a + only_b == 0 else float(scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
