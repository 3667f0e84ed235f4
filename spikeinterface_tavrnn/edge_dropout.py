"""Edge dropout (DropEdge; Rong et al., ICLR 2020) on the graphs the model propagates over while it trains.

At every training step each undirected edge of every window is left out of the encoder's, prior's and recurrence's
graph with probability ``p`` (both directions together) and the window's GCN normalisation is recomputed from the
edges kept; the reconstruction target keeps every edge. The model is thereby trained as a denoising graph
auto-encoder: a node has to be placed where its edges point even when some of them are hidden, instead of being
pushed away from every node when it looks isolated (docs/results.md, section 10). Embeddings (``transform``) always
use the whole graph.

The sparsity pattern of each window is kept: a dropped edge becomes a zero entry of the same row-sorted matrix, so
PyG's cached CSR form is reused and a step costs a few element-wise operations per edge. The entries are explicit
anyway, so the GCN scaling is folded into them: each use is one sparse product, not one between two scalings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .model.graph_conv import SymmetricAdjacency, gcn_scale

__all__ = ["EdgeDropout"]


class EdgeDropout:
    """Draw thinned, renormalised copies of a sequence's adjacencies, reproducibly.

    Parameters
    ----------
    adjacency : list of SymmetricAdjacency
        Per window, the GCN-normalised adjacency ``D^-1/2 (A + I) D^-1/2`` (as built by
        :func:`~spikeinterface_tavrnn.model.graph_conv.normalized_adjacency`, with its scaling).
    p : float
        Probability that an undirected edge is left out at a step, in [0, 1).
    seed : int
        Seed of the dropout's own generator (the model's sampling keeps its own stream).
    keep_node : int or None, default: None
        A node whose edges are never dropped: the published history node, which the model wires to every node
        (it is the model's, not the recording's).
    """

    def __init__(self, adjacency: list[SymmetricAdjacency], p: float, seed: int, keep_node: int | None = None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"edge dropout must be in [0, 1), got {p!r}.")
        self.p = float(p)
        device = adjacency[0].index.device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(np.random.SeedSequence([seed, 0xED6E]).generate_state(1)[0]))
        # all windows' entries in one flat array, so that a step is a few operations whatever the number of windows
        self._indices, values, rows, cols, pairs, self._sizes = [], [], [], [], [], []
        self._n_nodes = n = adjacency[0].num_nodes
        n_pairs = 0
        for t, matrix in enumerate(adjacency):
            index = matrix.index.as_subclass(Tensor)
            row, col = index[0], index[1]
            values.append(matrix.values if matrix.values is not None else torch.ones(row.numel(), device=device))
            # one id per undirected pair, shared by (i, j) and (j, i), so both directions are kept or dropped together;
            # self-loops (and the kept node's edges) get id -1 and are always kept
            _, pair = torch.unique(torch.minimum(row, col) * n + torch.maximum(row, col), return_inverse=True)
            always = row == col
            if keep_node is not None:
                always = always | (row == keep_node) | (col == keep_node)
            pairs.append(torch.where(always, -1, pair + n_pairs))
            n_pairs += int(pair.max()) + 1  # every window has its n self-loops
            rows.append(row + t * n)
            cols.append(col + t * n)
            self._indices.append(matrix.index)
            self._sizes.append(row.numel())
        self._n_pairs = n_pairs
        self._values, self._rows, self._cols = torch.cat(values), torch.cat(rows), torch.cat(cols)
        self._pairs = torch.cat(pairs)

    def sample(self) -> list[SymmetricAdjacency]:
        """One thinned copy of every window, normalised: ``D^-1/2 (A' + I) D^-1/2`` with ``A'`` the edges kept (kept
        entries keep their value; the self-loops and ``keep_node``'s edges are always kept) and ``D`` their degrees,
        the scaling folded into the entries."""
        device = self._values.device
        keep = torch.rand(self._n_pairs, generator=self.generator, device=device) >= self.p
        keep = torch.cat([keep, torch.ones(1, dtype=torch.bool, device=device)])  # index -1: the self-loops
        kept = torch.where(keep[self._pairs], self._values, torch.zeros_like(self._values))
        n_windows = len(self._indices)
        degree = torch.zeros(n_windows * self._n_nodes, dtype=kept.dtype, device=kept.device)
        scale = gcn_scale(degree.index_add_(0, self._rows, kept))
        # the scaling folded into the entries (they are explicit anyway): one product instead of three per use
        normalized = kept * (scale[self._rows] * scale[self._cols])  # s_i s_j == s_j s_i: exactly symmetric
        return [
            SymmetricAdjacency(index, values, None)
            for index, values in zip(self._indices, normalized.split(self._sizes))
        ]
