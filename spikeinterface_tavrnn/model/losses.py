"""Negative ELBO terms: Gaussian KL between posterior and prior, and the decoder's reconstruction.

Decoders
--------
``"inner_product"`` (published): ``x_ij = z_i . z_j``. ``"distance"``: ``x_ij = r - ||z_i - z_j||^2`` with a learned
offset ``r`` (a group of nodes then needs a region of the latent space, not a direction: docs/model.md). Both are
bilinear in per-node factors, ``x_ij = left_i . right_j`` (:func:`decoder_factors`; for the distance
``[sqrt(2) z, p, -q] . [sqrt(2) z, p, q]``, ``p, q = (1 +- b) / sqrt(2)``, ``b = r / 2 - ||z||^2``), so every term
below is one code for both; :func:`decoder_logits` is the pair-by-pair definition.

Reconstruction, exactly as published (GAE weighting)
----------------------------------------------------
For a window with N' nodes and P positive pairs (edges in both directions plus the diagonal, the target A + I),
``norm * mean_ij BCEWithLogits(z_i . z_j, A_ij, pos_weight)`` with ``pos_weight = (N'^2 - P) / P`` and
``norm = N'^2 / (2 (N'^2 - P))`` simplifies to the class-balanced form

    0.5 * ( mean_{positives} softplus(-x_ij) + mean_{non-edges} softplus(x_ij) ),  x_ij = z_i . z_j

``"dense"`` computes it exactly: the sum of softplus over all N'^2 pairs (batched Z Z^T products over blocks of
nodes, see :func:`pairwise_softplus_sum`) minus the positives' share, whose logits are read from those blocks (each
logit is computed once). ``"sampled"`` replaces the mean over non-edges by the mean over ``negative_ratio * P``
uniformly drawn non-edges (:class:`NegativeSampler`): an unbiased estimate of the same loss in O(edges) time and
memory.

The target is symmetric (edges in both directions plus the diagonal) and so are the logits, so both modes use the
positives with ``i <= j`` only, an off-diagonal pair counting twice: about half the gathered logits of the
directed list (:func:`upper_positives`, derived once per sequence).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["DECODERS", "decoder_factors", "decoder_logits", "kl_normal", "pairwise_softplus_sum",
           "reconstruction_loss", "upper_positives", "NegativeSampler", "SIGMA_EPS"]  # fmt: skip

SIGMA_EPS = 1e-6
DECODERS = ("inner_product", "distance")
# Logits of one block of the dense term (all windows together); beyond this many logits kept for the backward pass,
# the blocks are recomputed there instead (torch.utils.checkpoint), so memory stays bounded whatever N.
_BLOCK_ELEMENTS = 1 << 19
_KEPT_ELEMENTS = 1 << 25


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


def _check_decoder(decoder: str, offset: Tensor | None) -> None:
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
    if decoder == "distance" and offset is None:
        raise ValueError("the distance decoder needs its offset r.")


def decoder_factors(z: Tensor, decoder: str = "inner_product", offset: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-node factors ``(left, right)`` of ``z`` (..., k) whose dot products are the decoder's logits (see the
    module docstring): ``(z, z)`` for the inner product, (..., k + 2) for the distance decoder with offset ``offset``.
    """
    _check_decoder(decoder, offset)
    if decoder == "inner_product":
        return z, z
    b = 0.5 * offset - z.pow(2).sum(dim=-1, keepdim=True)
    p, q = (1.0 + b) * 0.5**0.5, (1.0 - b) * 0.5**0.5
    scaled = z * 2.0**0.5
    return torch.cat([scaled, p, -q], dim=-1), torch.cat([scaled, p, q], dim=-1)


def decoder_logits(z_i: Tensor, z_j: Tensor, decoder: str = "inner_product", offset: Tensor | None = None) -> Tensor:
    """Logits of the links between rows of ``z_i`` and ``z_j`` (..., k), pair by pair: ``z_i . z_j`` or
    ``offset - ||z_i - z_j||^2``."""
    _check_decoder(decoder, offset)
    if decoder == "inner_product":
        return (z_i * z_j).sum(dim=-1)
    return offset - (z_i - z_j).pow(2).sum(dim=-1)


def _block_terms(zi: Tensor, zj_t: Tensor, index: Tensor | None):
    """``sum softplus(zi zj^T)`` per window for (T, B, k) x (T, k, C) -> (T,), and the logits at the flat positions
    ``index`` of the (T, B, C) block (None: no gather)."""
    logits = torch.bmm(zi, zj_t)
    total = F.softplus(logits).sum(dim=(1, 2))
    if index is None:
        return total
    return total, logits.reshape(-1).index_select(0, index)


def _block_size(n_windows: int, n_nodes: int) -> int:
    """Nodes per block of the dense term: about :data:`_BLOCK_ELEMENTS` logits per block, all windows together."""
    block = max(32, min(512, int((_BLOCK_ELEMENTS // max(1, n_windows)) ** 0.5)))
    n_blocks = max(1, -(-n_nodes // block))
    return -(-n_nodes // n_blocks)


def upper_positives(prepared) -> dict:
    """The positive pairs of ``prepared`` with ``i <= j`` (window-local), each with its weight in the directed sum:
    1 on the diagonal, 2 elsewhere (the target holds both directions). Computed once per sequence and kept in
    ``prepared.derived``.

    Returns
    -------
    dict
        ``src``, ``dst`` (flat row indices into (T * N')), ``window`` (long), ``weight`` (float32), in the order of
        the directed list, and ``blocks``: per block size, where these pairs fall among the dense term's
        blocks of logits.
    """
    cached = prepared.derived.get("upper_positives")
    if cached is None:
        n = prepared.n_total
        src, dst = prepared.pos_src, prepared.pos_dst
        keep = (src % n) <= (dst % n)
        src, dst = src[keep], dst[keep]
        cached = {
            "src": src,
            "dst": dst,
            "window": torch.div(src, n, rounding_mode="floor"),
            "weight": torch.where(src == dst, 1.0, 2.0).to(torch.float32),
            "blocks": {},
        }
        prepared.derived["upper_positives"] = cached
    return cached


def _block_pattern(upper: dict, n_windows: int, n_nodes: int, size: int) -> dict:
    """Where the positives ``i <= j`` of :func:`upper_positives` fall among the dense term's blocks of ``size``
    nodes: per block pair (I, J), I <= J, their flat indices into that block's (T, B_I, B_J) logits; ``window`` and
    ``weight`` in block order."""
    pattern = upper["blocks"].get(size)
    if pattern is not None:
        return pattern
    n_blocks = -(-n_nodes // size)
    sizes = [min(size, n_nodes - b * size) for b in range(n_blocks)]
    t = upper["window"]
    i, j = upper["src"] - t * n_nodes, upper["dst"] - t * n_nodes
    bi = torch.div(i, size, rounding_mode="floor")
    bj = torch.div(j, size, rounding_mode="floor")
    key = bi * n_blocks + bj
    order = torch.sort(key, stable=True).indices
    counts = torch.bincount(key, minlength=n_blocks * n_blocks).tolist()
    width = torch.tensor(sizes, device=i.device)[bj]
    flat = t * (torch.tensor(sizes, device=i.device)[bi] * width) + (i - bi * size) * width + (j - bj * size)
    pieces = flat[order].split(counts)
    pattern = {
        "index": {(a, b): pieces[a * n_blocks + b] for a in range(n_blocks) for b in range(a, n_blocks)},
        "window": t[order],
        "weight": upper["weight"][order],
    }
    upper["blocks"][size] = pattern
    return pattern


def _dense_sums(left: Tensor, right: Tensor, pattern: dict | None) -> tuple[Tensor, Tensor | None]:
    """``sum_ij softplus(left_i . right_j)`` per window (T,) and, with a pattern of :func:`_block_pattern`, the logits
    of its positives in block order (else None). The logits must be symmetric. See :func:`pairwise_softplus_sum`."""
    n_windows, n_nodes = left.shape[0], left.shape[1]
    size = _block_size(n_windows, n_nodes)
    blocks = list(left.split(size, dim=1))
    # the right factor copied to (T, k, N): the gradient product of each left block then reads it transposed, which
    # MKL runs faster for these shapes (docs/performance.md)
    blocks_t = list(right.transpose(1, 2).contiguous().split(size, dim=2))
    grad = left.requires_grad or right.requires_grad
    recompute = torch.is_grad_enabled() and grad and n_windows * n_nodes * n_nodes > 2 * _KEPT_ELEMENTS
    total, gathered = left.new_zeros(n_windows), []
    for i, zi in enumerate(blocks):
        for j in range(i, len(blocks)):
            index = None if pattern is None else pattern["index"][(i, j)]
            if recompute:
                part = checkpoint(_block_terms, zi, blocks_t[j], index, use_reentrant=False)
            else:
                part = _block_terms(zi, blocks_t[j], index)
            if index is not None:
                part, logits = part
                gathered.append(logits)
            total = total + (part if i == j else 2.0 * part)
    return total, (torch.cat(gathered) if gathered else None)


def pairwise_softplus_sum(z: Tensor, decoder: str = "inner_product", offset: Tensor | None = None) -> Tensor:
    """``sum_ij softplus(x_ij)`` of the decoder's logits for each window of ``z`` (T, N, k), returned as (T,).
    Differentiable.

    The logits are symmetric, so only blocks (I, J) of nodes with I <= J are computed (off-diagonal blocks count
    twice). When the logits of all blocks would exceed a fixed budget, each block is recomputed in the backward pass
    (:func:`torch.utils.checkpoint.checkpoint`) instead of being kept: memory is then one block at a time.
    """
    return _dense_sums(*decoder_factors(z, decoder, offset), None)[0]


def reconstruction_loss(z: Tensor, prepared, mode: str = "dense", negatives: tuple | None = None,
                        decoder: str = "inner_product", offset: Tensor | None = None) -> Tensor:  # fmt: skip
    """Class-balanced reconstruction loss of the decoder per window (see the module docstring).

    Parameters
    ----------
    z : Tensor (T, N, k)
        Latent samples (or means).
    prepared : PreparedSequence
        Provides the positive pairs: ``pos_src`` / ``pos_dst`` (flat row indices into (T * N), edges in both
        directions plus the diagonal) and ``pos_counts`` (positives per window).
    mode : {"dense", "sampled"}, default: "dense"
        Exact loss over all pairs, or negative-sampled estimate.
    negatives : tuple (neg_src, neg_dst, neg_window, neg_counts) or None
        Required for ``"sampled"``: sampled non-edges as flat row indices into (T * N) (see NegativeSampler).
    decoder : {"inner_product", "distance"}, default: "inner_product"
        The link logits (module docstring).
    offset : Tensor (scalar or (1,)) or None, default: None
        The distance decoder's offset ``r``.

    Returns
    -------
    Tensor (T,)
    """
    n_windows, n_nodes, _ = z.shape
    left, right = decoder_factors(z, decoder, offset)
    flat_left, flat_right = left.reshape(n_windows * n_nodes, -1), right.reshape(n_windows * n_nodes, -1)
    counts = prepared.pos_counts
    upper = upper_positives(prepared)
    if mode == "dense":
        pattern = _block_pattern(upper, n_windows, n_nodes, _block_size(n_windows, n_nodes))
        total, x_pos = _dense_sums(left, right, pattern)
        window, weight = pattern["window"], pattern["weight"]
    elif mode == "sampled":
        if negatives is None:
            raise ValueError("sampled reconstruction needs negatives (see NegativeSampler).")
        x_pos = (flat_left.index_select(0, upper["src"]) * flat_right.index_select(0, upper["dst"])).sum(dim=1)
        window, weight = upper["window"], upper["weight"]
    else:
        raise ValueError(f"reconstruction mode must be 'dense' or 'sampled', got {mode!r}.")
    weight = weight.to(z.dtype)
    pos_softplus = z.new_zeros(n_windows).index_add(0, window, F.softplus(-x_pos) * weight)
    pos_term = pos_softplus / counts.clamp(min=1)
    if mode == "dense":
        # softplus(x) = softplus(-x) + x: the positives' share of the sum over all pairs
        pos_x = z.new_zeros(n_windows).index_add(0, window, x_pos * weight)
        n_neg = (float(n_nodes) * n_nodes - counts).clamp(min=1)
        neg_term = (total - pos_softplus - pos_x) / n_neg
    else:
        neg_src, neg_dst, neg_window, neg_counts = negatives
        x_neg = (flat_left.index_select(0, neg_src) * flat_right.index_select(0, neg_dst)).sum(dim=1)
        neg_sum = torch.zeros(n_windows, dtype=z.dtype, device=z.device).index_add(0, neg_window, F.softplus(x_neg))
        neg_term = neg_sum / neg_counts.clamp(min=1)
    return 0.5 * (pos_term + neg_term)


class NegativeSampler:
    """Draw uniform non-edges for every window, vectorised and reproducible.

    Pairs (i, j) are drawn uniformly with replacement (so the mean over them is an unbiased estimate of the mean
    over all non-edges), and pairs that are positives (edges or self-loops) are rejected and redrawn. All windows are
    sampled in one vectorised pass with a NumPy generator. (PyG's ``negative_sampling`` draws through Python's
    :mod:`random` module one index at a time: about a second per epoch at 4,096 nodes and 20 windows.)

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
        self.n_nodes = int(n_nodes)
        self.ratio = float(ratio)
        self.device = edge_index_with_loops[0].device
        self.n_windows = len(edge_index_with_loops)
        n2 = self.n_nodes * self.n_nodes
        keys, counts = [], []
        for t, ei in enumerate(edge_index_with_loops):
            ei = ei.detach().cpu().numpy().astype(np.int64)
            keys.append(t * n2 + ei[0] * self.n_nodes + ei[1])
            counts.append(max(1, int(round(self.ratio * ei.shape[1]))))
        self._positive_keys = np.unique(np.concatenate(keys))
        self._positive_per_window = np.bincount(self._positive_keys // n2, minlength=self.n_windows)
        self._counts = np.asarray(counts, dtype=np.int64)
        # windows whose every pair is positive have no negative to draw
        self._counts[self._positive_per_window >= n2] = 0
        self._rng = np.random.default_rng(seed)

    def sample(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One draw: (neg_src, neg_dst, neg_window, neg_counts) in flat (T * N) indexing."""
        n, n2 = self.n_nodes, self.n_nodes * self.n_nodes
        windows = np.repeat(np.arange(self.n_windows), self._counts)
        src = np.empty(windows.size, dtype=np.int64)
        dst = np.empty(windows.size, dtype=np.int64)
        todo = np.arange(windows.size)
        while todo.size:
            i = self._rng.integers(0, n, todo.size)
            j = self._rng.integers(0, n, todo.size)
            keys = windows[todo] * n2 + i * n + j
            pos = np.searchsorted(self._positive_keys, keys)
            pos = np.minimum(pos, self._positive_keys.size - 1)
            bad = self._positive_keys[pos] == keys
            good = ~bad
            src[todo[good]], dst[todo[good]] = i[good], j[good]
            todo = todo[bad]
        offset = windows * n
        as_tensor = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        return (
            as_tensor(src + offset),
            as_tensor(dst + offset),
            as_tensor(windows),
            torch.tensor(self._counts, dtype=torch.float32, device=self.device),
        )
