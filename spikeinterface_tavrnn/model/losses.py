"""Negative ELBO terms: Gaussian KL between posterior and prior, and the inner-product decoder's reconstruction.

Reconstruction, exactly as published (GAE weighting)
----------------------------------------------------
For a window with N' nodes and P positive pairs (edges in both directions plus the diagonal, the target A + I),
``norm * mean_ij BCEWithLogits(z_i . z_j, A_ij, pos_weight)`` with ``pos_weight = (N'^2 - P) / P`` and
``norm = N'^2 / (2 (N'^2 - P))`` simplifies to the class-balanced form

    0.5 * ( mean_{positives} softplus(-x_ij) + mean_{non-edges} softplus(x_ij) ),  x_ij = z_i . z_j

``"dense"`` computes it exactly: the sum of softplus over all N'^2 pairs (one batched Z Z^T, see
:func:`pairwise_softplus_sum`) minus the positives' share. ``"sampled"`` replaces the mean over non-edges by the
mean over ``negative_ratio * P`` non-edges drawn with :func:`torch_geometric.utils.negative_sampling`: an unbiased
estimate of the same loss in O(edges) time and memory.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import negative_sampling

__all__ = [
    "kl_normal",
    "pairwise_softplus_sum",
    "reconstruction_loss",
    "NegativeSampler",
    "SIGMA_EPS",
]

SIGMA_EPS = 1e-6
# Logits per block in the dense term (all windows together): bounds the transient memory to ~8 MB of float32.
_BLOCK_ELEMENTS = 1 << 21


def kl_normal(mu_q: Tensor, sigma_q: Tensor, mu_p: Tensor, sigma_p: Tensor) -> Tensor:
    """KL(N(mu_q, sigma_q) || N(mu_p, sigma_p)) per window, as published (VGRNN): summed over latent dimensions,
    averaged over nodes and divided by the number of nodes.

    Parameters
    ----------
    mu_q, sigma_q, mu_p, sigma_p : Tensor (T, N, k)

    Returns
    -------
    Tensor (T,)
    """
    n_nodes = mu_q.shape[1]
    log_ratio = torch.log(sigma_p + SIGMA_EPS) - torch.log(sigma_q + SIGMA_EPS)
    kl = log_ratio + (sigma_q.pow(2) + (mu_q - mu_p).pow(2)) / (2.0 * (sigma_p + SIGMA_EPS).pow(2)) - 0.5
    return kl.sum(dim=2).mean(dim=1) / n_nodes


class _PairwiseSoftplusSum(torch.autograd.Function):
    """sum_ij softplus(z_i . z_j) per window, over blocks of nodes, without storing the (T, N, N) logits.

    The logits are symmetric, so only blocks (I, J) with I <= J are computed (off-diagonal blocks count twice):
    ~(nb + 1) / (2 nb) of the elementwise work, and the transient memory is one (T, B, B) block.
    """

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        ctx.save_for_backward(z)
        blocks = _node_blocks(z)
        total = z.new_zeros(z.shape[0])
        for i, zi in enumerate(blocks):
            for j in range(i, len(blocks)):
                zj = blocks[j]
                part = F.softplus(torch.bmm(zi, zj.transpose(1, 2))).sum(dim=(1, 2))
                total = total + (part if i == j else 2.0 * part)
        return total

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (z,) = ctx.saved_tensors
        blocks = _node_blocks(z)
        g = (2.0 * grad_out).view(-1, 1, 1)
        grads = [torch.zeros_like(b) for b in blocks]
        for i, zi in enumerate(blocks):
            for j in range(i, len(blocks)):
                zj = blocks[j]
                s = torch.sigmoid(torch.bmm(zi, zj.transpose(1, 2))).mul_(g)
                # diagonal block: d/dz_i sum_jk softplus(z_j . z_k) = 2 sum_j sigmoid(x_ij) z_j (x symmetric)
                grads[i].add_(torch.bmm(s, zj))
                if i != j:
                    grads[j].add_(torch.bmm(s.transpose(1, 2), zi))
        return torch.cat(grads, dim=1)


def _node_blocks(z: Tensor) -> list[Tensor]:
    n_windows, n_nodes = z.shape[0], z.shape[1]
    # Blocks of ~256 nodes, fewer when many windows would make one block large.
    block = max(32, min(256, int((_BLOCK_ELEMENTS // max(1, n_windows)) ** 0.5)))
    n_blocks = max(1, -(-n_nodes // block))
    size = -(-n_nodes // n_blocks)
    return list(z.split(size, dim=1))


def pairwise_softplus_sum(z: Tensor) -> Tensor:
    """``sum_ij softplus(z_i . z_j)`` for each window of ``z`` (T, N, k), returned as (T,). Differentiable.

    Computed over blocks of nodes (using the symmetry of the logits) and recomputed in the backward pass, so memory
    stays at one (T, B, B) block whatever N.
    """
    return _PairwiseSoftplusSum.apply(z)


def _segment_sum(values: Tensor, window: Tensor, n_windows: int) -> Tensor:
    return torch.zeros(n_windows, dtype=values.dtype, device=values.device).index_add_(0, window, values)


def reconstruction_loss(
    z: Tensor,
    pos_src: Tensor,
    pos_dst: Tensor,
    pos_window: Tensor,
    pos_counts: Tensor,
    mode: str = "dense",
    negatives: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    """Class-balanced inner-product reconstruction loss per window (see the module docstring).

    Parameters
    ----------
    z : Tensor (T, N, k)
        Latent samples (or means).
    pos_src, pos_dst, pos_window : Tensor (P_total,)
        Positive pairs as flat indices into (T * N) rows, and their window.
    pos_counts : Tensor (T,)
        Positive pairs per window.
    mode : {"dense", "sampled"}, default: "dense"
        Exact loss over all pairs, or negative-sampled estimate.
    negatives : tuple (neg_src, neg_dst, neg_window, neg_counts) or None
        Required for ``"sampled"``: sampled non-edges in the same flat indexing.

    Returns
    -------
    Tensor (T,)
    """
    n_windows, n_nodes, k = z.shape
    flat = z.reshape(-1, k)
    x_pos = (flat[pos_src] * flat[pos_dst]).sum(dim=1)
    pos_term = _segment_sum(F.softplus(-x_pos), pos_window, n_windows) / pos_counts.clamp(min=1)
    if mode == "dense":
        total = pairwise_softplus_sum(z)
        pos_as_neg = _segment_sum(F.softplus(x_pos), pos_window, n_windows)
        n_neg = (float(n_nodes) * n_nodes - pos_counts).clamp(min=1)
        neg_term = (total - pos_as_neg) / n_neg
    elif mode == "sampled":
        if negatives is None:
            raise ValueError("sampled reconstruction needs negatives (see NegativeSampler).")
        neg_src, neg_dst, neg_window, neg_counts = negatives
        x_neg = (flat[neg_src] * flat[neg_dst]).sum(dim=1)
        neg_term = _segment_sum(F.softplus(x_neg), neg_window, n_windows) / neg_counts.clamp(min=1)
    else:
        raise ValueError(f"reconstruction mode must be 'dense' or 'sampled', got {mode!r}.")
    return 0.5 * (pos_term + neg_term)


class NegativeSampler:
    """Draw non-edges for every window with :func:`torch_geometric.utils.negative_sampling`, reproducibly.

    PyG draws from Python's global :mod:`random` generator; the sampler runs it from its own saved state and puts the
    caller's state back, so training is repeatable from ``seed`` and does not disturb the user's random state.

    Parameters
    ----------
    edge_index_with_loops : list of Tensor (2, P_t)
        Per window, the positive pairs (self-loops included, so they are never drawn as negatives).
    n_nodes : int
        Nodes per window.
    ratio : float, default: 1.0
        Negatives per positive pair.
    seed : int, default: 0
        Seed of the sampler's own generator.
    """

    def __init__(self, edge_index_with_loops: list, n_nodes: int, ratio: float = 1.0, seed: int = 0):
        self.edge_index_with_loops = edge_index_with_loops
        self.n_nodes = n_nodes
        self.ratio = float(ratio)
        self._state = random.Random(seed).getstate()

    def sample(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One draw: (neg_src, neg_dst, neg_window, neg_counts) in flat (T * N) indexing."""
        saved = random.getstate()
        random.setstate(self._state)
        try:
            src, dst, win, counts = [], [], [], []
            for t, ei in enumerate(self.edge_index_with_loops):
                n_samples = max(1, int(round(self.ratio * ei.shape[1])))
                neg = negative_sampling(ei, num_nodes=self.n_nodes, num_neg_samples=n_samples, method="sparse")
                src.append(neg[0] + t * self.n_nodes)
                dst.append(neg[1] + t * self.n_nodes)
                win.append(torch.full((neg.shape[1],), t, dtype=torch.long, device=neg.device))
                counts.append(neg.shape[1])
            self._state = random.getstate()
        finally:
            random.setstate(saved)
        device = self.edge_index_with_loops[0].device
        return (
            torch.cat(src),
            torch.cat(dst),
            torch.cat(win),
            torch.tensor(counts, dtype=torch.float32, device=device),
        )
