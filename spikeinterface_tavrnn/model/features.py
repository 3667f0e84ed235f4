"""Turn a :class:`~spikeinterface_tavrnn.graphs.GraphSequence` into the tensors the model consumes.

Everything here is computed once per sequence (not per epoch): GCN-normalised adjacencies, feature matrices and the
positive pairs of the reconstruction loss.

Node feature kinds
------------------
``"identity"``
    One-hot node identities. Never materialised: the input layer is an embedding lookup (the same function as a
    Linear layer on one-hot rows), so 16,384 nodes cost 16,384 x h_dim parameters, not an N x N matrix.
``"adjacency"``
    Row i of window t's weighted adjacency with diagonal 1 (the thresholded graph), kept sparse.
``"graph"``
    The ``node_features`` array carried by the GraphSequence, shape (T, N, F) (for connectivity graphs: rows of the
    unthresholded ``|connectivity|`` matrix with diagonal 1, the published DishBrain features).
array
    User-supplied features, shape (N, F) (the same for every window) or (T, N, F).
``"structural"``
    Inductive per-window node statistics (:mod:`spikeinterface_tavrnn.structural`), computed and standardised by
    the estimator and passed in as an array; unlike identity / adjacency features they do not tie the model to
    one node set.

Wired history node (``attention_mode="published"`` with ``history_node=True``)
------------------------------------------------------------------------------
The published model appends one node connected to every node, itself included, with edge weight 1. Here it becomes
node index N in the adjacency and the reconstruction target; its features are its own one-hot row (identity),
its adjacency row (all ones, adjacency), or the mean of the real nodes' feature rows (graph / array features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .graph_conv import normalized_adjacency, symmetric_matrix

__all__ = ["PreparedSequence", "prepare_sequence", "resolve_feature_kind", "FEATURE_KINDS"]

FEATURE_KINDS = ("identity", "adjacency", "graph", "array", "structural")


@dataclass
class PreparedSequence:
    """Tensors for one graph sequence, on one device.

    Attributes
    ----------
    n_windows : int
        T.
    n_nodes : int
        Real nodes N.
    n_total : int
        Nodes seen by the model, N' = N + 1 with a wired history node, else N.
    adjacency : list of SymmetricAdjacency
        Per window, the GCN-normalised adjacency (N', N').
    feature_kind : str
        One of ``FEATURE_KINDS``.
    features : Tensor or list of Tensor or None
        None (identity), list of SymmetricAdjacency (N', N') (adjacency) or dense (T, N', F) (graph / array).
    pos_src, pos_dst : Tensor (P,)
        Positive pairs of the reconstruction target (edges in both directions plus the diagonal, the published GAE
        target A + I) of every window, window after window, as flat row indices into (T * N').
    pos_counts : Tensor
        Positive pairs per window, shape (T,) (float).
    edge_index_with_loops : list of Tensor
        Per window, the target's edge list in window-local indices (for negative sampling).
    derived : dict
        Tensors that the losses derive from the above once per sequence (see
        :func:`~spikeinterface_tavrnn.model.losses.upper_positives`); empty until first used.
    """

    n_windows: int
    n_nodes: int
    n_total: int
    adjacency: list
    feature_kind: str
    features: Any
    n_features: int
    pos_src: Tensor
    pos_dst: Tensor
    pos_counts: Tensor
    edge_index_with_loops: list = field(default_factory=list)
    device: torch.device = torch.device("cpu")
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def chunk(self, start: int, stop: int) -> "PreparedSequence":
        """The windows ``start .. stop - 1`` as a sequence of their own (for truncated back-propagation).

        Adjacencies and features are shared with this sequence (no copy); the positive pattern is rebuilt.
        """
        if not 0 <= start < stop <= self.n_windows:
            raise ValueError(f"chunk [{start}, {stop}) is outside the {self.n_windows} windows.")
        if start == 0 and stop == self.n_windows:
            return self
        loops = self.edge_index_with_loops[start:stop]
        positives = _positive_pairs(loops, self.n_total, self.device)
        # None (identity), one sparse matrix per window (adjacency) or a dense (T, N', F) tensor
        features = None if self.features is None else self.features[start:stop]
        return PreparedSequence(
            n_windows=stop - start,
            n_nodes=self.n_nodes,
            n_total=self.n_total,
            adjacency=self.adjacency[start:stop],
            feature_kind=self.feature_kind,
            features=features,
            n_features=self.n_features,
            **positives,
            edge_index_with_loops=loops,
            device=self.device,
        )


def resolve_feature_kind(node_features: Any, graphs) -> str:
    """Map the estimator's ``node_features`` parameter to a kind, checking it against ``graphs``."""
    if isinstance(node_features, str):
        if node_features == "auto":
            return "graph" if graphs.node_features is not None else "identity"
        if node_features not in ("identity", "adjacency", "graph", "structural"):
            raise ValueError(
                "node_features must be 'auto', 'identity', 'adjacency', 'graph', 'structural' or an array, got "
                f"{node_features!r}."
            )
        if node_features == "graph" and graphs.node_features is None:
            raise ValueError(
                "node_features='graph' needs a GraphSequence that carries node_features; build it with "
                "node_features=..., or use 'identity' / 'adjacency' / an array."
            )
        return node_features
    return "array"


def _check_array_features(array: Any, n_windows: int, n_nodes: int) -> np.ndarray:
    x = np.asarray(array, dtype=np.float32)
    if x.ndim == 2:
        if x.shape[0] != n_nodes:
            raise ValueError(f"node feature array of shape {x.shape} must have n_nodes = {n_nodes} rows.")
        x = np.broadcast_to(x, (n_windows,) + x.shape)
    elif x.ndim != 3 or x.shape[0] != n_windows or x.shape[1] != n_nodes:
        raise ValueError(
            f"node feature array must have shape (n_nodes, F) = ({n_nodes}, F) or (n_windows, n_nodes, F) = "
            f"({n_windows}, {n_nodes}, F), got {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("node feature array contains NaN or inf; replace them (e.g. np.nan_to_num) first.")
    return x


def prepare_sequence(
    graphs,
    feature_kind: str,
    feature_array: Any = None,
    wired_history_node: bool = False,
    use_edge_weight: bool = False,
    device: torch.device | str = "cpu",
) -> PreparedSequence:
    """Precompute everything the model needs from a GraphSequence.

    Parameters
    ----------
    graphs : GraphSequence
        The sequence.
    feature_kind : {"identity", "adjacency", "graph", "array"}
        See the module docstring.
    feature_array : array-like or None, default: None
        The features when ``feature_kind == "array"``.
    wired_history_node : bool, default: False
        Append the published history node (connected to every node) to adjacency, features and target.
    use_edge_weight : bool, default: False
        Use the (non-negative) edge weights in the GCN normalisation; False: binary graph, as published.
    device : torch.device or str, default: "cpu"
        Where the tensors live.

    Returns
    -------
    PreparedSequence
    """
    device = torch.device(device)
    n_windows, n = len(graphs), graphs.num_nodes
    n_total = n + 1 if wired_history_node else n
    hist = torch.arange(n, dtype=torch.long)
    adjacency, sparse_features, with_loops = [], [], []
    diag = torch.arange(n_total, dtype=torch.long)
    for t in range(n_windows):
        ei = torch.from_numpy(graphs.edge_index(t))
        w = torch.from_numpy(graphs.edge_weight(t))
        if use_edge_weight and w.numel() and float(w.min()) < 0:
            raise ValueError(
                f"window {t} has negative edge weights; GCN normalisation needs non-negative weights. "
                "Use use_edge_weight=False (binary graphs), or absolute values (to_graphs(absolute=True))."
            )
        if wired_history_node:
            hub = torch.full((n,), n, dtype=torch.long)
            ei = torch.cat([ei, torch.stack([hist, hub]), torch.stack([hub, hist])], dim=1)
            w = torch.cat([w, torch.ones(2 * n, dtype=w.dtype)])
        adjacency.append(
            normalized_adjacency(ei.to(device), n_total, w.to(device) if use_edge_weight else None).to(device)
        )
        if feature_kind == "adjacency":
            rows = torch.cat([ei, torch.stack([diag, diag])], dim=1)
            vals = torch.cat([w, torch.ones(n_total, dtype=w.dtype)]).to(torch.float32)
            sparse_features.append(symmetric_matrix(rows.to(device), vals.to(device), n_total))
        with_loops.append(torch.cat([ei, torch.stack([diag, diag])], dim=1).to(device))

    if feature_kind == "identity":
        features, n_features = None, n_total
    elif feature_kind == "adjacency":
        features, n_features = sparse_features, n_total
    else:
        if feature_kind == "graph":
            if graphs.node_features is None:
                raise ValueError("node_features='graph' needs a GraphSequence that carries node_features.")
            x = graphs.node_features
        elif feature_kind in ("array", "structural"):
            x = _check_array_features(feature_array, n_windows, n)
        else:
            raise ValueError(f"unknown feature kind {feature_kind!r}; expected one of {FEATURE_KINDS}.")
        if wired_history_node:
            x = np.concatenate([x, x.mean(axis=1, keepdims=True)], axis=1)
        features = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=device)
        n_features = int(x.shape[2])
    positives = _positive_pairs(with_loops, n_total, device)
    return PreparedSequence(
        n_windows=n_windows,
        n_nodes=n,
        n_total=n_total,
        adjacency=adjacency,
        feature_kind=feature_kind,
        features=features,
        n_features=n_features,
        **positives,
        edge_index_with_loops=with_loops,
        device=device,
    )


def _positive_pairs(with_loops: list, n_total: int, device: torch.device) -> dict:
    """The positive pairs of every window as flat (T * N') row indices, and their counts per window."""
    src = torch.cat([loops[0] + t * n_total for t, loops in enumerate(with_loops)]).to(device)
    dst = torch.cat([loops[1] + t * n_total for t, loops in enumerate(with_loops)]).to(device)
    counts = torch.tensor([loops.shape[1] for loops in with_loops], dtype=torch.float32, device=device)
    return {"pos_src": src, "pos_dst": dst, "pos_counts": counts}
