"""A whole sequence of one-layer VGRNN / TAVRNN windows (gated or published attention) as a single autograd node.

Per window, :func:`.fused.step_forward` and (TAVRNN) :func:`.attention.gated_step_forward` or
:func:`.attention.published_step_forward` run without autograd and write into preallocated (T, N, .) buffers;
backward walks the windows in reverse with their backward halves. Two things make this cheaper than one autograd
node per window, at the same function:

* no per-window autograd bookkeeping (node creation, saved-tensor packing, engine dispatch, stacking of outputs);
* the weight gradients are sums over windows of products with saved activations (``sum_t dG_t^T X_t``). Each window
  only writes its ``dG_t`` into a buffer, and every weight gradient is one (T N)-long product at the end, which
  uses all cores instead of T small products on one.

On the CPU in float32, with gated or no attention, the windows run in the compiled kernels of :mod:`.cpu_kernels`
instead (one call for the forward pass of all windows, one for the backward pass), which write the same buffers.

The price is memory: the gradient factors of all windows are kept until the end of backward (about
``T * N * (10 h_dim + 2 z_dim)`` floats, 23 MB at 900 nodes and 19 windows). These scratch buffers are reused from
one training step to the next (:class:`WorkspacePool`): fresh buffers of this size cost thousands of page faults
per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .attention import (
    gated_step_backward,
    gated_step_forward,
    published_step_backward,
    published_step_forward,
)
from .fused import step_backward, step_forward

__all__ = ["SequenceSpec", "FusedSequence", "WorkspacePool"]


class WorkspacePool:
    """Scratch buffers of :class:`FusedSequence` kept between calls: at most one free set per shape, and at most
    ``max_sets`` sets in all (the most recently returned), so training on many recordings of different sizes does not
    accumulate a set per recording.

    A forward pass takes a set (or allocates one) and holds it until its backward pass has run, so two graphs alive
    at once never share buffers. :meth:`clear` drops the free sets (the estimator calls it when training ends).
    """

    def __init__(self, max_sets: int = 4):
        self.max_sets = int(max_sets)
        self._free: dict[tuple, dict] = {}

    def take(self, key: tuple, make) -> dict:
        """A free set of buffers for ``key``, or ``make()``."""
        found = self._free.pop(key, None)
        return make() if found is None else found

    def give(self, key: tuple, buffers: dict) -> None:
        """Return a set taken with :meth:`take` once nothing reads it any more."""
        self._free.pop(key, None)
        self._free[key] = buffers  # dicts keep insertion order: the oldest set is first
        while len(self._free) > self.max_sets:
            del self._free[next(iter(self._free))]

    def clear(self) -> None:
        self._free.clear()


@dataclass
class SequenceSpec:
    """The non-tensor inputs of :class:`FusedSequence`.

    Attributes
    ----------
    adjacency : list of Tensor
        The T normalised sparse adjacencies.
    memory : dict or None
        Attention buffers (:func:`.attention.gated_attention_memory`, for both modes) with ``memory["t"]`` past
        windows already in them; None without attention.
    window : int or None
        Attention window (None = whole history).
    mode : {"gated", "published"}
        Attention mode (see :mod:`.attention`).
    wired : int or None
        Row of the wired history node (published mode; None: summaries are means over nodes).
    pool : WorkspacePool or None
        Where scratch buffers are reused from; None allocates them at every call.
    csr : tuple or None
        The adjacency as one CSR over all windows (:func:`.cpu_kernels.concatenated_csr`). When given, and the
        sequence is float32 on the CPU without published attention, the compiled kernels of :mod:`.cpu_kernels`
        run it; otherwise the PyTorch step functions do.
    compiled : bool
        Set by :class:`FusedSequence`: whether the compiled kernels ran.
    on_windows : callable or None
        ``on_windows(z, 0, t1)``, called by the compiled forward pass once its first half of the windows
        (``t < t1``) is final, so that work on them can start while the second half runs. Only when the pass runs on
        the calling thread alone (see :func:`kernel_team_size`): a team of threads leaves no core free for it.
    """

    adjacency: list
    memory: dict | None = None
    window: int | None = None
    mode: str = "gated"
    wired: int | None = None
    pool: WorkspacePool | None = None
    csr: tuple | None = None
    compiled: bool = False
    on_windows: Any = None


def _take(spec: SequenceSpec, key: tuple, make) -> dict:
    return make() if spec.pool is None else spec.pool.take(key, make)


def _give(spec: SequenceSpec, key: tuple, buffers: dict) -> None:
    if spec.pool is not None:
        spec.pool.give(key, buffers)


class FusedSequence(torch.autograd.Function):
    """``(mu, sigma, z, h_prev, h_last, attention) = sequence(spec, proj, eps, h0, *step_params, *attention_params)``.

    Parameters
    ----------
    spec : SequenceSpec
    proj : Tensor (T or 1, N, 4d)
        ``[pe | pg]`` of every window (one row shared by all windows for identity features).
    eps : Tensor (T, N, k) or None
        Reparameterisation noise; None gives ``z = mu``.
    h0 : Tensor (N, d)
        State before the first window.
    step_params :
        ``w_h, b_enc, w_post, b_post, w_z, b_z, w_gz, b_gru, w_hc`` (see :mod:`.fused`).
    attention_params :
        With ``spec.memory``, the attention's parameters (:func:`.attention.sequence_attention_parameters`): nine in
        gated mode, five in published mode; none without attention.

    Returns
    -------
    mu, sigma, z : Tensor (T, N, k)
    h_prev : Tensor (T, N, d)
        The state each window started from (``H_{t-1}``; the prior's input).
    h_last : Tensor (N, d)
        The state after the last window.
    attention : Tensor (T, m + T) or None
        Attention weights (not differentiable), ``m`` the past windows already in the memory.
    """

    @staticmethod
    def forward(ctx, spec: SequenceSpec, proj: Tensor, eps: Tensor | None, h0: Tensor, *params: Any):
        step_params, att_params = params[:9], params[9:]
        memory = spec.memory
        n_windows = len(spec.adjacency)
        n, d = h0.shape
        k = step_params[2].shape[0] // 2
        like = dict(device=h0.device, dtype=h0.dtype)
        shared = proj.shape[0] == 1
        mu, sigma, z = (torch.empty(n_windows, n, k, **like) for _ in range(3))
        states = torch.empty(n_windows + 1, n, d, **like)  # H_{-1} (= h0), H_0, ..., H_{T-1}
        states[0] = h0
        gated = memory is not None and spec.mode == "gated"
        kernels = (
            spec.csr is not None
            and h0.device.type == "cpu"
            and h0.dtype == torch.float32
            and (memory is None or gated)
        )
        spec.compiled = kernels
        key = ("forward", n_windows, n, d, memory is not None, spec.mode, kernels, h0.device, h0.dtype)

        def make() -> dict:
            names = ("ae", "pz", "rh") + (("proposals", "attended") if memory is not None else ())
            if kernels:  # activations the compiled backward reads (the PyTorch path keeps them per window)
                names += ("e", "c") + (("diff",) if memory is not None else ())
            buffers = {name: torch.empty(n_windows, n, d, **like) for name in names}
            if memory is not None:  # per window: the query, and the context (gated) or current summary (published)
                buffers["queries"] = torch.empty(n_windows, d, **like)
                buffers["contexts"] = torch.empty(n_windows, 2 * d if gated else d, **like)
            if kernels:
                buffers["sr"] = torch.empty(n_windows, n, k, **like)
                buffers["sg"] = torch.empty(n_windows, n, 2 * d, **like)
                if memory is not None:
                    buffers["gate"] = torch.empty(n_windows, d, **like)
                    buffers["p"] = torch.empty(n_windows, n, **like)
            return buffers

        training = any(ctx.needs_input_grad)  # else no backward will run: plain allocations, nothing kept
        work = _take(spec, key, make) if training else make()
        ae, pz, rh = work["ae"], work["pz"], work["rh"]
        if memory is not None:
            proposals, attended, queries, contexts = (work[x] for x in ("proposals", "attended", "queries", "contexts"))
            n_past = memory["t"]
            attention = torch.zeros(n_windows, n_past + n_windows, **like)
        else:
            n_past, attention = 0, None
        saved_steps, saved_att, spans = [], [], []
        if kernels:
            n_threads = kernel_team_size(n)
            run = (spec, proj, eps, step_params, att_params, mu, sigma, z, states, work, attention, n_threads)
            # alone, the recurrence hands its first half of the windows to on_windows, to run beside its second
            # half; a team of threads leaves no core free for that
            half = n_windows // 2 if spec.on_windows is not None and n_threads == 1 else 0
            if half:
                _kernel_forward(*run, 0, half)
                spec.on_windows(z, 0, half)
            _kernel_forward(*run, half, n_windows)
            if memory is not None:
                memory["t"] = n_past + n_windows
        else:
            for t, adj in enumerate(spec.adjacency):
                rows = {"mu": mu[t], "sigma": sigma[t], "z": z[t], "ae": ae[t], "pz": pz[t], "rh": rh[t]}
                rows["h_new"] = proposals[t] if memory is not None else states[t + 1]
                eps_t = None if eps is None else eps[t]
                *_, h_new, saved = step_forward(
                    adj, states[t], proj[0 if shared else t], None, eps_t, *step_params, rows=rows
                )
                saved_steps.append(saved[:10] + (None,) + saved[11:])  # z is read from the output buffer in backward
                if memory is not None:
                    tt = memory["t"]
                    start = 0 if spec.window is None else max(0, tt - spec.window + 1)
                    att_rows = {"a": attended[t], "out": states[t + 1], "q": queries[t]}
                    if gated:
                        att_rows["context"] = contexts[t]
                        _, weights, saved_a = gated_step_forward(h_new, memory, tt, start, *att_params, rows=att_rows)
                    else:
                        att_rows["current"] = contexts[t]
                        _, weights, saved_a = published_step_forward(
                            h_new, memory, tt, start, spec.wired, *att_params, rows=att_rows
                        )
                    memory["t"] = tt + 1
                    attention[t, start : tt + 1] = weights
                    saved_att.append(saved_a)
                    spans.append((tt, start))
        ctx.spec, ctx.shared = spec, shared
        ctx.eps, ctx.attention = eps, attention
        ctx.saved_steps, ctx.saved_att, ctx.spans = saved_steps, saved_att, spans
        ctx.work = (key, work) if training else None
        ctx.buffers = (ae, pz, rh, states)
        if memory is not None:
            ctx.att_buffers = (proposals, attended, queries, contexts, n_past)
            ctx.mark_non_differentiable(attention)
        ctx.gated = gated
        ctx.kernels = kernels
        ctx.has_readout = gated and att_params[0] is not None
        ctx.param_inputs = params
        ctx.save_for_backward(z)
        h_prev = states[:n_windows].view(n_windows, n, d)
        return mu, sigma, z, h_prev, states[n_windows].clone(), attention

    @staticmethod
    def backward(ctx, d_mu, d_sigma, d_z, d_h_prev, d_h_last, _d_attention):
        (z,) = ctx.saved_tensors
        spec, memory = ctx.spec, ctx.spec.memory
        if ctx.work is None:
            raise RuntimeError(
                "FusedSequence cannot run backward twice (its buffers are reused after the first); set the module's "
                "`fused = False` to back-propagate through one forward pass more than once."
            )
        ae, pz, rh, states = ctx.buffers
        step_params = ctx.param_inputs[:9]
        w_h = step_params[0]
        n_windows, n, k = z.shape
        d = states.shape[2]
        like = dict(device=z.device, dtype=z.dtype)
        d_hp = torch.empty(n_windows, n, 4 * d, **like)  # returned (the gradient of proj): never reused
        key = ("backward", n_windows, n, d, k, memory is not None, ctx.gated, ctx.has_readout, z.device, z.dtype)

        def make() -> dict:
            buffers = {name: torch.empty(n_windows, n, d, **like) for name in ("d_a1", "d_pz", "d_gc")}
            buffers["d_post"] = torch.empty(n_windows, n, 2 * k, **like)
            buffers["d_gsr"] = torch.empty(n_windows, n, 2 * d, **like)
            if memory is not None:
                buffers["d_att"] = torch.empty(n_windows, n, d, **like)
                for name in ("d_gate", "d_q", "ud") if ctx.gated else ("d_q", "ud"):
                    buffers[name] = torch.empty(n_windows, d, **like)
                if ctx.has_readout:
                    buffers["d_logits"] = torch.empty(n_windows, n, **like)
            return buffers

        grads = _take(spec, key, make)
        d_a1, d_pz, d_gc, d_post, d_gsr = (grads[x] for x in ("d_a1", "d_pz", "d_gc", "d_post", "d_gsr"))
        if memory is not None:
            d_att, d_gate, d_q, ud = (grads.get(x) for x in ("d_att", "d_gate", "d_q", "ud"))
            d_logits = grads.get("d_logits")
        carry = d_h_last  # gradient of the state after window t
        if ctx.kernels:
            carry = _kernel_backward(ctx, z, step_params, d_mu, d_sigma, d_z, d_h_prev, d_h_last, d_hp, grads)
        else:
            for t in reversed(range(n_windows)):
                d_state = carry
                if memory is not None:
                    tt, start = ctx.spans[t]
                    if ctx.gated:
                        sink = {"d_att": d_att[t], "d_gate": d_gate[t], "d_q": d_q[t], "ud": ud[t]}
                        if d_logits is not None:
                            sink["d_logits"] = d_logits[t]
                        d_state, _ = gated_step_backward(ctx.saved_att[t], d_state, memory, tt, start, sink=sink)
                    else:  # published: the whole output gradient is the value's (no gate)
                        sink = {"d_out": d_att[t], "d_q": d_q[t], "ud": ud[t]}
                        d_state, _ = published_step_backward(
                            ctx.saved_att[t], d_state, memory, tt, start, spec.wired, sink=sink
                        )
                saved = list(ctx.saved_steps[t])
                saved[10] = z[t]
                sink = {"d_hp": d_hp[t], "d_a1": d_a1[t], "d_post": d_post[t], "d_pz": d_pz[t], "d_gsr": d_gsr[t],
                        "d_gc": d_gc[t]}  # fmt: skip
                carry, _, _ = step_backward(
                    spec.adjacency[t], saved,
                    None if d_mu is None else d_mu[t], None if d_sigma is None else d_sigma[t],
                    None if d_z is None else d_z[t], d_state, sink=sink,
                )  # fmt: skip
                if d_h_prev is not None:
                    carry = carry + d_h_prev[t]  # h_prev[t] is the state window t started from

        def flat(x: Tensor) -> Tensor:
            return x.reshape(n_windows * n, x.shape[-1])

        d_hp_flat = flat(d_hp)
        width = w_h.shape[0]
        step_grads = (
            _weight_grad(d_hp_flat[:, :width], flat(states[:n_windows])),  # w_h
            flat(d_a1).sum(0),  # b_enc
            _weight_grad(flat(d_post), flat(ae)),  # w_post
            flat(d_post).sum(0),  # b_post
            _weight_grad(flat(d_pz), flat(z)),  # w_z
            flat(d_pz).sum(0),  # b_z
            _weight_grad(d_hp_flat[:, d:], flat(pz)),  # w_gz
            torch.cat([flat(d_gsr).sum(0), flat(d_gc).sum(0)]),  # b_gru
            _weight_grad(d_hp_flat[:, 3 * d :], flat(rh)),  # w_hc
        )
        att_grads = ()
        if memory is not None and not ctx.gated:
            _, attended, queries, currents, _ = ctx.att_buffers
            att_grads = (
                d_q.t() @ currents,  # w_q
                d_q.sum(0),  # b_q
                queries.t() @ ud,  # w_k
                _weight_grad(flat(d_att), flat(attended)),  # w_v
                flat(d_att).sum(0),  # b_v
            )
        elif memory is not None:
            proposals, attended, queries, contexts, n_past = ctx.att_buffers
            summaries = memory["summaries"][n_past : n_past + n_windows]
            att_grads = (
                None if d_logits is None else (d_logits.reshape(1, -1) @ flat(proposals)),  # w_r
                None if d_logits is None else d_logits.sum().reshape(1),  # b_r
                d_q.t() @ summaries,  # w_q
                d_q.sum(0),  # b_q
                queries.t() @ ud,  # w_k
                _weight_grad(flat(d_att), flat(attended)),  # w_v
                flat(d_att).sum(0),  # b_v
                d_gate.t() @ contexts,  # w_g
                d_gate.sum(0),  # b_g
            )
        _give(spec, key, grads)
        _give(spec, *ctx.work)
        ctx.work = None
        d_proj = d_hp.sum(0, keepdim=True) if ctx.shared else d_hp
        return (None, d_proj, None, carry, *step_grads, *att_grads)


def _weight_grad(d_out: Tensor, x: Tensor) -> Tensor:
    """``d_out^T x`` (a weight gradient, summed over the (T N) rows). MKL is several times slower when the result has
    more rows than columns (a (32, TN) x (TN, 8) product took 0.87 ms, its transpose 0.16 ms), so the wider side
    goes right."""
    if d_out.shape[1] > x.shape[1]:
        return (x.t() @ d_out).t()
    return d_out.t() @ x


_DUMMY = {ndim: np.zeros((1,) * ndim, dtype=np.float32) for ndim in (1, 2, 3)}
_BLAS: list = []  # the threadpoolctl controller of the BLAS libraries the kernels' products call, made once


def _one_blas_thread():
    """A context in which the BLAS behind NumPy / SciPy (that the kernels' ``np.dot`` calls) uses one thread.

    The kernels' products are small; a second OpenBLAS thread gains nothing there, and it busy-waits for a long
    while after each product, taking a core from PyTorch's own threads (epochs ran ~1.8x slower).
    """
    if not _BLAS:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController().select(user_api="blas"))
    return _BLAS[0].limit(limits=1)


def _np(x: Tensor | None, ndim: int = 1) -> np.ndarray:
    """A NumPy view of a CPU tensor (contiguous), or a placeholder for an absent one."""
    return _DUMMY[ndim] if x is None else x.detach().contiguous().numpy()


def _np_t(w: Tensor) -> np.ndarray:
    """A weight matrix transposed to (inputs, outputs), as the kernels take it."""
    return w.detach().t().contiguous().numpy()


def _kernel_forward(
    spec, proj, eps, step_params, att_params, mu, sigma, z, states, work, attention, n_threads, t0, t1
) -> None:
    """:func:`.cpu_kernels.sequence_forward` over windows ``t0 <= t < t1`` (from the state ``states[t0]``) on a team
    of ``n_threads`` (:func:`kernel_team_size`), writing the outputs and the buffers of ``work``."""
    w_h, b_enc, w_post, b_post, w_z, b_z, w_gz, b_gru, w_hc = step_params
    memory = spec.memory
    attend = memory is not None
    shared = proj.shape[0] == 1
    if attend:
        w_r, b_r, w_q, b_q, w_k, w_v, b_v, w_g, b_g = att_params
        readout = w_r is not None
        att = (
            readout, _np(w_r[0] if readout else None), _np(b_r), _np_t(w_q), _np(b_q), _np_t(w_k), _np_t(w_v),
            _np(b_v), _np_t(w_g), _np(b_g),
            memory["states"].numpy(), memory["summaries"].numpy(), memory["t"] + t0, spec.window or 0,
        )  # fmt: skip
        names = ("proposals", "attended", "queries", "contexts", "p", "gate", "diff")
        extra = tuple(work[x][t0:t1].numpy() for x in names)
        att_out = attention[t0:t1].numpy()
    else:
        att = (False, _DUMMY[1], _DUMMY[1], _DUMMY[2], _DUMMY[1], _DUMMY[2], _DUMMY[2], _DUMMY[1], _DUMMY[2],
               _DUMMY[1], _DUMMY[3], _DUMMY[2], 0, 0)  # fmt: skip
        extra = (_DUMMY[3], _DUMMY[3], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[3])
        att_out = _DUMMY[2]
    from . import cpu_kernels, omp_team  # compiled on first use: importing the model stays light

    indptr, indices, values = spec.csr
    n, d = states.shape[1:]
    shared_scratch = (
        np.empty((n, d), dtype=np.float32), np.empty((n, 3 * d), dtype=np.float32),
        np.empty((n, d), dtype=np.float32), _partials(n, d, memory),
    )  # fmt: skip
    args = (
        *shared_scratch,
        indptr[t0:t1], indices, values, _np(proj if shared else proj[t0:t1]), shared,
        _np(None if eps is None else eps[t0:t1], 3), eps is not None, states[t0].numpy(),
        _np_t(w_h), _np(b_enc), _np_t(w_post), _np(b_post), _np_t(w_z), _np(b_z), _np_t(w_gz), _np(b_gru),
        _np_t(w_hc),
        attend, *att,
        mu[t0:t1].numpy(), sigma[t0:t1].numpy(), z[t0:t1].numpy(), states[t0 : t1 + 1].numpy(),
        *(work[x][t0:t1].numpy() for x in ("ae", "pz", "rh", "e", "sr", "sg", "c")),
        *extra, att_out,
    )  # fmt: skip
    with _one_blas_thread():
        omp_team.run(cpu_kernels.forward_entry, omp_team.pack(cpu_kernels.FORWARD_LAYOUT, args), n_threads)


def _kernel_backward(ctx, z, step_params, d_mu, d_sigma, d_z, d_h_prev, d_h_last, d_hp, grads) -> Tensor:
    """:func:`.cpu_kernels.sequence_backward` over every window; fills ``d_hp`` and ``grads`` and returns the
    gradient of the initial state."""
    spec, memory = ctx.spec, ctx.spec.memory
    ae, pz, rh, states = ctx.buffers
    _, work = ctx.work
    w_h, _, w_post, _, w_z, _, w_gz, _, w_hc = step_params
    eps = ctx.eps
    attend = memory is not None
    if attend:
        w_r, _, w_q, _, w_k, w_v, _, w_g, _ = ctx.param_inputs[9:]
        _, _, _, _, n_past = ctx.att_buffers
        att = (
            True, w_r is not None, _np(w_r[0] if w_r is not None else None), _np(w_q, 2), _np(w_k, 2), _np(w_v, 2),
            _np(w_g, 2), memory["states"].numpy(), memory["summaries"].numpy(), memory["g_states"].numpy(),
            memory["g_summaries"].numpy(), n_past, spec.window or 0,
            *(work[x].numpy() for x in ("proposals", "queries", "p", "gate", "diff")),
            ctx.attention.numpy(),
        )  # fmt: skip
        att_sink = tuple(grads[x].numpy() for x in ("d_att", "d_gate", "d_q", "ud")) + (
            _np(grads.get("d_logits"), 2),
        )
    else:
        att = (False, False, _DUMMY[1], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[3], _DUMMY[2], _DUMMY[3],
               _DUMMY[2], 0, 0, _DUMMY[3], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[3], _DUMMY[2])  # fmt: skip
        att_sink = (_DUMMY[3], _DUMMY[2], _DUMMY[2], _DUMMY[2], _DUMMY[2])
    from . import cpu_kernels, omp_team

    indptr, indices, values = spec.csr
    n, d = states.shape[1:]
    carry = torch.empty(n, d, dtype=torch.float32)
    args = (
        carry.numpy(), np.empty((n, d), dtype=np.float32), _partials(n, d, memory),
        indptr, indices, values, _np(eps, 3), eps is not None, states.numpy(), ae.numpy(), pz.numpy(), rh.numpy(),
        *(work[x].numpy() for x in ("e", "sr", "sg", "c")), z.detach().numpy(),
        _np(w_h, 2), _np(w_post, 2), _np(w_z, 2), _np(w_gz, 2), _np(w_hc, 2),
        *att,
        _np(d_mu, 3), _np(d_sigma, 3), _np(d_z, 3), _np(d_h_prev, 3),
        d_mu is not None, d_sigma is not None, d_z is not None, d_h_prev is not None, _np(d_h_last, 2),
        d_hp.numpy(), *(grads[x].numpy() for x in ("d_a1", "d_post", "d_pz", "d_gsr", "d_gc")), *att_sink,
    )  # fmt: skip
    with _one_blas_thread():
        omp_team.run(cpu_kernels.backward_entry, omp_team.pack(cpu_kernels.BACKWARD_LAYOUT, args), kernel_team_size(n))
    return carry


def kernel_team_size(n_nodes: int) -> int:
    """Threads the compiled recurrence runs on for ``n_nodes`` nodes: PyTorch's thread count (see
    :mod:`.omp_team`), with at least four row blocks per thread."""
    from . import omp_team
    from .cpu_kernels import _BLOCK

    return omp_team.team_size(limit=max(1, -(-n_nodes // _BLOCK) // 4))


def _partials(n_nodes: int, d: int, memory: dict | None) -> np.ndarray:
    """The kernels' per-block sums over nodes: (blocks, d + memory length + 2)."""
    from .cpu_kernels import _BLOCK

    length = 0 if memory is None else memory["summaries"].shape[0]
    return np.empty((-(-n_nodes // _BLOCK), d + length + 2), dtype=np.float32)
