"""Node groups (region, well) in node embeddings: k-means per window against the known groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial.distance import cdist

from .statistics import _encode, _progress, permutation_p_value


CLUSTERING_METRICS = ("ari", "nmi", "silhouette")


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
    n_init: int = 10,
    normalize: bool = False,
) -> ClusteringResult:
    """Do a window's node embeddings separate known node groups (brain region, chip subregion, MEA well)?

    For each window, k-means (``n_init`` restarts) on the embeddings themselves (never on t-SNE / UMAP coordinates,
    whose distances are not preserved) is scored against the groups with the adjusted Rand index and normalised mutual
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
    n_init : int, default: 10
        k-means restarts per window (the best of them by inertia is kept); fewer is faster, with many clusters
        (k = 48 wells) 3 restarts usually find the same partition.
    normalize : bool, default: False
        True: scale each node's embedding to unit length before k-means and the silhouette (cosine geometry).
        Under an inner-product decoder ``sigmoid(z_i . z_j)`` (TAVRNN, VGRNN, VGAE) a node's norm scales the
        confidence of all of its links (activity, degree), while its direction says which nodes it links to; groups
        are then directions, and nodes of one group with different norms can be split (and others merged) by
        Euclidean k-means on the raw embeddings. All-zero rows stay zero.

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
    if normalize:
        norms = np.linalg.norm(z, axis=-1, keepdims=True)
        z = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
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
            clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(zt)
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
