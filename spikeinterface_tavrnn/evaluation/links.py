"""Link detection and one-step link prediction scores of a TAVRNN model (VGRNN's intrinsic quality measures)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import TavrnnInputError
from ..graphs import GraphSequence

__all__ = ["score_links"]


def score_links(
    estimator: Any,
    graphs: GraphSequence,
    hidden_fraction: float = 0.15,
    n_prediction_windows: int | None = None,
    seed: int | None = None,
) -> dict:
    """VGRNN's intrinsic quality measures of a model with ``estimator``'s parameters: link detection and one-step
    link prediction.

    Protocol. The last ``n_prediction_windows`` windows are held out. In every other (training) window a fraction
    ``hidden_fraction`` of the undirected edges is hidden, and a new model with the estimator's parameters is
    trained on the reduced graphs (the estimator itself is not changed and need not be fitted).

    * Link detection: for each training window, the hidden edges are scored against as many sampled non-edges
      (pairs without an edge in the full graph) with the fitted decoder
      (:meth:`~spikeinterface_tavrnn.TAVRNN.link_logits`) on that window's posterior means.
    * Link prediction: the recurrence then runs on into the held-out windows (whose graphs the model never
      trained on); each held-out window t's edges are scored against as many sampled non-edges with the prior
      means of ``p(Z_t | H_{t-1})``, which depend on windows < t only.

    AUC and average precision are computed per window (scikit-learn, on the logits: the same ranking as the link
    probabilities without their rounding to 0 or 1) and averaged over windows.

    Parameters
    ----------
    estimator : TAVRNN
        Supplies the parameters of the model trained here.
    graphs : GraphSequence
        Any sequence of at least two windows.
    hidden_fraction : float, default: 0.15
        Fraction of each training window's edges hidden for link detection (VGRNN's protocol).
    n_prediction_windows : int or None, default: None
        Held-out windows for link prediction; None: ``min(3, n_windows // 4)`` (0 disables prediction).
    seed : int or None, default: None
        Seed of the edge split, the non-edge draws and the new model (default: the estimator's ``seed``).

    Returns
    -------
    dict
        ``detection_auc``, ``detection_ap``, ``prediction_auc``, ``prediction_ap`` (floats, NaN when not
        computed) and per-window arrays ``detection_auc_per_window``, ``detection_ap_per_window``,
        ``prediction_auc_per_window``, ``prediction_ap_per_window``, plus ``train_windows`` and
        ``prediction_windows`` (index arrays).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    graphs = estimator._check_graphs(graphs)
    if not 0 < hidden_fraction < 1:
        raise TavrnnInputError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}.")
    n_windows, n = len(graphs), graphs.num_nodes
    if n_prediction_windows is None:
        n_prediction_windows = min(3, n_windows // 4)
    n_prediction_windows = int(n_prediction_windows)
    n_train = n_windows - n_prediction_windows
    if n_train < 1:
        raise TavrnnInputError(
            f"n_prediction_windows={n_prediction_windows} leaves no training window out of {n_windows}."
        )
    if seed is None:
        seed = estimator.seed if estimator.seed is not None else getattr(estimator, "seed_", None)
    rng = np.random.default_rng(seed)

    def non_edges(t: int, count: int) -> np.ndarray:
        """``count`` distinct node pairs i < j without an edge in window t (fewer if there are not enough)."""
        ei = graphs.edge_index(t)
        existing = np.unique(ei[0] * n + ei[1])
        count = min(count, n * (n - 1) // 2 - existing.size // 2)
        chosen = np.zeros(0, dtype=np.int64)
        while chosen.size < count:
            i = rng.integers(0, n, 2 * count + 16)
            j = rng.integers(0, n, 2 * count + 16)
            keys = np.minimum(i, j) * n + np.maximum(i, j)
            keys = keys[(i != j) & ~np.isin(keys, existing)]
            _, first = np.unique(np.concatenate([chosen, keys]), return_index=True)
            merged = np.concatenate([chosen, keys])[np.sort(first)]  # keep draw order: reproducible
            chosen = merged[:count]
        return np.stack([chosen // n, chosen % n])

    reduced, hidden = [], []
    for t in range(n_windows):
        ei, w = graphs.edge_index(t), graphs.edge_weight(t)
        upper = ei[0] < ei[1]
        und, und_w = ei[:, upper], w[upper]
        if t < n_train:
            n_hide = int(round(hidden_fraction * und.shape[1]))
            perm = rng.permutation(und.shape[1])
            hide, keep = perm[:n_hide], np.sort(perm[n_hide:])
            hidden.append(und[:, hide])
            und, und_w = und[:, keep], und_w[keep]
        reduced.append((np.concatenate([und, und[::-1]], axis=1), np.concatenate([und_w, und_w])))
    reduced_graphs = GraphSequence(
        [r[0] for r in reduced],
        n,
        edge_weights=[r[1] for r in reduced],
        node_features=graphs.node_features,
        node_ids=graphs.node_ids,
        node_labels=graphs.node_labels,
        firing_rates_hz=graphs.firing_rates_hz,
    )
    params = {**estimator.get_params(), "seed": int(rng.integers(0, 2**31 - 1))}
    features = params["node_features"]
    per_window = not isinstance(features, str) and np.ndim(features) == 3
    if per_window:
        params["node_features"] = np.asarray(features)[:n_train]
    helper = type(estimator)(**params).fit(reduced_graphs[:n_train])
    new_features = features if per_window else None
    mu = helper.transform(reduced_graphs, node_features=new_features)
    prior = helper.prior_means(reduced_graphs, node_features=new_features)

    def scores(emb: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
        if pos.shape[1] == 0 or neg.shape[1] == 0:
            return math.nan, math.nan
        pairs = np.concatenate([pos, neg], axis=1)
        logit = helper.link_logits(emb[pairs[0]], emb[pairs[1]])
        label = np.concatenate([np.ones(pos.shape[1]), np.zeros(neg.shape[1])])
        # ranks of the logits, not of their sigmoid, which ties pairs whose probability rounds to 0 or 1
        return float(roc_auc_score(label, logit)), float(average_precision_score(label, logit))

    det = np.array([scores(mu[t], hidden[t], non_edges(t, hidden[t].shape[1])) for t in range(n_train)])
    pred = []
    for t in range(n_train, n_windows):
        ei = graphs.edge_index(t)
        pos = ei[:, ei[0] < ei[1]]
        pred.append(scores(prior[t], pos, non_edges(t, pos.shape[1])))
    pred = np.array(pred).reshape(-1, 2)

    def mean(x: np.ndarray) -> float:
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else math.nan

    return {
        "detection_auc": mean(det[:, 0]),
        "detection_ap": mean(det[:, 1]),
        "prediction_auc": mean(pred[:, 0]),
        "prediction_ap": mean(pred[:, 1]),
        "detection_auc_per_window": det[:, 0],
        "detection_ap_per_window": det[:, 1],
        "prediction_auc_per_window": pred[:, 0],
        "prediction_ap_per_window": pred[:, 1],
        "train_windows": np.arange(n_train),
        "prediction_windows": np.arange(n_train, n_windows),
    }
