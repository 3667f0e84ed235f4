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

__all__ = ["TemporalAttention", "ATTENTION_MODES"]

ATTENTION_MODES = ("gated", "published")


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

    def initial_state(self, n_nodes: int, device: torch.device) -> dict:
        """Empty memory at the start of a sequence."""
        return {"summaries": [], "states": []}

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
        states = memory["states"] + [h_tilde]
        if self.window is not None:
            summaries, states = summaries[-self.window :], states[-self.window :]
        stacked_summaries = torch.stack(summaries)
        scores = self.key(stacked_summaries) @ self.query(summary) / math.sqrt(self.hidden_channels)
        weights = torch.softmax(scores, dim=0)
        if self.mode == "gated":
            context = torch.cat([summary, weights @ stacked_summaries])
        out = []
        for layer in range(len(h_tilde)):
            stacked = torch.stack([step[layer] for step in states])
            # sum_s alpha_s V(H_s) = V(sum_s alpha_s H_s): the weights sum to 1, so the bias is kept
            attended = self.values[layer](torch.tensordot(weights, stacked, dims=1))
            if self.mode == "published":
                out.append(attended)
            else:
                gate = torch.sigmoid(self.gates[layer](context))  # (d,): per channel, from graph-level summaries
                out.append(torch.lerp(h_tilde[layer], attended, gate))

        # Remember step t. Gated: the summary of the GRU's proposal (already computed); published: as coded by the
        # authors, the summary (history node) of the final state.
        memory["summaries"].append(summary if self.mode == "gated" else self._summary(out[-1]))
        memory["states"].append(out)
        if self.window is not None and len(memory["summaries"]) >= self.window:
            del memory["summaries"][0], memory["states"][0]
        return out, weights


def gated_step_forward(h_tilde, buf, t, start, w_r, b_r, w_q, b_q, w_k, w_v, b_v, w_g, b_g, rows=None):
    """One gated attention step (one layer) without autograd: the forward half of the fused sequence.

    Same function as :meth:`TemporalAttention.forward` in ``"gated"`` mode with one layer. The attended states and
    summaries of earlier steps are kept in the shared buffers ``buf`` of the sequence (see
    :func:`gated_attention_memory`), so a step costs a few whole-history products instead of a stack of the history.
    ``rows`` (optional) holds preallocated tensors to write ``"a"``, ``"out"`` (N, d), ``"q"`` (d,) and
    ``"context"`` (2d,) into. Returns ``(H_t, weights, saved)``.
    """
    n, d = h_tilde.shape
    row = (lambda name: None) if rows is None else rows.get
    states, summaries = buf["states"], buf["summaries"]
    summary = summaries[t]  # written in place
    if w_r is not None:
        p = torch.softmax(torch.mv(h_tilde, w_r[0]).add_(b_r), dim=0)  # (N,)
        torch.mv(h_tilde.t(), p, out=summary)
    else:
        p = None
        torch.mean(h_tilde, dim=0, out=summary)
    u = summaries[start : t + 1]  # (m, d), the current summary last
    q = torch.addmv(b_q, w_q, summary, out=row("q"))
    keys = u @ w_k.t()
    weights = torch.softmax(torch.mv(keys, q).mul_(1.0 / math.sqrt(d)), dim=0)
    parts = [summary, torch.mv(u.t(), weights)]
    context = torch.cat(parts, out=row("context"))
    a = _weighted_history(h_tilde, states, t, start, weights, row("a"))
    gate = torch.sigmoid(torch.addmv(b_g, w_g, context))
    diff = torch.addmm(b_v, a, w_v.t()).sub_(h_tilde)  # attended - h~
    out = torch.addcmul(h_tilde, diff, gate, out=row("out"))
    states[t].copy_(out)
    saved = (h_tilde, p, w_r, w_q, w_k, w_v, w_g, q, keys, weights, context, a, diff, gate)
    return out, weights, saved


def gated_step_backward(saved, d_out, buf, t, start, sink=None):
    """The backward half of :func:`gated_step_forward`. Returns ``(d_h_tilde, param_grads)``.

    Gradients reaching earlier steps' states and summaries through this step's attention are accumulated in
    ``buf["g_states"]`` and ``buf["g_summaries"]`` and consumed (then zeroed) by the step that produced them. This
    is exact because every later step depends on this step's output through the recurrence, so later steps' backward
    runs first. Without ``sink``, ``param_grads`` are the gradients of ``(w_r, b_r, w_q, b_q, w_k, w_v, b_v, w_g,
    b_g)`` (None for an absent readout). With ``sink``, a dict of preallocated tensors ``"d_att"`` (N, d),
    ``"d_gate"``, ``"d_q"``, ``"ud"`` (d,) and ``"d_logits"`` (N,) (with a readout), their factors are written
    there and ``param_grads`` is None: the caller takes them for all windows at once.
    """
    (h_tilde, p, w_r, w_q, w_k, w_v, w_g, q, keys, weights, context, a, diff, gate) = saved
    n, d = h_tilde.shape
    row = (lambda name: None) if sink is None else sink.get
    aten = torch.ops.aten
    g_states, g_summaries = buf["g_states"], buf["g_summaries"]
    d_out = g_states[t].clone() if d_out is None else d_out + g_states[t]
    g_states[t].zero_()
    summaries = buf["summaries"]
    u = summaries[start : t + 1]
    summary = summaries[t]
    scale = 1.0 / math.sqrt(d)

    # out = h~ + g (att - h~)
    d_att = torch.mul(d_out, gate, out=row("d_att"))
    d_h = d_out - d_att
    d_gate_sum = (d_out * diff).sum(0)
    d_gpre = (
        aten.sigmoid_backward(d_gate_sum, gate)
        if row("d_gate") is None
        else aten.sigmoid_backward.grad_input(d_gate_sum, gate, grad_input=row("d_gate"))
    )
    d_context = torch.mv(w_g.t(), d_gpre)
    d_u_t, d_ctx = d_context[:d], d_context[d:]
    # att = a W_v^T + b_v, a = sum_s alpha_s H_s (H_t = h~)
    d_h_att, d_alpha = _weighted_history_backward(h_tilde, buf, t, start, weights, d_att @ w_v)
    d_h.add_(d_h_att)
    d_alpha.addmv_(u, d_ctx)
    # weights = softmax(K q / sqrt(d)), K = U W_k^T, q = W_q u_t + b_q
    d_scores = aten._softmax_backward_data(d_alpha, weights, 0, weights.dtype).mul_(scale)
    d_q = torch.mv(keys.t(), d_scores, out=row("d_q"))
    d_u_t.add_(torch.mv(w_q.t(), d_q))
    ud = torch.mv(u.t(), d_scores, out=row("ud"))
    d_u = torch.outer(weights, d_ctx).addr_(d_scores, torch.mv(w_k.t(), q))
    if t > start:
        g_summaries[start:t] += d_u[:-1]
    d_u_t.add_(d_u[-1]).add_(g_summaries[t])
    g_summaries[t].zero_()
    # summary
    d_logits = None
    if p is not None:
        d_h.addr_(p, d_u_t)
        d_p = torch.mv(h_tilde, d_u_t)
        d_logits = (
            aten._softmax_backward_data(d_p, p, 0, p.dtype)
            if row("d_logits") is None
            else aten._softmax_backward_data.out(d_p, p, 0, p.dtype, grad_input=row("d_logits"))
        )
        d_h.addr_(d_logits, w_r[0])
    else:
        d_h.add_(d_u_t, alpha=1.0 / n)
    if sink is not None:
        return d_h, None
    param_grads = (
        None if p is None else torch.mv(h_tilde.t(), d_logits).unsqueeze(0),  # w_r
        None if p is None else d_logits.sum(0, keepdim=True),  # b_r
        torch.outer(d_q, summary),  # w_q
        d_q,  # b_q
        torch.outer(q, ud),  # w_k: d_keys^T U with d_keys = d_scores q^T
        d_att.t() @ a,  # w_v
        d_att.sum(0),  # b_v
        torch.outer(d_gpre, context),  # w_g
        d_gpre,  # b_g
    )
    return d_h, param_grads


def published_step_forward(h_tilde, buf, t, start, wired, w_q, b_q, w_k, w_v, b_v, rows=None):
    """One published attention step (one layer) without autograd: :meth:`TemporalAttention.forward` in
    ``"published"`` mode with one layer, in the shared buffers of :func:`gated_attention_memory`.

    ``H_t = V(sum_s alpha_s H_s)``. The summary of a state is its row ``wired`` (the wired history node) or, with
    ``wired=None``, its mean over nodes; past steps are keyed by the summaries of their final states and the current
    one by that of its proposal, as published. ``rows`` (optional) holds preallocated ``"a"``, ``"out"`` (N, d),
    ``"q"`` and ``"current"`` (d,) to write into. Returns ``(H_t, weights, saved)``.
    """
    n, d = h_tilde.shape
    row = (lambda name: None) if rows is None else rows.get
    states, summaries = buf["states"], buf["summaries"]
    current = row("current") if row("current") is not None else h_tilde.new_empty(d)
    current.copy_(h_tilde[wired]) if wired is not None else torch.mean(h_tilde, dim=0, out=current)
    u = torch.cat([summaries[start:t], current.unsqueeze(0)])  # (m, d), the current summary last
    q = torch.addmv(b_q, w_q, current, out=row("q"))
    keys = u @ w_k.t()
    weights = torch.softmax(torch.mv(keys, q).mul_(1.0 / math.sqrt(d)), dim=0)
    a = _weighted_history(h_tilde, states, t, start, weights, row("a"))
    out = torch.addmm(b_v, a, w_v.t(), out=row("out"))  # sum_s alpha_s V(H_s): the weights sum to 1
    states[t].copy_(out)
    summaries[t].copy_(out[wired]) if wired is not None else torch.mean(out, dim=0, out=summaries[t])
    saved = (h_tilde, w_q, w_k, w_v, q, keys, weights, current, u, a)
    return out, weights, saved


def published_step_backward(saved, d_out, buf, t, start, wired, sink=None):
    """The backward half of :func:`published_step_forward`. Returns ``(d_h_tilde, param_grads)``: the gradients of
    ``(w_q, b_q, w_k, w_v, b_v)``, or None with ``sink`` (preallocated ``"d_out"`` (N, d), ``"d_q"`` and ``"ud"``
    (d,) that receive their factors; see :func:`gated_step_backward` for the shared history gradients)."""
    (h_tilde, w_q, w_k, w_v, q, keys, weights, current, u, a) = saved
    n, d = h_tilde.shape
    row = (lambda name: None) if sink is None else sink.get
    g_states, g_summaries = buf["g_states"], buf["g_summaries"]
    d_out = torch.add(g_states[t], 0.0, out=row("d_out")) if d_out is None else torch.add(
        d_out, g_states[t], out=row("d_out")
    )
    g_states[t].zero_()
    # later steps keyed on this step's summary (of its final state)
    if wired is not None:
        d_out[wired].add_(g_summaries[t])
    else:
        d_out.add_(g_summaries[t], alpha=1.0 / n)
    g_summaries[t].zero_()
    d_a = d_out @ w_v  # out = a W_v^T + b_v
    d_h, d_alpha = _weighted_history_backward(h_tilde, buf, t, start, weights, d_a)
    d_scores = torch.ops.aten._softmax_backward_data(d_alpha, weights, 0, weights.dtype).mul_(1.0 / math.sqrt(d))
    d_q = torch.mv(keys.t(), d_scores, out=row("d_q"))
    d_current = torch.mv(w_q.t(), d_q)
    ud = torch.mv(u.t(), d_scores, out=row("ud"))
    d_u = torch.outer(d_scores, torch.mv(w_k.t(), q))
    if t > start:
        g_summaries[start:t] += d_u[:-1]
    d_current.add_(d_u[-1])
    if wired is not None:
        d_h[wired].add_(d_current)
    else:
        d_h.add_(d_current, alpha=1.0 / n)
    if sink is not None:
        return d_h, None
    return d_h, (torch.outer(d_q, current), d_q, torch.outer(q, ud), d_out.t() @ a, d_out.sum(0))


def _weighted_history(h_tilde, states, t, start, weights, out=None):
    """``sum_s alpha_s H_s`` over the stored past steps ``start..t-1`` and the current proposal (weight last)."""
    a = h_tilde.new_empty(h_tilde.shape) if out is None else out
    if t > start:  # no host sync for the current weight
        torch.mv(states[start:t].view(t - start, -1).t(), weights[:-1], out=a.view(-1))
        a.addcmul_(h_tilde, weights[-1])
    else:
        torch.mul(h_tilde, weights[-1], out=a)
    return a


def _weighted_history_backward(h_tilde, buf, t, start, weights, d_a):
    """Gradients of :func:`_weighted_history`: returns ``(d_h_tilde, d_weights)`` and accumulates the past steps'
    share in ``buf["g_states"]``."""
    flat_d_a = d_a.view(-1)
    d_alpha = h_tilde.new_empty(weights.shape[0])
    torch.dot(flat_d_a, h_tilde.view(-1), out=d_alpha[-1])
    if t > start:
        torch.mv(buf["states"][start:t].view(t - start, -1), flat_d_a, out=d_alpha[:-1])
        buf["g_states"][start:t].view(t - start, -1).addr_(weights[:-1], flat_d_a)
    return d_a * weights[-1], d_alpha


def gated_attention_memory(n_windows: int, n_nodes: int, d: int, device, dtype) -> dict:
    """Shared buffers of a sequence for :func:`gated_step_forward` / :func:`gated_step_backward`."""
    return {
        "fused": True,
        "t": 0,
        "states": torch.zeros(n_windows, n_nodes, d, device=device, dtype=dtype),
        "summaries": torch.zeros(n_windows, d, device=device, dtype=dtype),
        "g_states": torch.zeros(n_windows, n_nodes, d, device=device, dtype=dtype),
        "g_summaries": torch.zeros(n_windows, d, device=device, dtype=dtype),
    }


def sequence_attention_parameters(attention: TemporalAttention) -> tuple:
    """A one-layer attention's parameters in the order :func:`gated_step_forward` or :func:`published_step_forward`
    takes them."""
    if attention.mode == "published":
        return (
            attention.query.weight, attention.query.bias, attention.key.weight,
            attention.values[0].weight, attention.values[0].bias,
        )  # fmt: skip
    ro = attention.readout
    return (
        None if ro is None else ro.weight, None if ro is None else ro.bias,
        attention.query.weight, attention.query.bias, attention.key.weight,
        attention.values[0].weight, attention.values[0].bias, attention.gates[0].weight, attention.gates[0].bias,
    )  # fmt: skip
