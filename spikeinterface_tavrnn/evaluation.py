"""Honest tests of what embeddings of a dynamic functional network say about behaviour and anatomy.

The functions work on numpy arrays (embeddings ``(T, N, d)``, window vectors ``(T, d)``) and labels, so they apply
equally to TAVRNN embeddings and to the baselines of :mod:`spikeinterface_tavrnn.baselines`, which
:func:`compare_methods` runs through the same code path.

Every score comes with a permutation control: the same procedure is re-run on shuffled labels, which gives a null
distribution and the p-value ``(k + 1) / (n + 1)`` (k null scores at least as extreme as the observed one out of n;
Phipson & Smyth 2010), never 0.

* :func:`classify_windows`: window labels from window vectors, logistic regression, blocked / grouped
  cross-validation with a gap so overlapping windows never sit on both sides of a split.
* :func:`cluster_nodes`: k-means on each window's node embeddings against known node groups (region, well).
* :func:`region_alignment`: distance between two node groups' embedding distributions per window, and its
  correlation with behaviour (circular-shift null, time-in-session control).
* :func:`link_scores`, :func:`compare_methods`: repeated runs over seeds, mean and 95 % interval per score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import scipy.stats
from scipy.spatial.distance import cdist

__all__ = [
    "ClassificationResult",
    "ClusteringResult",
    "AlignmentResult",
    "ScoreTable",
    "mean_ci",
    "permutation_p_value",
    "window_vectors",
    "window_splits",
    "classify_windows",
    "cluster_nodes",
    "energy_distance",
    "centroid_cosine_distance",
    "region_alignment",
    "link_scores",
    "compare_methods",
]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1")
CLUSTERING_METRICS = ("ari", "nmi", "silhouette")


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


# ============================================================================================== window classification
def window_vectors(embeddings: np.ndarray, readout: str = "mean") -> np.ndarray:
    """One vector per window from node embeddings.

    Readouts pool over the N real nodes of each window only (a model's history / summary node is never part of
    ``embeddings``), so each vector is a graph-level readout of that window's embedding.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d) or (T, d)
        Node embeddings; (T, d) input is returned unchanged (already one vector per window).
    readout : {"mean", "mean+std", "max", "flat"}, default: "mean"
        Mean over nodes (d), mean and standard deviation concatenated (2d), element-wise maximum (d), or all node
        embeddings concatenated (N d; valid when the nodes are the same units in every window, and it keeps which
        unit is where: on the rat linear track it classified visits far better than the mean, see the results).

    Returns
    -------
    np.ndarray, shape (T, d), (T, 2d) or (T, N d)

    Examples
    --------
    >>> import numpy as np
    >>> window_vectors(np.ones((4, 10, 3)), "mean+std").shape
    (4, 6)
    """
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim == 2:
        return z
    if z.ndim != 3:
        raise ValueError(f"embeddings must have shape (T, N, d) or (T, d), got {z.shape}.")
    if readout == "mean":
        return z.mean(axis=1)
    if readout == "mean+std":
        return np.concatenate([z.mean(axis=1), z.std(axis=1)], axis=1)
    if readout == "max":
        return z.max(axis=1)
    if readout == "flat":
        return z.reshape(z.shape[0], -1)
    raise ValueError(f"readout must be 'mean', 'mean+std', 'max' or 'flat', got {readout!r}.")


def _gap_from_windows(windows: Any) -> int:
    """Largest number of later windows (in time order) that overlap one window."""
    starts = np.asarray(windows.starts, dtype=np.float64)
    stops = np.asarray(windows.stops, dtype=np.float64)
    order = np.argsort(starts, kind="stable")
    starts, stops = starts[order], stops[order]
    # Window j > i overlaps window i iff starts[j] < stops[i]; starts are sorted so count with searchsorted.
    later_overlapping = np.searchsorted(starts, stops, side="left") - np.arange(starts.size) - 1
    return int(max(0, later_overlapping.max(initial=0)))


def window_splits(
    n_windows: int,
    n_splits: int = 5,
    gap: int = 1,
    groups: Sequence | None = None,
    labels: Sequence | None = None,
    order: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation splits of time-ordered windows that never train on neighbours of a test window.

    Without ``groups``: ``n_splits`` contiguous blocks in time order, each the test set once (blocked k-fold, no
    shuffling). With ``groups`` (trial, session, recording): :class:`sklearn.model_selection.StratifiedGroupKFold`
    (``shuffle=False``), so a group is never split. In both cases every training window within ``gap`` positions (in
    time order) of any test window is dropped: with sliding windows that overlap, a window and its neighbours share
    spikes, and training on them leaks the test window's data.

    Parameters
    ----------
    n_windows : int
    n_splits : int, default: 5
    gap : int, default: 1
        Windows dropped from training on each side of every test window (0: none).
    groups : sequence or None, default: None
        One group id per window.
    labels : sequence or None, default: None
        Window labels, used to stratify grouped splits.
    order : sequence of int or None, default: None
        Time order of the windows (indices sorted by start time); ``range(n_windows)`` when None.

    Returns
    -------
    list of (train, test) index arrays

    Examples
    --------
    >>> [test.tolist() for _, test in window_splits(6, n_splits=3, gap=1)]
    [[0, 1], [2, 3], [4, 5]]
    >>> [train.tolist() for train, _ in window_splits(6, n_splits=3, gap=1)]
    [[3, 4, 5], [0, 5], [0, 1, 2]]
    """
    n_windows = int(n_windows)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}.")
    order = np.arange(n_windows) if order is None else np.asarray(order, dtype=np.int64)
    if order.shape != (n_windows,) or not np.array_equal(np.sort(order), np.arange(n_windows)):
        raise ValueError("order must be a permutation of range(n_windows).")
    position = np.empty(n_windows, dtype=np.int64)
    position[order] = np.arange(n_windows)
    if groups is None:
        if not 2 <= n_splits <= n_windows:
            raise ValueError(f"n_splits must be between 2 and the number of windows ({n_windows}), got {n_splits}.")
        blocks = np.array_split(np.arange(n_windows), n_splits)  # positions in time order
        raw = [(np.setdiff1d(np.arange(n_windows), b), b) for b in blocks]
        raw = [(order[tr], order[te]) for tr, te in raw]
    else:
        from sklearn.model_selection import StratifiedGroupKFold

        groups = np.asarray(groups)
        if groups.shape != (n_windows,):
            raise ValueError(f"groups must have one entry per window ({n_windows}), got shape {groups.shape}.")
        n_groups = np.unique(groups).size
        if not 2 <= n_splits <= n_groups:
            raise ValueError(f"n_splits must be between 2 and the number of groups ({n_groups}), got {n_splits}.")
        y = np.zeros(n_windows) if labels is None else _encode(labels)[0]
        raw = list(StratifiedGroupKFold(n_splits=n_splits, shuffle=False).split(np.zeros(n_windows), y, groups))
    splits = []
    for train, test in raw:
        if gap > 0:
            dist = np.abs(position[train][:, None] - position[test][None, :]).min(axis=1)
            train = train[dist > gap]
        splits.append((np.sort(train), np.sort(test)))
    return splits


def _encode(labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.ravel(), classes


@dataclass
class ClassificationResult:
    """Cross-validated window classification with its permutation control.

    Attributes
    ----------
    scores : dict of str to float
        ``accuracy``, ``balanced_accuracy``, macro ``precision`` / ``recall`` / ``f1``, from the pooled out-of-fold
        predictions (every window is predicted once, by a model that never saw it nor its ``gap`` neighbours).
    null : dict of str to np.ndarray
        The same scores for each label permutation, shape (n_permutations,).
    p_values : dict of str to float
        ``(k + 1) / (n + 1)`` for each score ("greater" alternative).
    p_value : float
        The p-value of ``balanced_accuracy``, the headline test (insensitive to class imbalance).
    chance : float
        ``1 / n_classes``, the expected balanced accuracy of an uninformed classifier.
    y_true, y_pred : np.ndarray
        Labels and out-of-fold predictions per window.
    fold : np.ndarray
        The split in which each window was tested.
    classes : np.ndarray
    gap, n_splits : int
    permutation : str
    """

    scores: dict[str, float]
    null: dict[str, np.ndarray]
    p_values: dict[str, float]
    p_value: float
    chance: float
    y_true: np.ndarray
    y_pred: np.ndarray
    fold: np.ndarray
    classes: np.ndarray
    gap: int
    n_splits: int
    permutation: str

    def __getattr__(self, name: str) -> float:
        scores = self.__dict__.get("scores", {})
        if name in scores:
            return scores[name]
        raise AttributeError(name)


def _cv_predict(x: np.ndarray, y: np.ndarray, splits, C: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    # Second-order solvers are ~10x faster than lbfgs on these tiny problems (it matters with 1000s of refits for the
    # permutation null); newton-cholesky forms a (features x features) Hessian and is binary-only on older sklearn.
    if x.shape[1] > 500:
        solver = "lbfgs"
    elif np.unique(y).size == 2:
        solver = "newton-cholesky"
    else:
        solver = "newton-cg"
    pred = np.full(y.shape, -1, dtype=np.int64)
    fold = np.full(y.shape, -1, dtype=np.int64)
    for k, (train, test) in enumerate(splits):
        fold[test] = k
        if train.size == 0:
            raise ValueError(
                "A cross-validation split has no training window left after dropping the gap; use fewer splits or a "
                "smaller gap (or more windows)."
            )
        present = np.unique(y[train])
        if present.size < 2:
            pred[test] = present[0]  # a one-class training set can only predict that class
            continue
        # Standardise with training statistics only (as a StandardScaler pipeline would, without its overhead).
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std[std == 0] = 1.0
        model = LogisticRegression(C=C, max_iter=max_iter, solver=solver)
        model.fit((x[train] - mean) / std, y[train])
        pred[test] = model.predict((x[test] - mean) / std)
    return pred, fold


def _classification_scores(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro precision / recall / F1 from the confusion matrix.

    Same values as scikit-learn's ``accuracy_score``, ``balanced_accuracy_score`` and
    ``precision_recall_fscore_support(average="macro", labels=range(n_classes), zero_division=0)`` (checked in the
    tests), computed directly because the permutation null calls this thousands of times.
    """
    tested = pred >= 0
    y, pred = y[tested], pred[tested]
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "balanced_accuracy": float(recall[support > 0].mean()),  # classes absent from y_true are left out
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def classify_windows(
    embeddings_or_features: np.ndarray,
    labels: Sequence | None = None,
    groups: Sequence | None = None,
    n_splits: int = 5,
    gap: int | str = "auto",
    windows: Any = None,
    readout: str = "mean",
    n_permutations: int = 200,
    permutation: str = "random",
    C: float = 1.0,
    seed: int = 0,
    verbose: bool = False,
) -> ClassificationResult:
    """Classify windows (behavioural state, track segment, condition) from their embeddings, with a null.

    A standardised logistic regression is trained and tested by :func:`window_splits`: contiguous time blocks, or
    whole groups when ``groups`` is given, never random splits of overlapping windows. Scores come from the pooled
    out-of-fold predictions. The whole cross-validation is repeated on permuted labels for the null distribution.

    Parameters
    ----------
    embeddings_or_features : np.ndarray, shape (T, N, d) or (T, d)
        Node embeddings (reduced to one vector per window by ``readout``) or window features.
    labels : sequence, shape (T,), or None, default: None
        One label per window; ``windows.labels`` when None.
    groups : sequence, shape (T,), or None, default: None
        Group id per window (trial, session); grouped stratified splits when given.
    n_splits : int, default: 5
    gap : int or "auto", default: "auto"
        Windows dropped from training on each side of every test window. "auto": the largest number of later
        windows that overlap a window, from ``windows`` (1 for 50 %-overlapping sliding windows, 0 for disjoint
        ones); 1 when ``windows`` is not given, as neighbouring windows are usually autocorrelated.
    windows : Windows or None, default: None
        The windows (``.starts``, ``.stops``, ``.labels``), e.g. ``graphs.windows``; sets the time order and gap.
    readout : {"mean", "mean+std", "max"}, default: "mean"
        See :func:`window_vectors`.
    n_permutations : int, default: 200
        Label permutations for the null (0: none, p-values NaN).
    permutation : {"random", "circular"}, default: "random"
        "random": labels shuffled across windows (or, with ``groups`` and labels constant within groups, across
        groups; with few groups there are few distinct labelings, and the complement of the true labeling is as
        predictable as the truth, so the smallest reachable p-value is coarse: 2 / C(8, 4) = 0.03 for 8 groups).
        "circular": labels circularly shifted in time order, which keeps their autocorrelation; prefer it when labels
        are slow states (a learning phase) and embeddings drift, as a random shuffle then gives a null that is too
        easy to beat. With T windows there are only T - 1 shifts, so p >= 1 / T.
    C : float, default: 1.0
        Inverse L2 regularisation strength of the logistic regression.
    seed : int, default: 0
    verbose : bool, default: False
        Show a progress bar over permutations.

    Returns
    -------
    ClassificationResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.tile(np.repeat([0, 1], 3), 5)
    >>> x = labels[:, None] * 3.0 + rng.normal(size=(30, 2))
    >>> res = classify_windows(x, labels, n_permutations=50)
    >>> res.accuracy > 0.9, res.p_value < 0.05
    (True, True)
    """
    from threadpoolctl import threadpool_limits

    x = window_vectors(embeddings_or_features, readout)
    n = x.shape[0]
    if labels is None:
        labels = None if windows is None else getattr(windows, "labels", None)
        if labels is None:
            raise ValueError("labels is None and no windows.labels to fall back on; pass one label per window.")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have one entry per window ({n}), got shape {labels.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or inf.")
    y, classes = _encode(labels)
    if classes.size < 2:
        raise ValueError("labels contain a single class; classification needs at least two.")
    if windows is not None and len(windows) != n:
        raise ValueError(f"windows has {len(windows)} entries but there are {n} windows of embeddings.")
    order = None if windows is None else np.argsort(np.asarray(windows.starts), kind="stable")
    if gap == "auto":
        gap = 1 if windows is None else _gap_from_windows(windows)
    gap = int(gap)
    if permutation not in ("random", "circular"):
        raise ValueError(f"permutation must be 'random' or 'circular', got {permutation!r}.")

    def run(y_perm: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        splits = window_splits(n, n_splits, gap, groups=groups, labels=y_perm, order=order)
        # Many fits of a tiny (T x d) logistic regression: threads only add start-up and contention costs.
        with threadpool_limits(limits=1):
            pred, fold = _cv_predict(x, y_perm, splits, C=C, max_iter=1000)
        return _classification_scores(y_perm, pred, classes.size), pred, fold

    scores, pred, fold = run(y)

    rng = np.random.default_rng(seed)
    time_order = np.arange(n) if order is None else order
    group_level = False
    if groups is not None and permutation == "random":
        g_codes, _ = _encode(groups)
        group_label = np.full(g_codes.max() + 1, -1)
        group_level = True
        for g in range(g_codes.max() + 1):
            vals = np.unique(y[g_codes == g])
            if vals.size != 1:
                group_level = False
                break
            group_label[g] = vals[0]
    if permutation == "circular":
        shifts = _circular_shifts(n, n_permutations, rng)
        perms = []
        for s in shifts:
            y_perm = np.empty_like(y)
            y_perm[time_order] = np.roll(y[time_order], int(s))
            perms.append(y_perm)
    else:
        perms = []
        for _ in range(n_permutations):
            if group_level:
                y_perm = rng.permutation(group_label)[g_codes]
            else:
                y_perm = rng.permutation(y)
            perms.append(y_perm)
    null = {m: np.full(len(perms), np.nan) for m in CLASSIFICATION_METRICS}
    for i, y_perm in enumerate(_progress(perms, verbose, "label permutations")):
        s, _, _ = run(y_perm)
        for m in CLASSIFICATION_METRICS:
            null[m][i] = s[m]
    p_values = {m: permutation_p_value(scores[m], null[m]) for m in CLASSIFICATION_METRICS}
    return ClassificationResult(
        scores=scores,
        null=null,
        p_values=p_values,
        p_value=p_values["balanced_accuracy"],
        chance=1.0 / classes.size,
        y_true=labels,
        y_pred=classes[pred],
        fold=fold,
        classes=classes,
        gap=gap,
        n_splits=n_splits,
        permutation=permutation,
    )


# ============================================================================================== node clustering
def _silhouettes(dist: np.ndarray, labelings: np.ndarray, n_groups: int, chunk: int = 64) -> np.ndarray:
    """Mean silhouette (Rousseeuw 1987) of many labelings of the same points, from their distance matrix.

    Same definition as :func:`sklearn.metrics.silhouette_score` (members of singleton groups score 0), vectorised over
    labelings so that a permutation null costs matrix products rather than one full pass per permutation.

    Parameters
    ----------
    dist : np.ndarray, shape (N, N)
    labelings : np.ndarray of int, shape (P, N)
        Codes in ``0 .. n_groups - 1``.
    n_groups : int

    Returns
    -------
    np.ndarray, shape (P,)
    """
    n = dist.shape[0]
    out = np.empty(labelings.shape[0])
    for start in range(0, labelings.shape[0], chunk):
        lab = labelings[start : start + chunk]  # (P, N)
        onehot = np.zeros((lab.shape[0], n, n_groups))
        np.put_along_axis(onehot, lab[:, :, None], 1.0, axis=2)
        sums = np.matmul(dist[None], onehot)  # (P, N, K): summed distance of each point to each group
        counts = onehot.sum(axis=1)  # (P, K)
        own = np.take_along_axis(sums, lab[:, :, None], axis=2)[..., 0]
        own_count = np.take_along_axis(counts, lab, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = own / (own_count - 1)
            mean_other = sums / counts[:, None, :]
        np.put_along_axis(mean_other, lab[:, :, None], np.inf, axis=2)
        mean_other[np.broadcast_to(counts[:, None, :] == 0, mean_other.shape)] = np.inf
        b = mean_other.min(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            sil = (b - a) / np.maximum(a, b)
        sil[(own_count <= 1) | ~np.isfinite(sil)] = 0.0
        n_present = (counts > 0).sum(axis=1)
        res = sil.mean(axis=1)
        res[(n_present < 2) | (n_present > n - 1)] = np.nan  # silhouette needs 2 <= groups <= N - 1
        out[start : start + chunk] = res
    return out


@dataclass
class ClusteringResult:
    """k-means clusters of node embeddings against known node groups, per window, with a node-label null.

    Attributes
    ----------
    scores : dict of str to np.ndarray
        ``ari`` and ``nmi`` of k-means clusters vs the groups, and ``silhouette`` of the known groups in embedding
        space (how well the groups separate, independent of k-means); each of shape (T,).
    null : dict of str to np.ndarray
        The same under node-label permutations, shape (n_permutations, T). One permutation is applied to every window
        so the null of the across-window mean is the mean of each row.
    p_values : dict of str to np.ndarray
        Per-window p-values, shape (T,).
    mean_scores, mean_p_values : dict of str to float
        The across-window mean of each score and its p-value against the row means of ``null``.
    cluster_labels : np.ndarray, shape (T, N)
        k-means assignment per window.
    n_clusters : int
    """

    scores: dict[str, np.ndarray]
    null: dict[str, np.ndarray]
    p_values: dict[str, np.ndarray]
    mean_scores: dict[str, float]
    mean_p_values: dict[str, float]
    cluster_labels: np.ndarray
    n_clusters: int


def cluster_nodes(
    embeddings: np.ndarray,
    node_labels: Sequence,
    n_clusters: int | None = None,
    n_permutations: int = 200,
    seed: int = 0,
    verbose: bool = False,
) -> ClusteringResult:
    """Do a window's node embeddings separate known node groups (brain region, chip subregion, MEA well)?

    For each window, k-means (``n_init=10``) on the embeddings themselves (never on t-SNE / UMAP coordinates, whose
    distances are not preserved) is scored against the groups with the adjusted Rand index and normalised mutual
    information; the silhouette of the known groups measures their separation directly. The null permutes node
    labels (same permutation in every window); k-means does not see labels, so it is not re-run.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d) or (N, d)
    node_labels : sequence, shape (N,)
        Group of each node. Nodes labelled None or NaN are excluded.
    n_clusters : int or None, default: None
        Number of k-means clusters; the number of groups when None.
    n_permutations : int, default: 200
    seed : int, default: 0
        Seed of k-means and of the permutations.
    verbose : bool, default: False
        Show a progress bar over windows.

    Returns
    -------
    ClusteringResult

    Examples
    --------
    >>> import numpy as np
    >>> z = np.concatenate([np.zeros((10, 2)), np.full((10, 2), 5.0)]) + np.random.default_rng(0).normal(size=(20, 2))
    >>> res = cluster_nodes(z, [0] * 10 + [1] * 10, n_permutations=50)
    >>> float(res.scores["ari"][0]), bool(res.p_values["ari"][0] < 0.05)
    (1.0, True)
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from threadpoolctl import threadpool_limits

    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim == 2:
        z = z[None]
    if z.ndim != 3:
        raise ValueError(f"embeddings must have shape (T, N, d) or (N, d), got {z.shape}.")
    n_windows, n_nodes = z.shape[:2]
    raw = np.asarray(node_labels, dtype=object)
    if raw.shape != (n_nodes,):
        raise ValueError(f"node_labels must have one entry per node ({n_nodes}), got shape {raw.shape}.")
    keep = np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in raw])
    z = z[:, keep]
    y, groups = _encode(raw[keep].astype(str) if raw[keep].dtype == object else raw[keep])
    n_groups = groups.size
    k = n_groups if n_clusters is None else int(n_clusters)
    if n_groups < 2:
        raise ValueError("node_labels contain a single group; clustering needs at least two.")
    if not 2 <= k < y.size:
        raise ValueError(f"n_clusters must be between 2 and the number of nodes - 1, got {k}.")

    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(y) for _ in range(n_permutations)]).reshape(n_permutations, y.size)
    scores = {m: np.full(n_windows, np.nan) for m in CLUSTERING_METRICS}
    null = {m: np.full((n_permutations, n_windows), np.nan) for m in CLUSTERING_METRICS}
    cluster_labels = np.full((n_windows, n_nodes), -1, dtype=np.int64)

    for t in _progress(range(n_windows), verbose, "windows"):
        zt = z[t]
        if np.unique(zt, axis=0).shape[0] < k:
            continue  # fewer distinct points than clusters: nothing to score
        # Single-threaded k-means: on problems this small, OpenMP threads cost far more than they save (100x slower
        # measured on a busy 2-core machine).
        with threadpool_limits(limits=1, user_api="openmp"):
            clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(zt)
        cluster_labels[t, keep] = clusters
        dist = cdist(zt, zt)
        scores["ari"][t] = adjusted_rand_score(y, clusters)
        scores["nmi"][t] = normalized_mutual_info_score(y, clusters)
        scores["silhouette"][t] = _silhouettes(dist, y[None], n_groups)[0]
        null["silhouette"][:, t] = _silhouettes(dist, perms, n_groups)
        for i, yp in enumerate(perms):
            null["ari"][i, t] = adjusted_rand_score(yp, clusters)
            null["nmi"][i, t] = normalized_mutual_info_score(yp, clusters)
    p_values = {
        m: np.array([permutation_p_value(scores[m][t], null[m][:, t]) for t in range(n_windows)])
        for m in CLUSTERING_METRICS
    }
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
            mean_scores = {m: float(np.nanmean(scores[m])) for m in CLUSTERING_METRICS}
            mean_null = {m: np.nanmean(null[m], axis=1) for m in CLUSTERING_METRICS}
    mean_p = {m: permutation_p_value(mean_scores[m], mean_null[m]) for m in CLUSTERING_METRICS}
    return ClusteringResult(scores, null, p_values, mean_scores, mean_p, cluster_labels, k)


# ============================================================================================== region alignment
def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample energy distance between point clouds (Szekely & Rizzo 2004), in any dimension.

    ``sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|)`` with Euclidean norms and expectations over the empirical
    distributions (all pairs, V-statistics), so it is >= 0 and 0 iff the two samples are identical as distributions.
    In one dimension it equals :func:`scipy.stats.energy_distance`.

    Parameters
    ----------
    x : np.ndarray, shape (n_x, d) or (n_x,)
    y : np.ndarray, shape (n_y, d) or (n_y,)

    Returns
    -------
    float

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 6)
    0.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    e = 2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    return float(np.sqrt(max(e, 0.0)))


def centroid_cosine_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``1 - cos(mean(x), mean(y))``, between 0 (same direction) and 2 (opposite); NaN if a centroid is zero.

    Parameters
    ----------
    x : np.ndarray, shape (n_x, d)
    y : np.ndarray, shape (n_y, d)

    Returns
    -------
    float

    Examples
    --------
    >>> centroid_cosine_distance([[1.0, 0.0]], [[0.0, 2.0]])
    1.0
    """
    a = np.asarray(x, dtype=np.float64).mean(axis=0)
    b = np.asarray(y, dtype=np.float64).mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(1.0 - a @ b / (na * nb))


def _partial_spearman(x: np.ndarray, y: np.ndarray, control: np.ndarray) -> float:
    """Spearman correlation of x and y after regressing the ranks of ``control`` out of both ranks."""
    if x.size < 4:
        return float("nan")
    rx, ry, rc = (scipy.stats.rankdata(v) for v in (x, y, control))
    design = np.column_stack([np.ones_like(rc), rc])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    denom = np.linalg.norm(res_x) * np.linalg.norm(res_y)
    return float(res_x @ res_y / denom) if denom > 0 else float("nan")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


@dataclass
class AlignmentResult:
    """Distances between two node groups' embeddings per window, and their relation to behaviour.

    Attributes
    ----------
    distances : dict of str to np.ndarray
        ``cosine`` (centroid cosine distance) and ``energy`` (energy distance), shape (T,) each.
    distance_p_values : dict of str to np.ndarray
        Per window, the p-value of each distance against random re-assignments of the pooled nodes to two groups of
        the same sizes (the energy two-sample test for ``energy``); NaN when ``n_node_permutations`` is 0.
    correlation : dict of str to dict of str to float
        Per distance: ``rho`` (Spearman, distance vs behaviour), ``p_value`` (circular-shift null, two-sided),
        ``partial_rho`` (controlling for window index, i.e. time in session), ``partial_p_value``, and ``n_shifts``.
        Empty when no behaviour was given.
    null : dict of str to dict of str to np.ndarray
        Per distance, the ``rho`` and ``partial_rho`` null distributions.
    """

    distances: dict[str, np.ndarray]
    distance_p_values: dict[str, np.ndarray]
    correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    null: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _group_mask(node_labels: np.ndarray, group: Any) -> np.ndarray:
    if isinstance(group, (list, tuple, set, np.ndarray)):
        return np.isin(node_labels, list(group))
    return node_labels == group


def region_alignment(
    embeddings: np.ndarray,
    node_labels: Sequence,
    group_a: Any,
    group_b: Any,
    behaviour: Sequence[float] | None = None,
    n_permutations: int = 1000,
    n_node_permutations: int = 199,
    seed: int = 0,
    verbose: bool = False,
) -> AlignmentResult:
    """How far apart are two groups of nodes (e.g. sensory vs motor region) in embedding space, window by window,
    and does that distance follow behaviour?

    Distances per window t, between ``A = {Z_t[i] : node i in group_a}`` and ``B`` likewise:

    * centroid cosine distance ``1 - cos(mean A, mean B)`` (direction of the group means; scale free);
    * energy distance (Szekely & Rizzo 2004), see :func:`energy_distance`: zero iff the two distributions are
      equal, sensitive to any difference in location, spread or shape.

    Correlation with behaviour (windows must be in time order): Spearman ``rho`` between each distance series and the
    behavioural score per window.
    Its null comes from circular shifts of the behaviour series: windows and behaviour are both autocorrelated
    (sliding windows overlap, performance drifts), and a random shuffle would destroy that autocorrelation and give
    a null far too narrow (spurious "significant" correlations between two smooth series). A circular shift keeps
    the behaviour's autocorrelation and only breaks its alignment with the distances. With T windows there are
    T - 1 shifts (all used when ``n_permutations >= T - 1``), so the smallest p-value is 1 / T: short sessions cannot
    reach small p-values, honestly. ``partial_rho`` controls for time in session: the Spearman correlation after
    regressing the window index out of both ranked series (a distance and a behaviour that both trend over the
    session correlate without any link between them).

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)
    node_labels : sequence, shape (N,)
    group_a, group_b : label or list of labels
        The node groups to compare (e.g. ``"sensory"`` and ``["motor_1", "motor_2"]``); must not overlap.
    behaviour : sequence of float, shape (T,), or None, default: None
        Behavioural score per window (hit rate, speed); no correlation when None.
    n_permutations : int, default: 1000
        Circular shifts of the behaviour for the correlation null.
    n_node_permutations : int, default: 199
        Re-assignments of nodes to the groups for the per-window distance p-values (0 to skip).
    seed : int, default: 0
    verbose : bool, default: False

    Returns
    -------
    AlignmentResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> behaviour = rng.random(30)
    >>> z = rng.normal(size=(30, 20, 2))
    >>> z[:, :10] += 4.0 * behaviour[:, None, None]
    >>> res = region_alignment(z, [0] * 10 + [1] * 10, 0, 1, behaviour=behaviour)
    >>> res.correlation["energy"]["rho"] > 0.8, res.correlation["energy"]["p_value"] < 0.05
    (True, True)
    """
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim != 3:
        raise ValueError(f"embeddings must have shape (T, N, d), got {z.shape}.")
    n_windows, n_nodes = z.shape[:2]
    node_labels = np.asarray(node_labels)
    if node_labels.shape != (n_nodes,):
        raise ValueError(f"node_labels must have one entry per node ({n_nodes}), got shape {node_labels.shape}.")
    mask_a, mask_b = _group_mask(node_labels, group_a), _group_mask(node_labels, group_b)
    if np.any(mask_a & mask_b):
        raise ValueError("group_a and group_b share nodes; give disjoint groups.")
    if mask_a.sum() < 1 or mask_b.sum() < 1:
        raise ValueError(f"group_a has {mask_a.sum()} nodes and group_b {mask_b.sum()}; both need at least one.")

    pooled = np.flatnonzero(mask_a | mask_b)
    is_a = mask_a[pooled]
    n_a, n_b = int(is_a.sum()), int((~is_a).sum())
    rng = np.random.default_rng(seed)
    # Columns: group-A indicators of random reassignments of the pooled nodes (group sizes kept).
    assign = np.zeros((pooled.size, n_node_permutations))
    for j in range(n_node_permutations):
        assign[rng.choice(pooled.size, n_a, replace=False), j] = 1.0

    distances = {"cosine": np.full(n_windows, np.nan), "energy": np.full(n_windows, np.nan)}
    dist_p = {"cosine": np.full(n_windows, np.nan), "energy": np.full(n_windows, np.nan)}
    for t in _progress(range(n_windows), verbose, "windows"):
        zt = z[t, pooled]
        distances["cosine"][t] = centroid_cosine_distance(zt[is_a], zt[~is_a])
        distances["energy"][t] = energy_distance(zt[is_a], zt[~is_a])
        if n_node_permutations == 0:
            continue
        # Vectorised energy statistic for all reassignments: block sums of the pooled distance matrix.
        d = cdist(zt, zt)
        row = d.sum(axis=1)
        total = row.sum()
        s_aa = np.einsum("ip,ip->p", assign, d @ assign)
        s_a_all = row @ assign
        s_ab = s_a_all - s_aa
        s_bb = total - 2.0 * s_a_all + s_aa
        e = 2.0 * s_ab / (n_a * n_b) - s_aa / n_a**2 - s_bb / n_b**2
        dist_p["energy"][t] = permutation_p_value(distances["energy"][t], np.sqrt(np.maximum(e, 0.0)))
        mean_a = (zt.T @ assign) / n_a
        mean_b = (zt.T @ (1.0 - assign)) / n_b
        norms = np.linalg.norm(mean_a, axis=0) * np.linalg.norm(mean_b, axis=0)
        with np.errstate(all="ignore"):
            cos_null = 1.0 - np.sum(mean_a * mean_b, axis=0) / norms
        dist_p["cosine"][t] = permutation_p_value(distances["cosine"][t], cos_null)
    result = AlignmentResult(distances, dist_p)
    if behaviour is None:
        return result

    b = np.asarray(behaviour, dtype=np.float64)
    if b.shape != (n_windows,):
        raise ValueError(f"behaviour must have one value per window ({n_windows}), got shape {b.shape}.")
    if not np.all(np.isfinite(b)):
        raise ValueError("behaviour contains NaN or inf; drop those windows from embeddings and behaviour first.")
    time_index = np.arange(n_windows, dtype=np.float64)
    shifts = _circular_shifts(n_windows, n_permutations, rng)
    for name, dist in distances.items():
        ok = np.isfinite(dist)
        if ok.sum() < 3:
            nan = float("nan")
            result.correlation[name] = {
                "rho": nan,
                "p_value": nan,
                "partial_rho": nan,
                "partial_p_value": nan,
                "n_shifts": int(shifts.size),
            }
            result.null[name] = {"rho": np.zeros(0), "partial_rho": np.zeros(0)}
            continue
        rho = _spearman(dist[ok], b[ok])
        partial = _partial_spearman(dist[ok], b[ok], time_index[ok])
        null_rho = np.full(shifts.size, np.nan)
        null_partial = np.full(shifts.size, np.nan)
        for i, s in enumerate(shifts):
            bs = np.roll(b, int(s))[ok]
            null_rho[i] = _spearman(dist[ok], bs)
            null_partial[i] = _partial_spearman(dist[ok], bs, time_index[ok])
        result.correlation[name] = {
            "rho": rho,
            "p_value": permutation_p_value(rho, null_rho, "two-sided"),
            "partial_rho": partial,
            "partial_p_value": permutation_p_value(partial, null_partial, "two-sided"),
            "n_shifts": int(shifts.size),
        }
        result.null[name] = {"rho": null_rho, "partial_rho": null_partial}
    return result


# ============================================================================================== repeated runs
@dataclass
class ScoreTable:
    """Scores of several methods repeated over seeds: one row per (method, metric).

    Attributes
    ----------
    rows : list of dict
        Keys ``method``, ``metric``, ``mean``, ``ci_low``, ``ci_high`` (95 % Student-t interval over seeds, see
        :func:`mean_ci`), ``n_seeds``, ``time_s`` (mean seconds per seed to compute the embedding).
    raw : dict of (str, str) to list of float
        The per-seed values behind each row.
    """

    rows: list[dict[str, Any]]
    raw: dict[tuple[str, str], list[float]]

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (``pandas.DataFrame(table.to_dicts())`` gives a data frame)."""
        return [dict(r) for r in self.rows]

    def get(self, method: str, metric: str) -> dict[str, Any]:
        """The row of one method and metric."""
        for r in self.rows:
            if r["method"] == method and r["metric"] == metric:
                return r
        raise KeyError((method, metric))

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table: method, metric, mean, 95 % CI, n_seeds, time_s."""
        lines = ["| method | metric | mean | 95% CI | n_seeds | time_s |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            ci = "n/a" if not np.isfinite(r["ci_low"]) else f"[{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"
            mean = f"{r['mean']:.{digits}f}"
            lines.append(f"| {r['method']} | {r['metric']} | {mean} | {ci} | {r['n_seeds']} | {r['time_s']:.2f} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def _table_from_raw(raw: dict[tuple[str, str], list[float]], times: dict[str, list[float]], confidence: float):
    rows = []
    for (method, metric), values in raw.items():
        mean, lo, hi = mean_ci(values, confidence)
        rows.append(
            {
                "method": method,
                "metric": metric,
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n_seeds": int(np.sum(np.isfinite(values))),
                "time_s": float(np.mean(times.get(method, [np.nan]))),
            }
        )
    return ScoreTable(rows, raw)


def link_scores(
    estimator_or_params: Any,
    graphs,
    seeds: Sequence[int] = (0, 1, 2),
    confidence: float = 0.95,
    method: str = "tavrnn",
    verbose: bool = False,
    **score_kwargs: Any,
) -> ScoreTable:
    """Intrinsic quality of TAVRNN (link detection and prediction AUC / AP), repeated over seeds.

    For each seed a fresh estimator with the given parameters and that seed runs ``score_links(graphs,
    **score_kwargs)``; every numeric entry of the returned dict becomes a row with its mean and interval.

    Parameters
    ----------
    estimator_or_params : TAVRNN or dict
        An estimator whose parameters are copied (``get_params()``), or a dict of TAVRNN parameters.
    graphs : GraphSequence
    seeds : sequence of int, default: (0, 1, 2)
    confidence : float, default: 0.95
    method : str, default: "tavrnn"
        Name used in the table's ``method`` column.
    verbose : bool, default: False
    **score_kwargs
        Passed to ``TAVRNN.score_links``.

    Returns
    -------
    ScoreTable
    """
    if isinstance(estimator_or_params, dict):
        from .estimator import TAVRNN

        cls, params = TAVRNN, dict(estimator_or_params)
    else:
        cls, params = type(estimator_or_params), dict(estimator_or_params.get_params())
    params.setdefault("verbose", False)
    raw: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {method: []}
    for seed in _progress(seeds, verbose, "seeds"):
        t0 = time.perf_counter()
        scores = cls(**{**params, "seed": int(seed)}).score_links(graphs, **score_kwargs)
        times[method].append(time.perf_counter() - t0)
        for key, value in scores.items():
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                raw.setdefault((method, key), []).append(float(value))
    return _table_from_raw(raw, times, confidence)


def compare_methods(
    graphs,
    labels: Sequence | None = None,
    node_labels: Sequence | None = None,
    methods: Sequence[str] = ("connectivity_pca", "spectral", "vgae", "vgrnn", "tavrnn"),
    seeds: Sequence[int] = (0, 1, 2),
    task: str = "windows",
    dim: int = 8,
    method_params: dict[str, dict[str, Any]] | None = None,
    readout: str = "mean",
    n_splits: int = 5,
    gap: int | str = "auto",
    groups: Sequence | None = None,
    n_permutations: int = 0,
    confidence: float = 0.95,
    embed_fn: Callable[..., np.ndarray] | None = None,
    verbose: bool = False,
) -> ScoreTable:
    """Compare embedding methods on one task, through one code path, repeated over seeds.

    For each method and seed: ``embed(graphs, method, seed=seed, dim=dim, **method_params[method])`` (timed), then
    :func:`classify_windows` (``task="windows"``) or :func:`cluster_nodes` (``task="nodes"``, across-window mean of
    ARI, NMI and silhouette) with the same seed. Scores are summarised by their mean and a Student-t interval over
    seeds (:func:`mean_ci`); deterministic methods (``connectivity_pca``, ``spectral``, ``graph_stats``) vary only
    through the seeded parts of the evaluation, so their interval may collapse.

    Parameters
    ----------
    graphs : GraphSequence
    labels : sequence, shape (T,), or None, default: None
        Window labels for ``task="windows"``; ``graphs.windows.labels`` when None.
    node_labels : sequence, shape (N,), or None, default: None
        Node groups for ``task="nodes"``; ``graphs.node_labels`` when None.
    methods : sequence of str, default: ("connectivity_pca", "spectral", "vgae", "vgrnn", "tavrnn")
        Names understood by :func:`spikeinterface_tavrnn.baselines.embed`.
    seeds : sequence of int, default: (0, 1, 2)
    task : {"windows", "nodes"}, default: "windows"
    dim : int, default: 8
        Embedding dimension for every method.
    method_params : dict of str to dict, or None, default: None
        Extra options per method, e.g. ``{"tavrnn": {"epochs": 200}, "vgae": {"epochs": 50}}``.
    readout, n_splits, gap, groups, n_permutations :
        Passed to :func:`classify_windows` (``n_permutations`` also to :func:`cluster_nodes`; 0 by default, since the
        comparison is between methods; when > 0 ``p_value`` rows are added, whose mean over seeds is a summary, not
        itself a p-value).
    confidence : float, default: 0.95
    embed_fn : callable or None, default: None
        Replacement for :func:`~spikeinterface_tavrnn.baselines.embed` with the same signature (to add a method).
    verbose : bool, default: False

    Returns
    -------
    ScoreTable

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> a = np.kron(np.eye(2), np.ones((5, 5)))
    >>> graphs = GraphSequence.from_adjacency([a] * 4, node_labels=[0] * 5 + [1] * 5)
    >>> table = compare_methods(graphs, methods=["spectral"], seeds=[0, 1], task="nodes", dim=2)
    >>> table.get("spectral", "ari")["mean"]
    1.0
    """
    from .baselines import embed

    embed_fn = embed if embed_fn is None else embed_fn
    method_params = {} if method_params is None else method_params
    windows = getattr(graphs, "windows", None)
    if task == "windows":
        if labels is None:
            labels = None if windows is None else getattr(windows, "labels", None)
        if labels is None:
            raise ValueError("task='windows' needs labels (or graphs.windows.labels).")
    elif task == "nodes":
        node_labels = getattr(graphs, "node_labels", None) if node_labels is None else node_labels
        if node_labels is None:
            raise ValueError("task='nodes' needs node_labels (or graphs.node_labels).")
    else:
        raise ValueError(f"task must be 'windows' or 'nodes', got {task!r}.")
    raw: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {}
    for method in methods:
        params = dict(method_params.get(method, {}))
        if task == "nodes" and method == "connectivity_pca":
            params.setdefault("level", "node")
        for seed in _progress(seeds, verbose, method):
            t0 = time.perf_counter()
            emb = embed_fn(graphs, method, seed=int(seed), dim=dim, **params)
            times.setdefault(method, []).append(time.perf_counter() - t0)
            if task == "windows":
                res = classify_windows(
                    emb,
                    labels,
                    groups=groups,
                    n_splits=n_splits,
                    gap=gap,
                    windows=windows if windows is not None and hasattr(windows, "starts") else None,
                    readout=readout,
                    n_permutations=n_permutations,
                    seed=int(seed),
                )
                values = dict(res.scores)
                if n_permutations > 0:
                    values["p_value"] = res.p_value
            else:
                if np.asarray(emb).ndim != 3:
                    raise ValueError(f"method {method!r} gives window vectors, not node embeddings (task='nodes').")
                res = cluster_nodes(emb, node_labels, n_permutations=n_permutations, seed=int(seed))
                values = dict(res.mean_scores)
                if n_permutations > 0:
                    values.update({f"p_{m}": p for m, p in res.mean_p_values.items()})
            for metric, value in values.items():
                raw.setdefault((method, metric), []).append(float(value))
    return _table_from_raw(raw, times, confidence)
