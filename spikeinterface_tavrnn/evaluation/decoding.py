"""Decoding window labels from window vectors: logistic regression, blocked cross-validation, permutation control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .statistics import _circular_shifts, _encode, _progress, mcnemar_p_value, permutation_p_value
from .windows import DEFAULT_READOUT, _gap_from_windows, window_splits, window_vectors


CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1")


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
    readout: str = DEFAULT_READOUT,
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
    embeddings_or_features : np.ndarray, shape (T, N, d) or (T, d), or sequence of T arrays (N_t, d)
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
    readout : {"auto", "flat", "mean", "mean+std", "max"}, default: "auto"
        See :func:`window_vectors` (which owns the default): ``"auto"`` keeps the units apart (``"flat"``) for an
        array (T, N, d) and averages over nodes for per-window arrays with their own node sets.
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


def fold_scores(result: ClassificationResult, metric: str = "balanced_accuracy") -> np.ndarray:
    """One score per cross-validation fold of a :func:`classify_windows` result, for paired tests across methods.

    The pooled score of the result is computed over every window at once; this computes the same metric on each
    fold's test windows alone (a balanced accuracy over the classes present in that fold). Two results obtained with
    the same labels, ``windows``, ``n_splits`` and ``gap`` share their folds, so their fold scores pair up (see
    :func:`~spikeinterface_tavrnn.evaluation.paired_test`).

    Parameters
    ----------
    result : ClassificationResult
    metric : str, default: "balanced_accuracy"
        One of :data:`CLASSIFICATION_METRICS`.

    Returns
    -------
    np.ndarray, shape (n_splits,)
        NaN for a fold that tested no window.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.tile(np.repeat([0, 1], 3), 5)
    >>> x = labels[:, None] * 3.0 + np.random.default_rng(0).normal(size=(30, 2))
    >>> fold_scores(classify_windows(x, labels, n_permutations=0)).round(2).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.83]
    """
    if metric not in CLASSIFICATION_METRICS:
        raise ValueError(f"metric must be one of {CLASSIFICATION_METRICS}, got {metric!r}.")
    classes = np.asarray(result.classes)
    n_classes = classes.size
    y_true = np.searchsorted(classes, np.asarray(result.y_true))  # classes are sorted (np.unique)
    y_pred = np.searchsorted(classes, np.asarray(result.y_pred))
    out = np.full(int(result.n_splits), np.nan)
    for k in range(out.size):
        tested = np.asarray(result.fold) == k
        if tested.any():
            out[k] = _classification_scores(y_true[tested], y_pred[tested], n_classes)[metric]
    return out


#: The feature sets of :func:`decode_against_baselines`, in the order they are reported.
FEATURE_SETS = ("embeddings", "firing_rates", "connectivity", "embeddings+rates")


@dataclass
class BaselineDecoding:
    """Result of :func:`decode_against_baselines`.

    Attributes
    ----------
    results : dict of str to ClassificationResult
        One cross-validated decoder per feature set (see :data:`FEATURE_SETS`); the embeddings decoder carries a
        label-permutation p-value against chance (the others NaN).
    gain : float
        Balanced accuracy of embeddings + rates minus that of rates alone.
    gain_null : np.ndarray
        The same gain with the embeddings' windows permuted against the rates and labels (embeddings with the
        same values that carry no information about these windows).
    gain_p_value : float
        ``(k + 1) / (n + 1)``: how often a permuted gain is at least the observed one (do the embeddings carry
        information about these windows at all?).
    paired_p_value : float
        Exact McNemar test of embeddings + rates against rates alone on the same out-of-fold predictions: two-sided
        binomial test of the windows that only one of the two decoders gets right (is the gain more than the luck of
        a few windows?).
    chance : float
        ``1 / n_classes``.
    """

    results: dict
    gain: float
    gain_null: np.ndarray
    gain_p_value: float
    paired_p_value: float
    chance: float

    @property
    def adds_information(self) -> bool:
        """Whether the embeddings add information beyond firing rates at the 5 % level: a positive gain that beats
        both the permuted embeddings and, window by window, the rates-only decoder."""
        return bool(self.gain > 0 and self.gain_p_value <= 0.05 and self.paired_p_value <= 0.05)


def decode_against_baselines(
    embeddings: np.ndarray,
    firing_rates_hz: np.ndarray,
    matrices: np.ndarray,
    labels: Sequence,
    windows: Any = None,
    n_permutations: int = 19,
    n_splits: int = 5,
    gap: int | str = "auto",
    seed: int = 0,
    verbose: bool = False,
) -> BaselineDecoding:
    """Decode window labels from the embeddings and from simpler descriptions of the same windows.

    Four decoders run through :func:`classify_windows` with the same splits: all units' embeddings, the units'
    firing rates (``log(1 + rate)``), the raw connectivity (upper triangle of each matrix), and embeddings with
    rates. Whether the graph model adds information beyond rates is tested by the gain of the last over rates
    alone, against the gains obtained with the embeddings' windows permuted. (Circular shifts in time would keep
    the embeddings' autocorrelation but realign them with periodic behaviour, such as laps on a track.)

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)
    firing_rates_hz : np.ndarray, shape (T, N)
    matrices : np.ndarray, shape (T, N, N)
    labels : sequence, shape (T,)
        One label per window.
    windows : Windows or None, default: None
        Sets the time order and the cross-validation gap (see :func:`classify_windows`).
    n_permutations : int, default: 19
        Label permutations of the embeddings decoder, and embedding permutations for the gain (19: p >= 0.05).
    n_splits : int, default: 5
    gap : int or "auto", default: "auto"
        Windows dropped from training on each side of every test window (see :func:`classify_windows`).
    seed : int, default: 0
    verbose : bool, default: False

    Returns
    -------
    BaselineDecoding
    """
    t = int(np.shape(embeddings)[0])
    emb = np.nan_to_num(window_vectors(embeddings, "flat"), nan=0.0)  # every unit kept apart: one recording
    rates = np.log1p(np.asarray(firing_rates_hz, dtype=np.float64))
    mats = np.asarray(matrices, dtype=np.float64)
    rows, cols = np.triu_indices(mats.shape[1], 1)
    features = {
        "embeddings": emb,
        "firing_rates": rates,
        "connectivity": np.nan_to_num(mats[:, rows, cols]),
        "embeddings+rates": np.concatenate([emb, rates], axis=1),
    }
    common = dict(labels=labels, windows=windows, n_splits=n_splits, gap=gap, seed=seed)
    # Label permutations (p against chance) for the model's decoder; the others are compared with it and each other.
    tested = ("embeddings",)
    results = {
        name: classify_windows(x, n_permutations=n_permutations if name in tested else 0, verbose=verbose, **common)
        for name, x in features.items()
    }
    gain = results["embeddings+rates"].balanced_accuracy - results["firing_rates"].balanced_accuracy
    rng = np.random.default_rng(seed)
    gain_null = np.full(max(int(n_permutations), 0), np.nan)
    for i in _progress(range(gain_null.size), verbose, "permuted embeddings"):
        x = np.concatenate([emb[rng.permutation(t)], rates], axis=1)
        score = classify_windows(x, n_permutations=0, **common).balanced_accuracy
        gain_null[i] = score - results["firing_rates"].balanced_accuracy
    return BaselineDecoding(
        results=results,
        gain=float(gain),
        gain_null=gain_null,
        gain_p_value=permutation_p_value(gain, gain_null),
        paired_p_value=mcnemar_p_value(
            results["firing_rates"].y_true, results["embeddings+rates"].y_pred, results["firing_rates"].y_pred
        ),
        chance=results["embeddings"].chance,
    )
