"""Temporal attention over the recurrent states of past windows, with an optional history node.

At window t the graph GRU proposes a state ``H~_t`` (one (N, d) tensor per layer). A graph-level summary ``s`` of
each step gives one query (current step) and one key per attended step; one softmax weight per step is shared by all
nodes (as published). With window ``w`` the attended steps are ``max(0, t - w + 1) .. t`` (the current step
included; None = the whole history, as published).

Two modes:

``"published"``
    ``H_t = sum_s alpha_ts V H_s``: the attended value *replaces* the recurrent state (the published TAVRNN). The
    summary is the state of the history node when one is wired into the graph (node index N), else the mean over
    nodes (the published code silently read the last real node instead).
``"gated"`` (default)
    ``a_t = sum_s alpha_ts V H_s``, ``g_t = sigmoid(W_g [s_t || sum_s alpha_ts s_s] + b_g)`` (one value per channel,
    from the graph-level summaries, like the attention weights), ``H_t = H~_t + g_t * (a_t - H~_t)``, with ``V``
    initialised to the identity and ``b_g`` to -4 (g ~ 0.02): the model starts as the plain graph GRU (VGRNN) and
    learns how much history to mix in at each window, so attention adds information instead of replacing it.
    The history node is a *readout* node: it receives from every node through learned attention pooling
    (``s = sum_i softmax_i(w . h_i + b) h_i``, initialised to the mean) and sends nothing into the GCN
    neighbourhoods (a node wired to every node gives every pair of nodes a common neighbour, which flattens the
    neighbourhoods the decoder has to reconstruct). Without a history node the summary is the mean over nodes.
    (A readout with its own recurrent state was tried and rejected: its first state, started from zero, gave a
    distinctive key that the softmax locked onto, mixing the first window's communities into every later state.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["TemporalAttention", "ATTENTION_MODES", "SEGMENT_WINDOWS", "segment_windows", "weighted_history"]

ATTENTION_MODES = ("gated", "published")

#: Past states are kept as stacked segments of at most this many consecutive windows (see :func:`weighted_history`).
SEGMENT_WINDOWS = 16


def segment_windows(steps: int) -> int:
    """Length of the stacked segments of a history of about ``steps`` steps: ``sqrt(steps)`` (between 2 and
    :data:`SEGMENT_WINDOWS`), which makes the operations per window, about ``steps / S + S``, fewest."""
    return int(min(SEGMENT_WINDOWS, max(2, round(math.sqrt(max(1, steps))))))


def weighted_history(weights: Tensor, segments: list[Tensor]) -> Tensor:
    """``sum_s weights[s] history[s]`` over a history kept as segments of consecutive steps, each (m_i, N, d), with
    ``sum_i m_i`` weights: one product per segment (a single step is one multiply-add).

    The recurrence keeps every past state for the backward pass anyway; the attention adds one stacked copy of each
    (made once, when a segment of S steps is complete, S about ``sqrt(T)``: :func:`segment_windows`) instead of an
    (m, N, d) stack per window, so the memory of whole-history attention grows as O(T N d) over a sequence, not
    O(T^2 N d), and a window attends with about T / S + S operations instead of T.
    """
    out = None
    for weight, segment in zip(weights.split([segment.shape[0] for segment in segments]), segments):
        if segment.shape[0] == 1:
            out = segment[0] * weight if out is None else torch.addcmul(out, segment[0], weight)
        else:
            part = torch.tensordot(weight, segment, dims=1)
            out = part if out is None else out + part
    return out


def _steps(segments: list[Tensor]) -> int:
    return sum(segment.shape[0] for segment in segments)


def _drop_oldest(segments: list[Tensor]) -> None:
    """Forget the oldest step of a segmented history, in place."""
    if segments[0].shape[0] == 1:
        del segments[0]
    else:
        segments[0] = segments[0][1:]


def _append_step(segments: list[Tensor], state: Tensor, length: int) -> None:
    """Append one step's state (N, d); once ``length`` single steps trail, stack them into one segment."""
    segments.append(state.unsqueeze(0))
    tail = 0
    for segment in reversed(segments):
        if segment.shape[0] != 1:
            break
        tail += 1
    if tail >= length:
        segments[-tail:] = [torch.cat(segments[-tail:])]


class TemporalAttention(nn.Module):
    """Attention of each window's recurrent state over the states of previous windows.

    Parameters
    ----------
    hidden_channels : int
        State size d.
    n_layers : int, default: 1
        Number of recurrent layers; the weights come from the last layer's summary, each layer has its own values
        (and gate).
    mode : {"gated", "published"}, default: "gated"
        See the module docstring.
    window : int or None, default: None
        Number of attended steps, the current one included; None = whole history.
    history_node : bool, default: True
        Use a history node as the summary (published: a graph node at index ``wired_index``; gated: an
        attention-pooling readout node). False: the mean over nodes.
    wired_index : int or None, default: None
        Row of the wired history node in the state (``"published"`` mode with a history node).
    """

    def __init__(
        self,
        hidden_channels: int,
        n_layers: int = 1,
        mode: str = "gated",
        window: int | None = None,
        history_node: bool = True,
        wired_index: int | None = None,
    ):
        super().__init__()
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention mode must be one of {ATTENTION_MODES}, got {mode!r}.")
        if window is not None and int(window) < 1:
            raise ValueError(f"attention_window must be None or >= 1, got {window}.")
        if mode == "published" and history_node and wired_index is None:
            raise ValueError("published attention with a history node needs the index of the wired history node.")
        d = hidden_channels
        self.hidden_channels = d
        self.n_layers = int(n_layers)
        self.mode = mode
        self.window = None if window is None else int(window)
        self.history_node = bool(history_node)
        self.wired_index = wired_index if (mode == "published" and history_node) else None
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)  # a key bias adds q.b to every score: softmax ignores it
        self.values = nn.ModuleList([nn.Linear(d, d) for _ in range(n_layers)])
        if mode == "gated":
            self.gates = nn.ModuleList([nn.Linear(2 * d, d) for _ in range(n_layers)])  # [s_t || context] -> g_t
            self.readout = nn.Linear(d, 1) if history_node else None
            for value in self.values:
                nn.init.eye_(value.weight)
                nn.init.zeros_(value.bias)
            if self.readout is not None:
                nn.init.zeros_(self.readout.weight)
                nn.init.zeros_(self.readout.bias)
            for gate in self.gates:
                nn.init.normal_(gate.weight, std=0.01)
                nn.init.constant_(gate.bias, -4.0)
        else:
            self.gates = None
            self.readout = None

    def initial_state(self, steps: int | None = None) -> dict:
        """Empty memory at the start of a sequence: the summaries of past steps and, per layer, their states as
        segments of consecutive steps (see :func:`weighted_history`), stacked by ``segment_windows`` steps.

        Parameters
        ----------
        steps : int or None, default: None
            Expected length of the sequence (sets the segment length, :func:`segment_windows`; the attention
            window bounds it); None: :data:`SEGMENT_WINDOWS`.
        """
        if steps is None:
            length = SEGMENT_WINDOWS
        else:
            length = segment_windows(steps if self.window is None else min(int(steps), self.window))
        return {"summaries": [], "segments": [[] for _ in range(self.n_layers)], "segment_windows": length}

    def _summary(self, h_last: Tensor) -> Tensor:
        if self.wired_index is not None:
            return h_last[self.wired_index]
        if self.readout is not None:
            return torch.softmax(self.readout(h_last), dim=0).t().matmul(h_last).squeeze(0)
        return h_last.mean(dim=0)

    def forward(self, h_tilde: list[Tensor], memory: dict) -> tuple[list[Tensor], Tensor]:
        """Attend and update the memory in place.

        Parameters
        ----------
        h_tilde : list of Tensor (N, d)
            The GRU's proposed state, one per layer.
        memory : dict
            From :meth:`initial_state`, carried across steps.

        Returns
        -------
        states : list of Tensor (N, d)
            ``H_t``, one per layer.
        weights : Tensor (n_attended,)
            Softmax weights over the attended steps, oldest first, the current step last.
        """
        summary = self._summary(h_tilde[-1])
        summaries = memory["summaries"] + [summary]
        if self.window is not None:
            summaries = summaries[-self.window :]
        stacked_summaries = torch.stack(summaries)
        scores = self.key(stacked_summaries) @ self.query(summary) / math.sqrt(self.hidden_channels)
        weights = torch.softmax(scores, dim=0)
        if self.mode == "gated":
            context = torch.cat([summary, weights @ stacked_summaries])
        out = []
        for layer in range(len(h_tilde)):
            # sum_s alpha_s V(H_s) = V(sum_s alpha_s H_s): the weights sum to 1, so the bias is kept
            history = memory["segments"][layer] + [h_tilde[layer].unsqueeze(0)]
            while _steps(history) > len(summaries):
                history = history[:]
                _drop_oldest(history)
            attended = self.values[layer](weighted_history(weights, history))
            if self.mode == "published":
                out.append(attended)
            else:
                gate = torch.sigmoid(self.gates[layer](context))  # (d,): per channel, from graph-level summaries
                out.append(torch.lerp(h_tilde[layer], attended, gate))

        # Remember step t. Gated: the summary of the GRU's proposal (already computed); published: as coded by the
        # authors, the summary (history node) of the final state.
        memory["summaries"].append(summary if self.mode == "gated" else self._summary(out[-1]))
        length = memory.get("segment_windows", SEGMENT_WINDOWS)
        for segments, state in zip(memory["segments"], out):
            _append_step(segments, state, length)
        if self.window is not None and len(memory["summaries"]) >= self.window:
            del memory["summaries"][0]
            for segments in memory["segments"]:
                _drop_oldest(segments)
        return out, weights
