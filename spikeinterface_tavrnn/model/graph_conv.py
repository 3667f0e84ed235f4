"""GCN propagation with the normalised adjacency of each window computed once.

PyG's :class:`~torch_geometric.nn.GCNConv` recomputes ``D^-1/2 (A + I) D^-1/2`` at every call unless ``cached=True``,
and its cache holds a single graph. TAVRNN applies several GCNs to each of T different graphs at every epoch, so the
normalisation (that of PyG's :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`) is computed once per window
(:func:`normalized_adjacency`) and kept as a :class:`SymmetricAdjacency`: a PyG
:class:`~torch_geometric.EdgeIndex` in row-sorted (CSR) form, marked undirected, its values (None for a binary
graph) and the ``D^-1/2`` scaling. PyG's sparse product of an undirected, unweighted ``EdgeIndex`` uses the same CSR
for the backward pass (``A^T = A``), so no transpose is built and no value is gathered at any product.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric import EdgeIndex
from torch_geometric.utils import add_remaining_self_loops

_QUIET: list = []  # non-empty once the first product has run with torch's one-time sparse warnings silenced

__all__ = ["SymmetricAdjacency", "gcn_scale", "normalized_adjacency", "symmetric_matrix", "PrecomputedGCNConv"]


@dataclass
class SymmetricAdjacency:
    """A symmetric sparse (N, N) matrix ``diag(scale) S diag(scale)`` for products ``A @ x``, differentiable in ``x``
    by autograd.

    The GCN normalisation ``D^-1/2 (A + I) D^-1/2`` is kept factored: ``S = A + I`` and ``scale = D^-1/2``. For the
    binary graphs of the published model every entry of ``S`` is 1, so ``values`` is None and PyG's product takes
    its unweighted path, whose backward reuses the row-sorted matrix as it is (``S^T = S``) instead of gathering
    permuted values at every backward pass.

    Attributes
    ----------
    index : torch_geometric.EdgeIndex
        Row-sorted, undirected edge index (its CSR form is cached by PyG).
    values : Tensor (E,) or None
        Entries of ``S``, in the order of ``index``; None when they are all 1.
    scale : Tensor (N, 1) or None
        Row and column scaling; None for no scaling.
    """

    index: EdgeIndex
    values: Tensor | None
    scale: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.index.sparse_size(0))

    def _product(self, x: Tensor) -> Tensor:
        values = self.values
        if values is None and x.dtype != torch.float32:  # PyG's implicit unit values are float32
            values = torch.ones(self.index.size(1), dtype=x.dtype, device=x.device)
        if values is not None and values.dtype != x.dtype:
            values = values.to(x.dtype)
        if self.scale is None:
            return self.index.matmul(x, input_value=values)
        scale = self.scale if self.scale.dtype == x.dtype else self.scale.to(x.dtype)
        return self.index.matmul(x * scale, input_value=values) * scale

    def __matmul__(self, x: Tensor) -> Tensor:
        if not _QUIET:
            # torch warns once per process that PyG's CSR tensors skip invariant checks (they are built valid here)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
                out = self._product(x)
            _QUIET.append(True)
            return out
        return self._product(x)

    def _map(self, fn) -> "SymmetricAdjacency":
        return SymmetricAdjacency(
            self.index, None if self.values is None else fn(self.values), None if self.scale is None else fn(self.scale)
        )

    def to(self, device: torch.device | str) -> "SymmetricAdjacency":
        moved = self._map(lambda v: v.to(device))
        moved.index = self.index.to(device)
        return moved

    def double(self) -> "SymmetricAdjacency":
        """The same matrix with float64 values."""
        return self._map(lambda v: v.double())

    def to_dense(self) -> Tensor:
        """The (N, N) dense matrix (for tests and small graphs)."""
        n = self.num_nodes
        like = self.values if self.values is not None else self.scale
        dtype = like.dtype if like is not None else torch.float32
        values = self.values if self.values is not None else torch.ones(self.index.size(1), dtype=dtype)
        dense = torch.zeros(n, n, dtype=dtype, device=self.index.device)
        dense.index_put_((self.index[0], self.index[1]), values.to(dense.device), accumulate=True)
        if self.scale is not None:
            dense = self.scale * dense * self.scale.t()
        return dense


def symmetric_matrix(edge_index: Tensor, values: Tensor, num_nodes: int) -> SymmetricAdjacency:
    """A :class:`SymmetricAdjacency` from entries ``(edge_index, values)`` of a symmetric matrix (duplicates summed;
    no scaling; ``values`` kept even when they are all 1)."""
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
    """GCN-normalised adjacency ``D^-1/2 (A + I) D^-1/2`` (the normalisation of PyG's
    :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`), kept factored as ``S = A + I`` and ``scale = D^-1/2``.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E)
        Undirected edges, both directions, no self-loops needed.
    num_nodes : int
        Number of nodes N.
    edge_weight : Tensor of shape (E,) or None, default: None
        Non-negative weights (None: binary graph, as in the published model).
    add_self_loops : bool, default: True
        Add self-loops of weight 1 (to nodes without one) before normalising (the GCN renormalisation trick).

    Returns
    -------
    SymmetricAdjacency
        On ``edge_index.device``, float32.
    """
    edge_index = torch.as_tensor(edge_index, dtype=torch.long)
    weight = torch.ones(edge_index.size(1), device=edge_index.device) if edge_weight is None else edge_weight
    weight = weight.to(torch.float32)
    if add_self_loops:
        edge_index, weight = add_remaining_self_loops(edge_index, weight, 1.0, num_nodes)
    matrix = symmetric_matrix(edge_index, weight, num_nodes)
    degree = torch.zeros(num_nodes, dtype=torch.float32, device=weight.device)
    degree.index_add_(0, matrix.index[0].as_subclass(Tensor), matrix.values)
    values = None if bool((matrix.values == 1).all()) else matrix.values
    return SymmetricAdjacency(matrix.index, values, gcn_scale(degree).unsqueeze(1))


def gcn_scale(degree: Tensor) -> Tensor:
    """The GCN scaling ``D^-1/2`` of the degrees of ``A + I`` (any shape), 0 where a degree is 0."""
    return degree.pow(-0.5).masked_fill_(degree == 0, 0.0)


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
        if self.in_channels < self.out_channels:  # (A x) W: the sparse product on the narrower side
            out = nn.functional.linear(adjacency @ x, self.lin.weight, self.bias)
        else:
            out = adjacency @ self.lin(x)
            if self.bias is not None:
                out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
