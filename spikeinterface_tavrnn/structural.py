"""Inductive node features computed from each graph: what lets one TAVRNN model embed recordings of any size.

Identity and adjacency features tie a model to one node set (row i of the input weight belongs to node i). The
features here describe a node by its role in each window's graph instead, so a model trained on some recordings
can embed a recording it has never seen, with any number of units (``TAVRNN(node_features="structural")``).

Features, per window and node (``N`` nodes, ``A`` the binary graph, ``W`` its |edge weights|):

==========================  ==========================================================================================
``log_degree``              ``log(1 + k_i)``, ``k_i`` the number of neighbours
``relative_degree``         ``k_i / (N - 1)``
``log_strength``            ``log(1 + s_i)``, ``s_i = sum_j W_ij``
``mean_edge_weight``        ``s_i / k_i`` (0 for isolated nodes)
``clustering``              local clustering coefficient ``(A^3)_ii / (k_i (k_i - 1))`` (0 when ``k_i < 2``)
``neighbour_degree``        mean degree of the neighbours, divided by ``N - 1`` (0 for isolated nodes)
``profile_mean``            mean of the node's off-diagonal connectivity profile (see below)
``profile_std``             its standard deviation
``profile_max``             its maximum
``profile_q90``             its 90th percentile
``log_rate``                ``log(1 + rate_hz)`` (only when the graphs carry ``firing_rates_hz``)
``rate_percentile``         rank of the rate within the window, in [0, 1] (idem)
==========================  ==========================================================================================

The connectivity profile of a node is its row of the graphs' square ``node_features`` when they are the
``(T, N, N)`` connectivity rows that :meth:`ConnectivitySequence.to_graphs
<spikeinterface_tavrnn.connectivity.base.ConnectivitySequence.to_graphs>` attaches (the unthresholded ``|value|``),
else its row of the thresholded weighted adjacency ``W``. Every feature is size-free (logarithms, fractions, ranks)
so that recordings of different sizes are comparable; the estimator standardises them with the mean and standard
deviation of its training recordings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "structural_node_features",
    "structural_feature_names",
    "GRAPH_FEATURES",
    "PROFILE_FEATURES",
    "RATE_FEATURES",
]

GRAPH_FEATURES = (
    "log_degree",
    "relative_degree",
    "log_strength",
    "mean_edge_weight",
    "clustering",
    "neighbour_degree",
)
PROFILE_FEATURES = ("profile_mean", "profile_std", "profile_max", "profile_q90")
RATE_FEATURES = ("log_rate", "rate_percentile")


def structural_feature_names(graphs) -> tuple[str, ...]:
    """Names of the features :func:`structural_node_features` computes for ``graphs``, in column order."""
    names = GRAPH_FEATURES + PROFILE_FEATURES
    if getattr(graphs, "firing_rates_hz", None) is not None:
        names = names + RATE_FEATURES
    return names


def _profile_rows(graphs, t: int, weighted: sp.csr_matrix) -> np.ndarray:
    """The (N, N) profile matrix of window t with the diagonal excluded (set to NaN)."""
    n = graphs.num_nodes
    features = graphs.node_features
    if features is not None and features.shape[2] == n:
        rows = np.abs(features[t]).astype(np.float64)
    else:
        rows = weighted.toarray()
    rows[np.arange(n), np.arange(n)] = np.nan
    return rows


def _percentile_rank(values: np.ndarray) -> np.ndarray:
    """Rank of each value in [0, 1] (ties get their mean rank); 0.5 for a single value."""
    n = values.size
    if n == 1:
        return np.full(1, 0.5)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    # mean rank within ties
    uniq, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse] / (n - 1)


def structural_node_features(graphs, verbose: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    """Inductive node features of every node in every window (see the module docstring).

    Parameters
    ----------
    graphs : GraphSequence
        The graphs (any number of nodes).
    verbose : bool, default: False
        Show a progress bar over windows.

    Returns
    -------
    features : numpy.ndarray
        float32 (n_windows, n_nodes, n_features), unstandardised.
    names : tuple of str
        Feature names, in column order.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> triangle_and_isolated = np.zeros((4, 4))
    >>> triangle_and_isolated[:3, :3] = 1 - np.eye(3)
    >>> x, names = structural_node_features(GraphSequence.from_adjacency([triangle_and_isolated]))
    >>> column = {name: i for i, name in enumerate(names)}
    >>> float(x[0, 0, column["clustering"]]), float(x[0, 3, column["log_degree"]])  # a triangle node, the isolated one
    (1.0, 0.0)
    """
    from tqdm.auto import tqdm

    n = graphs.num_nodes
    names = structural_feature_names(graphs)
    out = np.zeros((len(graphs), n, len(names)), dtype=np.float32)
    denominator = max(n - 1, 1)
    for t in tqdm(range(len(graphs)), desc="structural features", disable=not verbose, leave=False):
        ei = graphs.edge_index(t)
        w = np.abs(graphs.edge_weight(t).astype(np.float64))
        binary = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
        weighted = sp.csr_matrix((w, (ei[0], ei[1])), shape=(n, n))
        degree = np.asarray(binary.sum(axis=1)).ravel()
        strength = np.asarray(weighted.sum(axis=1)).ravel()
        has_edges = degree > 0
        closed = np.asarray((binary @ binary).multiply(binary).sum(axis=1)).ravel()  # (A^3)_ii
        pairs = degree * (degree - 1)
        neighbour_degree_sum = binary @ degree
        columns = [
            np.log1p(degree),
            degree / denominator,
            np.log1p(strength),
            np.divide(strength, degree, out=np.zeros(n), where=has_edges),
            np.divide(closed, pairs, out=np.zeros(n), where=pairs > 0),
            np.divide(neighbour_degree_sum, degree * denominator, out=np.zeros(n), where=has_edges),
        ]
        if n > 1:
            profile = _profile_rows(graphs, t, weighted)
            columns += [
                np.nanmean(profile, axis=1),
                np.nanstd(profile, axis=1),
                np.nanmax(profile, axis=1),
                np.nanquantile(profile, 0.9, axis=1),
            ]
        else:
            columns += [np.zeros(n)] * len(PROFILE_FEATURES)
        if graphs.firing_rates_hz is not None:
            rates = graphs.firing_rates_hz[t]
            columns += [np.log1p(rates), _percentile_rank(rates)]
        out[t] = np.stack(columns, axis=1)
    return out, names
