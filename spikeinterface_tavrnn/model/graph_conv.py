"""GCN propagation with the normalised adjacency of each window computed once.

PyG's :class:`~torch_geometric.nn.GCNConv` recomputes ``D^-1/2 (A + I) D^-1/2`` at every call unless ``cached=True``,
and its cache holds a single graph. TAVRNN applies several GCNs to each of T different graphs at every epoch, so the
normalisation (PyG's :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`) is computed once per window
(:func:`normalized_adjacency`) and kept as a :class:`SymmetricAdjacency`: a PyG
:class:`~torch_geometric.EdgeIndex` in row-sorted (CSR) form, marked undirected, and its values. PyG's sparse product
of an undirected ``EdgeIndex`` uses the same CSR for the backward pass (``A^T = A``), so no transpose is built at any
product.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric import EdgeIndex
from torch_geometric.nn.conv.gcn_conv import gcn_norm

_QUIET: list = []  # non-empty once the first product has run with torch's one-time sparse warnings silenced

__all__ = ["SymmetricAdjacency", "normalized_adjacency", "symmetric_matrix", "PrecomputedGCNConv"]


@dataclass
class SymmetricAdjacency:
    """A symmetric sparse (N, N) matrix for products ``A @ x``, differentiable in ``x`` by autograd.

    Attributes
    ----------
    index : torch_geometric.EdgeIndex
        Row-sorted, undirected edge index (its CSR form is cached by PyG).
    values : Tensor (E,)
        Entries, in the order of ``index``.
    """

    index: EdgeIndex
    values: Tensor

    @property
    def num_nodes(self) -> int:
        return int(self.index.sparse_size(0))

    def __matmul__(self, x: Tensor) -> Tensor:
        values = self.values if self.values.dtype == x.dtype else self.values.to(x.dtype)
        if not _QUIET:
            # torch warns once per process that PyG's CSR tensors skip invariant checks (they are built valid here)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
                out = self.index.matmul(x, input_value=values)
            _QUIET.append(True)
            return out
        return self.index.matmul(x, input_value=values)

    def to(self, device: torch.device | str) -> "SymmetricAdjacency":
        return SymmetricAdjacency(self.index.to(device), self.values.to(device))

    def double(self) -> "SymmetricAdjacency":
        """The same matrix with float64 values."""
        return SymmetricAdjacency(self.index, self.values.double())

    def to_dense(self) -> Tensor:
        """The (N, N) dense matrix (for tests and small graphs)."""
        n = self.num_nodes
        dense = torch.zeros(n, n, dtype=self.values.dtype, device=self.values.device)
        dense.index_put_((self.index[0], self.index[1]), self.values, accumulate=True)
        return dense


def symmetric_matrix(edge_index: Tensor, values: Tensor, num_nodes: int) -> SymmetricAdjacency:
    """A :class:`SymmetricAdjacency` from entries ``(edge_index, values)`` of a symmetric matrix (duplicates summed)."""
    edge_index = torch.as_tensor(edge_index, dtype=torch.long)
    key = edge_index[0] * num_nodes + edge_index[1]
    unique, inverse = torch.unique(key, return_inverse=True)  # sorted by row, then column
    summed = torch.zeros(unique.numel(), dtype=values.dtype, device=values.device).index_add_(0, inverse, values)
    rows, cols = unique // num_nodes, unique % num_nodes
    index = EdgeIndex(
        torch.stack([rows, cols]), sparse_size=(num_nodes, num_nodes), sort_order="row", is_undirected=True
    )
    return SymmetricAdjacency(index, summed)


def normalized_adjacency(
    edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None, add_self_loops: bool = True
) -> SymmetricAdjacency:
    """GCN-normalised adjacency ``D^-1/2 (A + I) D^-1/2``.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E)
        Undirected edges, both directions, no self-loops needed.
    num_nodes : int
        Number of nodes N.
    edge_weight : Tensor of shape (E,) or None, default: None
        Non-negative weights (None: binary graph, as in the published model).
    add_self_loops : bool, default: True
        Add self-loops of weight 1 before normalising (the GCN renormalisation trick).

    Returns
    -------
    SymmetricAdjacency
        On ``edge_index.device``, float32.
    """
    ei, w = gcn_norm(edge_index, edge_weight, num_nodes, improved=False, add_self_loops=add_self_loops)
    return symmetric_matrix(ei, w.to(torch.float32), num_nodes)


class PrecomputedGCNConv(nn.Module):
    """A GCN layer (Kipf & Welling) on an already normalised adjacency: ``out = A (x W) + b``.

    The same function as ``GCNConv(normalize=True, add_self_loops=True)`` applied to the graph that ``A`` was built
    from with :func:`normalized_adjacency`; the parameters have the same shapes and initialisation.

    Parameters
    ----------
    in_channels : int
        Input feature size.
    out_channels : int
        Output feature size.
    bias : bool, default: True
        Learn an additive bias.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, adjacency: SymmetricAdjacency) -> Tensor:
        if self.out_channels < self.in_channels:  # (A x) W: the sparse product on the narrower side
            out = nn.functional.linear(adjacency @ x, self.lin.weight, self.bias)
        else:
            out = adjacency @ self.lin(x)
            if self.bias is not None:
                out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
