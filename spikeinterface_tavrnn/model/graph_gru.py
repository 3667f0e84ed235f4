"""Graph GRU whose gates are GCNs (Seo et al. 2018; the recurrence of VGRNN and TAVRNN).

For input ``x``, state ``h`` and normalised adjacency ``A``::

    s = sigmoid(GCN_xs(x) + GCN_hs(h))          update gate
    r = sigmoid(GCN_xr(x) + GCN_hr(h))          reset gate
    c = tanh(GCN_xc(x) + GCN_hc(r * h))         candidate
    h' = s * h + (1 - s) * c

Every GCN is ``A (. W) + b = (A .) W + b``, linear before the non-linearity, so the five GCNs that read ``x`` or
``h`` need only the propagated inputs ``A x`` and ``A h``: ``(A x) [W_xs | W_xr | W_xc] + (A h) [W_hs | W_hr | 0]``
(sparse products as wide as the inputs, not as the three gates), and only ``GCN_hc`` needs another one. A caller
that already holds ``A x`` or ``A h`` (the recurrence of VGRNN shares ``A h`` with its encoder) passes them in.
The function is the same as six separate GCN layers (the two biases of each gate add up to one); every weight is
a registered parameter (the published code kept these layers in Python lists, so they were never trained).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .graph_conv import SymmetricAdjacency

__all__ = ["GraphGRUCell", "GraphGRU"]


class GraphGRUCell(nn.Module):
    """One graph-GRU layer.

    Parameters
    ----------
    in_channels : int
        Input size.
    hidden_channels : int
        State size d.
    """

    def __init__(self, in_channels: int, hidden_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        d = hidden_channels
        self.lin_x = nn.Linear(in_channels, 3 * d, bias=False)  # x -> (update, reset, candidate)
        self.lin_h = nn.Linear(d, 2 * d, bias=False)  # h -> (update, reset)
        self.lin_hc = nn.Linear(d, d, bias=False)  # (r * h) -> candidate
        self.bias = nn.Parameter(torch.zeros(3 * d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        d = self.hidden_channels
        for lin in (self.lin_x, self.lin_h, self.lin_hc):
            for block in lin.weight.data.split(d, dim=0):  # Glorot per gate, as separate GCNConvs would be
                nn.init.xavier_uniform_(block)
        nn.init.zeros_(self.bias)

    def forward(
        self,
        x: Tensor | None,
        adjacency: SymmetricAdjacency,
        h: Tensor,
        ax: Tensor | None = None,
        ah: Tensor | None = None,
        gates: Tensor | None = None,
    ) -> Tensor:
        """Advance the state.

        Parameters
        ----------
        x : Tensor (N, in_channels) or None
            Input; may be None when ``ax`` or ``gates`` is given.
        adjacency : SymmetricAdjacency
            Normalised adjacency (N, N).
        h : Tensor (N, d)
            Previous state.
        ax : Tensor (N, 3 d) or None, default: None
            ``lin_x(A x)`` computed by the caller (lets it batch the inputs known in advance).
        ah : Tensor (N, d) or None, default: None
            ``A h`` computed by the caller (lets it share the product with other GCNs of ``h``).
        gates : Tensor (N, 3 d) or None, default: None
            The whole propagated gate input ``lin_x(A x) + [lin_h(A h), 0]`` (bias excluded) computed by the caller;
            overrides the above.

        Returns
        -------
        Tensor (N, d)
            New state.
        """
        d = self.hidden_channels
        if gates is None:
            ax = self.lin_x(adjacency @ x) if ax is None else ax
            ah = adjacency @ h if ah is None else ah
            gates = ax + torch.nn.functional.pad(self.lin_h(ah), (0, d))
        gates = gates + self.bias
        g_sr, g_c = gates.split([2 * d, d], dim=1)
        s, r = torch.sigmoid(g_sr).chunk(2, dim=1)
        c = torch.tanh((adjacency @ self.lin_hc(r * h)) + g_c)
        return torch.lerp(c, h, s)  # s * h + (1 - s) * c

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels})"


class GraphGRU(nn.Module):
    """A stack of :class:`GraphGRUCell`; layer l > 0 reads the new state of layer l - 1.

    Parameters
    ----------
    in_channels : int
        Input size of the first layer.
    hidden_channels : int
        State size d of every layer.
    n_layers : int, default: 1
        Number of layers L.
    """

    def __init__(self, in_channels: int, hidden_channels: int, n_layers: int = 1):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}.")
        self.cells = nn.ModuleList(
            [GraphGRUCell(in_channels if i == 0 else hidden_channels, hidden_channels) for i in range(n_layers)]
        )

    @property
    def n_layers(self) -> int:
        return len(self.cells)

    def forward(
        self,
        x: Tensor | None,
        adjacency: SymmetricAdjacency,
        h: list[Tensor],
        ax: Tensor | None = None,
        ah: Tensor | None = None,
        gates: Tensor | None = None,
    ) -> list[Tensor]:
        """Advance every layer; ``h`` is the list of L previous states, the list of new states is returned.
        ``ax`` / ``ah`` / ``gates`` are the first layer's precomputed products (see :class:`GraphGRUCell`)."""
        out = []
        inp, first = x, {"ax": ax, "ah": ah, "gates": gates}
        for cell, h_l in zip(self.cells, h):
            new = cell(inp, adjacency, h_l, **first)
            out.append(new)
            inp, first = new, {}
        return out
