"""GCN propagation with a normalised adjacency computed once per window.

PyG's :class:`~torch_geometric.nn.GCNConv` recomputes ``D^-1/2 (A + I) D^-1/2`` at every call unless ``cached=True``,
and its cache holds a single graph. TAVRNN applies about five GCNs to each of T different graphs at every epoch, so
the normalisation (computed with PyG's :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`) is done once per window
(:func:`normalized_adjacency`) and reused by every layer and epoch.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.inits import zeros

__all__ = ["normalized_adjacency", "symmetric_spmm", "PrecomputedGCNConv", "sparse_csr"]


class _SymmetricSpMM(torch.autograd.Function):
    """``adj @ x (+ add)`` for a symmetric sparse ``adj``: the backward pass reuses ``adj`` instead of transposing."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor, add: Tensor | None) -> Tensor:
        ctx.adj = adj
        ctx.add_shape = None if add is None else add.shape
        if add is None:
            return adj @ x
        return torch.addmm(add.expand(x.shape[0], x.shape[1]), adj, x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grad_x = ctx.adj @ grad_out if ctx.needs_input_grad[1] else None
        grad_add = None
        if ctx.add_shape is not None and ctx.needs_input_grad[2]:
            grad_add = grad_out.sum(0) if len(ctx.add_shape) == 1 else grad_out
        return None, grad_x, grad_add


def symmetric_spmm(adj: Tensor, x: Tensor, add: Tensor | None = None) -> Tensor:
    """``adj @ x + add`` for a symmetric sparse CSR matrix ``adj`` (N, N) and dense ``x`` (N, C).

    Differentiable in ``x`` and ``add`` (a bias (C,) or a dense (N, C) term). Autograd's generic sparse backward
    transposes ``adj`` at every call, which costs ~20x the product itself on CPU; for a symmetric matrix the
    gradient is ``adj @ grad``.
    """
    return _SymmetricSpMM.apply(adj, x, add)


def sparse_csr(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    """Build a coalesced (N, N) float CSR tensor from an edge list.

    Its indices are int32 when they fit (they always do below 2^31 stored entries): the CPU sparse-dense products
    (MKL) take int32 indices, and converting int64 ones costs two copies at every product.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        # some torch versions (2.11) warn at every sparse constructor that the checks are off, which is intended
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        coo = torch.sparse_coo_tensor(edge_index, edge_weight, (num_nodes, num_nodes), check_invariants=False)
        csr = coo.coalesce().to_sparse_csr()
        if csr.values().numel() >= 2**31 - 1 or num_nodes >= 2**31 - 1:
            return csr
        return torch.sparse_csr_tensor(
            csr.crow_indices().to(torch.int32),
            csr.col_indices().to(torch.int32),
            csr.values(),
            csr.shape,
            check_invariants=False,
        )


def normalized_adjacency(
    edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None, add_self_loops: bool = True
) -> Tensor:
    """GCN-normalised adjacency ``D^-1/2 (A + I) D^-1/2`` as a sparse CSR tensor (N, N).

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
    Tensor
        Symmetric sparse CSR matrix on ``edge_index.device``.
    """
    ei, w = gcn_norm(edge_index, edge_weight, num_nodes, improved=False, add_self_loops=add_self_loops)
    return sparse_csr(ei, w.to(torch.float32), num_nodes)


class PrecomputedGCNConv(MessagePassing):
    """A GCN layer (Kipf & Welling) whose input graph is an already normalised symmetric sparse adjacency.

    ``out = adj @ (x W) + b``: the same function as ``GCNConv(normalize=True, add_self_loops=True)`` applied to the
    graph that ``adj`` was built from with :func:`normalized_adjacency`.

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
        super().__init__(aggr="add")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            zeros(self.bias)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        if self.out_channels < self.in_channels:  # (A x) W: the sparse product on the wider side is cheaper here
            return nn.functional.linear(self.propagate_normalized(adj, x), self.lin.weight, self.bias)
        return symmetric_spmm(adj, self.lin(x), self.bias)

    def propagate_normalized(self, adj: Tensor, x: Tensor) -> Tensor:
        """``adj @ x``: the sum aggregation of neighbour messages weighted by the precomputed normalisation."""
        return self.message_and_aggregate(adj, x)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return symmetric_spmm(adj_t, x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
