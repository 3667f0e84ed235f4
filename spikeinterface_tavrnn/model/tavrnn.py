"""VGRNN and TAVRNN as torch modules (Hajiramezanali et al. 2019; Khajehnejad et al. 2024).

Per window t, with ``h = H_{t-1}`` (last layer) and the GCN-normalised adjacency ``A_t``::

    phi_x  = ReLU(Linear(X_t))
    E      = ReLU(GCN([phi_x || h]))                         encoder
    mu, s  = GCN(E), softplus(GCN(E))                        posterior q(Z_t | A_t, X_t, H_{t-1})
    P      = ReLU(Linear(h)); mu_p, s_p = Linear(P), softplus(Linear(P))     prior p(Z_t | H_{t-1})
    Z_t    = mu + s * eps   (training / sampled embeddings; Z_t = mu otherwise)
    phi_z  = ReLU(Linear(Z_t))
    H~_t   = GraphGRU([phi_x || phi_z], A_t, H_{t-1})
    H_t    = TemporalAttention(H~_t, history)                (TAVRNN only)

The decoder is the inner product ``sigmoid(z_i . z_j)`` as published, or ``sigmoid(r - ||z_i - z_j||^2)`` with a
learned offset ``r`` (``decoder="distance"``; see :mod:`.losses`). Every GCN of an input is computed as
``(A_t input) W``: the propagated feature ``A_t phi_x`` of every window is computed before the recurrence and its
projections into the encoder and the first GRU layer are one matrix product over all windows; at each window one
sparse product ``A_t H_{t-1}`` serves the encoder and the GRU gates (their weights concatenated into one product),
and one ``A_t phi_z`` the GRU's latent input. The parameters keep the published shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import TemporalAttention
from .features import PreparedSequence
from .graph_conv import PrecomputedGCNConv
from .graph_gru import GraphGRU
from .losses import DECODERS, decoder_logits

__all__ = ["FeatureEncoder", "VGRNN", "TAVRNNModule", "ModelOutput", "RecurrentState"]


@dataclass
class RecurrentState:
    """Where a forward pass stopped: the recurrent state of the last window (one (N', d) tensor per layer) and the
    attention memory. Passing it to the next forward pass continues the sequence (truncated back-propagation)."""

    h: list
    memory: Any

    def detach(self) -> "RecurrentState":
        """The same state cut from the autograd graph (the attention memory is detached when it is continued)."""
        return RecurrentState([h.detach() for h in self.h], self.memory)


@dataclass
class ModelOutput:
    """Per-window outputs of a forward pass, each (T, N', k) unless noted (N' includes a wired history node)."""

    mu: Tensor
    sigma: Tensor
    prior_mu: Tensor
    prior_sigma: Tensor
    z: Tensor
    attention: Tensor | None  # (T, m + T) with m attended windows before this pass (0 from the start); None without
    state: RecurrentState | None = None


class FeatureEncoder(nn.Module):
    """``phi_x = ReLU(X W + b)`` for every window, for identity, sparse (adjacency) or dense features.

    Parameters
    ----------
    n_features : int
        F (identity and adjacency features: the number of nodes N').
    out_channels : int
        d.
    kind : {"identity", "adjacency", "graph", "array"}
        Identity features are an embedding lookup (one row of W per node); adjacency features a sparse product.
    """

    def __init__(self, n_features: int, out_channels: int, kind: str):
        super().__init__()
        self.kind = kind
        self.n_features = n_features
        self.lin = nn.Linear(n_features, out_channels)

    def forward(self, prepared: PreparedSequence) -> Tensor:
        """Return phi_x as (1, N', d) for identity features (shared by all windows) or (T, N', d)."""
        if prepared.n_features != self.n_features:
            raise ValueError(
                f"the model was built for {self.n_features} input features, the graphs give {prepared.n_features}."
            )
        if self.kind == "identity":
            return F.relu(self.lin.weight.t() + self.lin.bias).unsqueeze(0)
        if self.kind == "adjacency":
            w = self.lin.weight.t()
            return F.relu(torch.stack([x @ w for x in prepared.features]) + self.lin.bias)
        return F.relu(self.lin(prepared.features))


class VGRNN(nn.Module):
    """Variational graph recurrent network with a graph-GRU (the TAVRNN paper's ablation without attention).

    Parameters
    ----------
    n_features : int
        Input feature size F (N' for identity / adjacency features).
    feature_kind : str
        See :class:`FeatureEncoder`.
    h_dim : int, default: 32
        Recurrent state size d.
    z_dim : int, default: 8
        Latent size k.
    n_layers : int, default: 1
        Graph-GRU layers L.
    decoder : {"inner_product", "distance"}, default: "inner_product"
        The link decoder; ``"distance"`` adds the learned offset ``decoder_offset``, initialised to ``z_dim``: about
        the squared distance of two latents sampled with the initial posterior spread (softplus(0) ~ 0.69 per
        dimension), so that links start near probability 1/2.
    """

    def __init__(self, n_features: int, feature_kind: str, h_dim: int = 32, z_dim: int = 8, n_layers: int = 1,
                 decoder: str = "inner_product"):  # fmt: skip
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        d, k = h_dim, z_dim
        self.h_dim, self.z_dim, self.n_layers = d, k, n_layers
        self.phi_x = FeatureEncoder(n_features, d, feature_kind)
        self.encoder = PrecomputedGCNConv(2 * d, d)  # input [phi_x || h]
        self.posterior = PrecomputedGCNConv(d, 2 * k)  # (mu | pre-softplus sigma): the two published GCN_d->k
        self.prior_hidden = nn.Linear(d, d)
        self.prior = nn.Linear(d, 2 * k)  # (mu | pre-softplus sigma)
        self.phi_z = nn.Linear(k, d)
        self.rnn = GraphGRU(2 * d, d, n_layers)  # input [phi_x || phi_z]
        self.decoder = decoder
        # a constant start: no draw from the generator, so the layers above start as with the inner product; shape
        # (1,), not (): SpikeInterface's zarr extension storage cannot read 0-d arrays back
        offset = nn.Parameter(torch.full((1,), float(k))) if decoder == "distance" else None
        self.register_parameter("decoder_offset", offset)

    def link_logits(self, z_i: Tensor, z_j: Tensor) -> Tensor:
        """The decoder's logits of the links between rows of ``z_i`` and ``z_j`` (..., z_dim), pair by pair."""
        return decoder_logits(z_i, z_j, self.decoder, self.decoder_offset)

    def _attend(self, h_tilde: list[Tensor], memory) -> tuple[list[Tensor], Tensor | None]:
        return h_tilde, None

    def _window(
        self,
        adjacency,
        h: list[Tensor],
        proj: Tensor,
        eps: Tensor | None,
        w_h: Tensor,
        w_gru_z: Tensor,
    ) -> tuple[list[Tensor], Tensor, Tensor, Tensor]:
        """One window of the recurrence up to the GRU's proposal (before attention).

        ``proj`` (N', 4 d) is this window's projection of ``A_t phi_x`` into the encoder (with its bias) and the first
        GRU layer, ``w_h`` the stacked weights that read ``A_t H_{t-1}`` (see :meth:`forward`), ``eps`` the
        reparameterisation noise (None: ``Z_t = mu``). Returns the proposed states (one per layer), mu, sigma and
        ``Z_t``.
        """
        d, k = self.h_dim, self.z_dim
        one_layer = self.n_layers == 1
        ah = adjacency @ h[-1]
        if one_layer:  # encoder and GRU gates: (A phi_x) W_x + (A h) W_h in one product over all 4 d columns
            pre_enc, pre_gru = torch.addmm(proj, ah, w_h.t()).split([d, 3 * d], dim=1)
        else:
            pre_enc, pre_gru = torch.addmm(proj[:, :d], ah, w_h.t()), proj[:, d:]
        enc = F.relu(pre_enc)
        mu, sigma_raw = self.posterior(enc, adjacency).split(k, dim=1)
        sigma = F.softplus(sigma_raw)
        z = torch.addcmul(mu, sigma, eps) if eps is not None else mu
        phi_z = F.relu(self.phi_z(z))
        gates = torch.addmm(pre_gru, adjacency @ phi_z, w_gru_z.t())
        if one_layer:
            h_tilde = self.rnn(None, adjacency, h, gates=gates)
        else:
            h_tilde = self.rnn(None, adjacency, h, ax=gates)  # layer 0 reads its own state, not the last layer's
        return h_tilde, mu, sigma, z

    def _attention_memory(self, steps: int):
        return None

    def _continue_memory(self, memory, steps: int) -> tuple[Any, int]:
        """Attention memory carried over from a previous pass (detached) and the number of past windows it holds;
        ``steps`` windows follow."""
        return None, 0

    def forward(
        self,
        prepared: PreparedSequence,
        sample: bool = True,
        generator: torch.Generator | None = None,
        state: RecurrentState | None = None,
    ) -> ModelOutput:
        """Run the recurrence over all windows of ``prepared``.

        Parameters
        ----------
        prepared : PreparedSequence
            From :func:`~spikeinterface_tavrnn.model.features.prepare_sequence`.
        sample : bool, default: True
            Draw ``Z_t = mu + sigma * eps`` (training, sampled embeddings); False: ``Z_t = mu`` everywhere, including
            the input of the recurrence (deterministic posterior-mean embeddings).
        generator : torch.Generator or None, default: None
            Source of ``eps``.
        state : RecurrentState or None, default: None
            Continue from the state a previous pass ended in (``ModelOutput.state``, detached for truncated
            back-propagation); None starts the sequence (zero state, empty attention memory).
        """
        d, k = self.h_dim, self.z_dim
        n_windows, n = prepared.n_windows, prepared.n_total
        device = prepared.device
        phi_x = self.phi_x(prepared)
        # A_t phi_x for every window (before the recurrence), and its projections into the encoder GCN and the first
        # GRU layer for all windows in one product.
        # (unbind, not phi_x[t]: indexing T times would make T full-size gradient tensors in the backward pass)
        inputs = phi_x.unbind(0) if phi_x.shape[0] > 1 else phi_x.expand(n_windows, -1, -1).unbind(0)
        propagated_x = torch.stack([adjacency @ x for adjacency, x in zip(prepared.adjacency, inputs)])
        w_enc_x, w_enc_h = self.encoder.lin.weight.split(d, dim=1)
        w_gru_x, w_gru_z = self.rnn.cells[0].lin_x.weight.split(d, dim=1)
        bias = torch.cat([self.encoder.bias, self.encoder.bias.new_zeros(3 * d)])  # the encoder's, added once here
        proj = torch.addmm(bias, propagated_x.reshape(-1, d), torch.cat([w_enc_x, w_gru_x]).t())  # (T N', d + 3d)
        dtype = proj.dtype
        proj = proj.view(n_windows, n, 4 * d).unbind(0)
        eps = torch.randn((n_windows, n, k), generator=generator, device=device, dtype=dtype) if sample else None
        # One product for every projection of the propagated previous state A_t H_{t-1}: the encoder's and (one
        # layer) the GRU gates' (the candidate reads r * h instead, so its block is zero).
        one_layer = self.n_layers == 1
        if one_layer:
            w_h = torch.cat([w_enc_h, self.rnn.cells[0].lin_h.weight, w_enc_h.new_zeros(d, d)])
        else:
            w_h = w_enc_h
        if state is None:
            h = [torch.zeros(n, d, device=device, dtype=dtype) for _ in range(self.n_layers)]
            memory, n_past = self._attention_memory(n_windows), 0
        else:
            h = list(state.h)
            memory, n_past = self._continue_memory(state.memory, n_windows)
        h_prev, mus, sigmas, zs, weights = [], [], [], [], []
        for t in range(n_windows):
            h_prev.append(h[-1])
            h_tilde, mu, sigma, z = self._window(
                prepared.adjacency[t], h, proj[t], eps[t] if sample else None, w_h, w_gru_z
            )
            h, w = self._attend(h_tilde, memory)
            mus.append(mu)
            sigmas.append(sigma)
            zs.append(z)
            weights.append(w)

        prior = self.prior(F.relu(self.prior_hidden(torch.stack(h_prev))))
        attention = None
        if weights and weights[0] is not None:
            attention = torch.zeros(n_windows, n_past + n_windows, device=device, dtype=dtype)
            for t, w in enumerate(weights):
                attention[t, n_past + t - w.shape[0] + 1 : n_past + t + 1] = w.detach()
        return ModelOutput(
            mu=torch.stack(mus),
            sigma=torch.stack(sigmas),
            prior_mu=prior[..., :k],
            prior_sigma=F.softplus(prior[..., k:]),
            z=torch.stack(zs),
            attention=attention,
            state=RecurrentState(h, memory),
        )


class TAVRNNModule(VGRNN):
    """VGRNN plus temporal attention over past recurrent states (TAVRNN).

    With ``attention=False`` no attention parameter is created and the module is a :class:`VGRNN` (same parameters,
    same initialisation for a given seed, same outputs).

    Parameters
    ----------
    n_features, feature_kind, h_dim, z_dim, n_layers, decoder :
        As in :class:`VGRNN`.
    attention : bool, default: True
        Add the temporal attention.
    attention_mode : {"gated", "published"}, default: "gated"
        See :mod:`.attention`.
    attention_window : int or None, default: None
        Attended steps including the current one; None = whole history.
    history_node : bool, default: True
        See :mod:`.attention`.
    wired_index : int or None, default: None
        Index of the wired history node (published mode with a history node).
    """

    def __init__(
        self,
        n_features: int,
        feature_kind: str,
        h_dim: int = 32,
        z_dim: int = 8,
        n_layers: int = 1,
        attention: bool = True,
        attention_mode: str = "gated",
        attention_window: int | None = None,
        history_node: bool = True,
        wired_index: int | None = None,
        decoder: str = "inner_product",
    ):
        super().__init__(n_features, feature_kind, h_dim, z_dim, n_layers, decoder)
        # Built after the VGRNN layers so that, for one seed, the shared layers start from identical values.
        self.attention = (
            TemporalAttention(h_dim, n_layers, attention_mode, attention_window, history_node, wired_index)
            if attention
            else None
        )

    def _attention_memory(self, steps: int):
        return None if self.attention is None else self.attention.initial_state(steps)

    def _continue_memory(self, memory, steps: int) -> tuple[Any, int]:
        if self.attention is None:
            return None, 0
        summaries = [s.detach() for s in memory["summaries"]]
        continued = self.attention.initial_state(len(summaries) + steps)  # segments sized for the whole history
        continued["summaries"] = summaries
        continued["segments"] = [[segment.detach() for segment in layer] for layer in memory["segments"]]
        return continued, len(summaries)

    def _attend(self, h_tilde: list[Tensor], memory) -> tuple[list[Tensor], Tensor | None]:
        if self.attention is None:
            return h_tilde, None
        return self.attention(h_tilde, memory)
