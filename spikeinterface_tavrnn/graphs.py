"""A sequence of undirected graphs over a fixed node set, one graph per time window.

:class:`GraphSequence` is the input of :class:`spikeinterface_tavrnn.TAVRNN`. It is not specific to spikes: any
dynamic graph (a list of adjacency matrices, or of edge lists) can be wrapped with it.

Storage rules
-------------
* Graphs are undirected and stored with both directions: edge ``(i, j)`` is present iff ``(j, i)`` is, with the same
  weight. Asymmetric input is an error unless ``symmetrize=True`` (see :meth:`GraphSequence.__init__`).
* Stored graphs have no self-loops: they are dropped on input (the diagonal of an adjacency matrix is ignored).
  The model adds self-loops itself, as GCN normalisation requires.
* Edges of each window are sorted by (row, column), without duplicates.
* A window with no edges is allowed: the model then sees only self-loops for it (each node keeps its own features).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["GraphSequence"]


def _slice_windows(windows: Any, key: slice) -> Any:
    """Slice a ``Windows``-like object (``.starts``, ``.stops``, optional ``.labels``)."""
    if windows is None:
        return None
    try:
        return windows[key]
    except Exception:
        pass
    starts = np.asarray(windows.starts)[key]
    stops = np.asarray(windows.stops)[key]
    labels = getattr(windows, "labels", None)
    labels = None if labels is None else np.asarray(labels)[key]
    try:
        return type(windows)(starts=starts, stops=stops, labels=labels)
    except Exception:
        return _SlicedWindows(starts, stops, labels)


class _SlicedWindows(SimpleNamespace):
    """Fallback container for a slice of a windows object that cannot slice itself."""

    def __init__(self, starts: np.ndarray, stops: np.ndarray, labels: np.ndarray | None):
        super().__init__(starts=starts, stops=stops, labels=labels)

    def __len__(self) -> int:
        return len(self.starts)


class GraphSequence:
    """A sequence of T undirected graphs over the same N nodes (one graph per time window).

    Parameters
    ----------
    edge_indices : list of array-like of int, shape (2, E_t)
        One edge list per window; undirected graphs stored with both directions. Self-loops are dropped.
    num_nodes : int
        Number of nodes N, shared by every window.
    edge_weights : list of array-like of float, shape (E_t,), or None, default: None
        Edge weights aligned with ``edge_indices``; None means all ones. Must be finite.
    node_features : array-like of float, shape (T, N, F), or None, default: None
        Node features carried with the graphs (for connectivity graphs: rows of the unthresholded
        ``|connectivity|`` matrix with diagonal 1, the published DishBrain features).
    node_ids : array-like, shape (N,), or None, default: None
        Node (unit) identifiers.
    windows : Windows or None, default: None
        The time windows (an object with ``.starts``, ``.stops``, ``.labels`` and ``len``); carried, sliced with
        the sequence, and never interpreted.
    node_labels : array-like, shape (N,), or None, default: None
        Per-node labels (region, well, ...).
    symmetrize : bool, default: False
        If False, a directed edge without its reverse (or with a different reverse weight) is an error. If True, the
        graph is made undirected: the union of both directions, with the mean weight where both exist and the
        single weight where only one does.
    firing_rates_hz : array-like of float, shape (T, N), or None, default: None
        Firing rate of each node in each window, in Hz, when the graphs come from spikes (set by
        :meth:`ConnectivitySequence.to_graphs <spikeinterface_tavrnn.connectivity.base.ConnectivitySequence.to_graphs>`);
        used by the ``"structural"`` node features of :class:`~spikeinterface_tavrnn.TAVRNN`.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> a = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    >>> graphs = GraphSequence.from_adjacency([a, a, np.zeros((3, 3))])
    >>> len(graphs), graphs.num_nodes, graphs.num_edges.tolist()
    (3, 3, [2, 2, 0])
    """

    def __init__(
        self,
        edge_indices: Sequence[Any],
        num_nodes: int,
        edge_weights: Sequence[Any] | None = None,
        node_features: Any = None,
        node_ids: Any = None,
        windows: Any = None,
        node_labels: Any = None,
        symmetrize: bool = False,
        firing_rates_hz: Any = None,
    ):
        if edge_indices is None or len(edge_indices) == 0:
            raise ValueError(
                "GraphSequence needs at least one window, got an empty sequence of edge indices; "
                "pass one (2, E) edge array per window (an empty (2, 0) array for a window without edges)."
            )
        num_nodes_int = int(num_nodes)
        if num_nodes_int != num_nodes or num_nodes_int < 1:
            raise ValueError(f"num_nodes must be a positive integer, got {num_nodes!r}.")
        n_windows = len(edge_indices)
        if edge_weights is not None and len(edge_weights) != n_windows:
            raise ValueError(
                f"edge_weights has {len(edge_weights)} entries but edge_indices has {n_windows} windows; "
                "give one weight array per window, or None for unit weights."
            )
        self._num_nodes = num_nodes_int
        self._edge_indices: list[np.ndarray] = []
        self._edge_weights: list[np.ndarray] = []
        for t in range(n_windows):
            ei, ew = self._clean_window(
                t, edge_indices[t], None if edge_weights is None else edge_weights[t], symmetrize=symmetrize
            )
            self._edge_indices.append(ei)
            self._edge_weights.append(ew)

        self.node_features = self._check_features(node_features, n_windows, num_nodes_int)
        self.node_ids = self._check_node_array(node_ids, "node_ids", num_nodes_int)
        self.node_labels = self._check_node_array(node_labels, "node_labels", num_nodes_int)
        self.firing_rates_hz = self._check_rates(firing_rates_hz, n_windows, num_nodes_int)
        if windows is not None and hasattr(windows, "__len__") and len(windows) != n_windows:
            raise ValueError(
                f"windows has {len(windows)} entries but there are {n_windows} graphs; "
                "pass the Windows the graphs were computed from."
            )
        self.windows = windows

    # ------------------------------------------------------------------ validation
    def _clean_window(self, t: int, edge_index: Any, edge_weight: Any, symmetrize: bool):
        n = self._num_nodes
        ei = np.asarray(edge_index)
        if ei.size == 0:
            ei = ei.reshape(2, 0)
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_indices[{t}] must have shape (2, E), got {ei.shape}.")
        if not (np.issubdtype(ei.dtype, np.integer) or ei.size == 0):
            if np.issubdtype(ei.dtype, np.floating) and np.all(np.isfinite(ei)) and np.all(ei == np.round(ei)):
                ei = ei.astype(np.int64)
            else:
                raise ValueError(f"edge_indices[{t}] must hold integer node indices, got dtype {ei.dtype}.")
        ei = ei.astype(np.int64, copy=False)
        n_edges = ei.shape[1]
        if edge_weight is None:
            ew = np.ones(n_edges, dtype=np.float32)
        else:
            ew = np.asarray(edge_weight, dtype=np.float64).reshape(-1)
            if ew.shape[0] != n_edges:
                raise ValueError(
                    f"edge_weights[{t}] has {ew.shape[0]} values but edge_indices[{t}] has {n_edges} edges."
                )
            if not np.all(np.isfinite(ew)):
                raise ValueError(
                    f"edge_weights[{t}] contains NaN or inf; replace them (e.g. np.nan_to_num) or drop those edges."
                )
        if n_edges and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(
                f"edge_indices[{t}] refers to node {int(ei.min()) if ei.min() < 0 else int(ei.max())}, "
                f"outside 0..{n - 1} (num_nodes={n}); check num_nodes or the edge list."
            )
        keep = ei[0] != ei[1]  # stored graphs exclude self-loops; the model adds them
        ei, ew = ei[:, keep], ew[keep]
        keys = ei[0] * n + ei[1]
        order = np.argsort(keys, kind="stable")
        keys, ei, ew = keys[order], ei[:, order], ew[order]
        if keys.size > 1 and np.any(keys[1:] == keys[:-1]):
            dup = int(np.flatnonzero(keys[1:] == keys[:-1])[0])
            raise ValueError(
                f"edge_indices[{t}] has duplicate edge ({int(ei[0, dup])}, {int(ei[1, dup])}); "
                "coalesce duplicates (e.g. torch_geometric.utils.coalesce) before building the GraphSequence."
            )
        rev_keys = ei[1] * n + ei[0]
        rev_order = np.argsort(rev_keys, kind="stable")
        symmetric = np.array_equal(rev_keys[rev_order], keys) and np.array_equal(ew[rev_order], ew)
        if not symmetric:
            if not symmetrize:
                raise ValueError(
                    f"graph {t} is not symmetric (an edge lacks its reverse, or the two directions have different "
                    "weights); GraphSequence stores undirected graphs with both directions. Pass symmetrize=True "
                    "to take the union of both directions (mean weight where both exist)."
                )
            a = sp.coo_matrix((ew, (ei[0], ei[1])), shape=(n, n)).tocsr()
            ones = sp.coo_matrix((np.ones_like(ew), (ei[0], ei[1])), shape=(n, n)).tocsr()
            total = (a + a.T).tocoo()
            count = (ones + ones.T).tocsr()
            cnt = np.asarray(count[total.row, total.col]).reshape(-1)
            keys = total.row.astype(np.int64) * n + total.col
            order = np.argsort(keys)
            ei = np.vstack([total.row[order], total.col[order]]).astype(np.int64)
            ew = (total.data / cnt)[order]
        return np.ascontiguousarray(ei), np.ascontiguousarray(ew, dtype=np.float32)

    @staticmethod
    def _check_features(node_features: Any, n_windows: int, num_nodes: int) -> np.ndarray | None:
        if node_features is None:
            return None
        x = np.asarray(node_features, dtype=np.float32)
        if x.ndim == 2 and n_windows == 1 and x.shape[0] == num_nodes:
            x = x[None]
        if x.ndim != 3 or x.shape[0] != n_windows or x.shape[1] != num_nodes:
            raise ValueError(
                f"node_features must have shape (n_windows, n_nodes, n_features) = ({n_windows}, {num_nodes}, F), "
                f"got {x.shape}."
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("node_features contains NaN or inf; replace them (e.g. np.nan_to_num) first.")
        return x

    @staticmethod
    def _check_rates(rates: Any, n_windows: int, num_nodes: int) -> np.ndarray | None:
        if rates is None:
            return None
        x = np.asarray(rates, dtype=np.float64)
        if x.shape != (n_windows, num_nodes):
            raise ValueError(
                f"firing_rates_hz must have shape (n_windows, n_nodes) = ({n_windows}, {num_nodes}), got {x.shape}."
            )
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError("firing_rates_hz must be finite and non-negative (rates in Hz).")
        return x

    @staticmethod
    def _check_node_array(values: Any, name: str, num_nodes: int) -> np.ndarray | None:
        if values is None:
            return None
        arr = np.asarray(values)
        if arr.shape != (num_nodes,):
            raise ValueError(f"{name} must have shape (n_nodes,) = ({num_nodes},), got {arr.shape}.")
        return arr

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_adjacency(
        cls,
        adjacency: Any,
        node_features: Any = None,
        node_ids: Any = None,
        windows: Any = None,
        node_labels: Any = None,
        weighted: bool = True,
        symmetrize: bool = False,
        firing_rates_hz: Any = None,
    ) -> "GraphSequence":
        """Build a sequence from adjacency matrices.

        Parameters
        ----------
        adjacency : array-like, shape (T, N, N), or list of (N, N) dense arrays / scipy.sparse matrices
            One adjacency matrix per window. Non-zero entries are edges; the diagonal is ignored.
        node_features, node_ids, windows, node_labels, firing_rates_hz :
            As in :class:`GraphSequence`.
        weighted : bool, default: True
            Keep the matrix values as edge weights; if False every edge has weight 1.
        symmetrize : bool, default: False
            As in :class:`GraphSequence`: asymmetric matrices are an error unless True.

        Returns
        -------
        GraphSequence
        """
        if adjacency is None:
            raise ValueError("adjacency is None; pass a (T, N, N) array or a list of (N, N) matrices.")
        if isinstance(adjacency, np.ndarray):
            if adjacency.ndim == 2:
                adjacency = adjacency[None]
            if adjacency.ndim != 3:
                raise ValueError(f"adjacency array must have shape (T, N, N), got {adjacency.shape}.")
            mats = list(adjacency)
        elif sp.issparse(adjacency):
            mats = [adjacency]
        else:
            mats = list(adjacency)
        if len(mats) == 0:
            raise ValueError(
                "GraphSequence.from_adjacency got an empty sequence; pass at least one (N, N) matrix."
            )
        shapes = [tuple(m.shape) for m in mats]
        n = shapes[0][0] if len(shapes[0]) == 2 else -1
        for t, shape in enumerate(shapes):
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"adjacency[{t}] must be a square (N, N) matrix, got shape {shape}.")
            if shape[0] != n:
                raise ValueError(
                    f"adjacency[{t}] has shape {shape} but adjacency[0] has shape {shapes[0]}: every window must "
                    "cover the same nodes (pad missing units with empty rows/columns, or select common units)."
                )
        edge_indices, edge_weights = [], []
        for t, m in enumerate(mats):
            if sp.issparse(m):
                coo = sp.coo_matrix(m)
                coo.sum_duplicates()
                rows, cols, vals = coo.row, coo.col, np.asarray(coo.data, dtype=np.float64)
            else:
                d = np.asarray(m, dtype=np.float64)
                if not np.all(np.isfinite(d)):
                    raise ValueError(
                        f"adjacency[{t}] contains NaN or inf; replace them (e.g. np.nan_to_num) first."
                    )
                rows, cols = np.nonzero(d)
                vals = d[rows, cols]
            if not np.all(np.isfinite(vals)):
                raise ValueError(f"adjacency[{t}] contains NaN or inf; replace them (e.g. np.nan_to_num) first.")
            keep = vals != 0
            rows, cols, vals = rows[keep], cols[keep], vals[keep]
            edge_indices.append(np.vstack([rows, cols]).astype(np.int64))
            edge_weights.append(vals if weighted else np.ones_like(vals))
        return cls(
            edge_indices,
            n,
            edge_weights=edge_weights,
            node_features=node_features,
            node_ids=node_ids,
            windows=windows,
            node_labels=node_labels,
            symmetrize=symmetrize,
            firing_rates_hz=firing_rates_hz,
        )

    # ------------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return len(self._edge_indices)

    @property
    def num_nodes(self) -> int:
        """Number of nodes N."""
        return self._num_nodes

    @property
    def num_windows(self) -> int:
        """Number of windows T."""
        return len(self._edge_indices)

    @property
    def num_edges(self) -> np.ndarray:
        """Number of undirected edges in each window, shape (T,)."""
        return np.array([ei.shape[1] // 2 for ei in self._edge_indices], dtype=np.int64)

    @property
    def num_features(self) -> int | None:
        """Feature dimension F of ``node_features``, or None when the sequence carries none."""
        return None if self.node_features is None else int(self.node_features.shape[2])

    def density(self) -> np.ndarray:
        """Fraction of possible undirected edges present in each window, shape (T,)."""
        n = self._num_nodes
        possible = n * (n - 1) / 2
        if possible == 0:
            return np.zeros(len(self), dtype=np.float64)
        return self.num_edges / possible

    def edge_index(self, t: int) -> np.ndarray:
        """Edge index of window ``t``, int64 array (2, E_t) with both directions."""
        return self._edge_indices[self._check_t(t)]

    def edge_weight(self, t: int) -> np.ndarray:
        """Edge weights of window ``t``, float32 array (E_t,)."""
        return self._edge_weights[self._check_t(t)]

    def _check_t(self, t: int) -> int:
        t = int(t)
        if not -len(self) <= t < len(self):
            raise IndexError(f"window index {t} out of range for a sequence of {len(self)} windows.")
        return t % len(self)

    def __getitem__(self, key: int | slice):
        if isinstance(key, slice):
            idx = range(len(self))[key]
            if len(idx) == 0:
                raise ValueError(f"slice {key} selects no window from a sequence of {len(self)}.")
            out = object.__new__(GraphSequence)
            out._num_nodes = self._num_nodes
            out._edge_indices = [self._edge_indices[i] for i in idx]
            out._edge_weights = [self._edge_weights[i] for i in idx]
            out.node_features = None if self.node_features is None else self.node_features[key]
            out.node_ids = self.node_ids
            out.node_labels = self.node_labels
            out.firing_rates_hz = None if self.firing_rates_hz is None else self.firing_rates_hz[key]
            out.windows = _slice_windows(self.windows, key)
            return out
        if isinstance(key, (int, np.integer)):
            return self._to_data(self._check_t(key))
        raise TypeError(f"GraphSequence indices must be int or slice, got {type(key).__name__}.")

    def __iter__(self):
        for t in range(len(self)):
            yield self._to_data(t)

    def _to_data(self, t: int):
        import torch
        from torch_geometric.data import Data

        x = None if self.node_features is None else torch.from_numpy(self.node_features[t])
        return Data(
            x=x,
            edge_index=torch.from_numpy(self._edge_indices[t]),
            edge_weight=torch.from_numpy(self._edge_weights[t]),
            num_nodes=self._num_nodes,
        )

    def to_pyg(self) -> list:
        """One ``torch_geometric.data.Data`` per window (``edge_index``, ``edge_weight``, ``x`` when present)."""
        return [self._to_data(t) for t in range(len(self))]

    def to_dense(self, t: int | None = None) -> np.ndarray:
        """Weighted adjacency as float32: (N, N) for window ``t``, or (T, N, N) when ``t`` is None."""
        n = self._num_nodes
        if t is not None:
            t = self._check_t(t)
            out = np.zeros((n, n), dtype=np.float32)
            ei = self._edge_indices[t]
            out[ei[0], ei[1]] = self._edge_weights[t]
            return out
        out = np.zeros((len(self), n, n), dtype=np.float32)
        for s in range(len(self)):
            ei = self._edge_indices[s]
            out[s, ei[0], ei[1]] = self._edge_weights[s]
        return out

    def to_scipy(self, t: int) -> sp.csr_matrix:
        """Weighted adjacency of window ``t`` as a scipy CSR matrix (N, N)."""
        t = self._check_t(t)
        ei = self._edge_indices[t]
        n = self._num_nodes
        return sp.csr_matrix((self._edge_weights[t], (ei[0], ei[1])), shape=(n, n))

    def __repr__(self) -> str:
        feats = "" if self.node_features is None else f", num_features={self.node_features.shape[2]}"
        return (
            f"GraphSequence(num_windows={len(self)}, num_nodes={self._num_nodes}, "
            f"mean_edges={float(self.num_edges.mean()):.1f}{feats})"
        )
