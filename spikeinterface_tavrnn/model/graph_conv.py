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
    """``adj @ x`` for a symmetric sparse ``adj``: the backward pass reuses ``adj`` instead of transposing it."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        return None, ctx.adj @ grad_out


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """Multiply a symmetric sparse CSR matrix ``adj`` (N, N) by a dense ``x`` (N, C), differentiable in ``x``.

    Autograd's generic sparse backward transposes ``adj`` at every call, which costs ~20x the product itself on CPU;
    for a symmetric matrix the gradient is ``adj @ grad``.
    """
    return _SymmetricSpMM.apply(adj, x)


def sparse_csr(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    """Build a coalesced (N, N) float CSR tensor from an edge list."""
    coo = torch.sparse_coo_tensor(edge_index, edge_weight, (num_nodes, num_nodes), check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return coo.coalesce().to_sparse_csr()


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
        out = self.propagate_normalized(adj, self.lin(x))
        if self.bias is not None:
            out = out + self.bias
        return out

    def propagate_normalized(self, adj: Tensor, x: Tensor) -> Tensor:
        """``adj @ x``: the sum aggregation of neighbour messages weighted by the precomputed normalisation."""
        return self.message_and_aggregate(adj, x)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return symmetric_spmm(adj_t, x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
