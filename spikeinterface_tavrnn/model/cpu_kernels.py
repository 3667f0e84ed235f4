"""Compiled (numba) CPU kernels for the whole one-layer recurrence of :class:`~.sequence.FusedSequence`.

At DishBrain size (900 nodes, h_dim 32, z_dim 8) a window of the recurrence is ~15 MFLOP, a fraction of a
millisecond of arithmetic, but ~100 eager PyTorch operations, each with several microseconds of dispatch and a pass
over memory. Here one call runs the forward pass of every window, and one call the backward pass, with every
elementwise step fused into the loops that produce its operands. The arithmetic is the one of
:func:`.fused.step_forward` / :func:`.fused.step_backward` and :func:`.attention.gated_step_forward` /
:func:`.attention.gated_step_backward` (which stay the reference, and the path for CUDA, float64 and the published
attention); the tests compare the two.

Exponentials and logarithms use the vectorisable float32 approximations :func:`_exp` and :func:`_log1p`
(within ~2 float32 ulps of the exact values): numba's ``math.exp`` is a scalar library call, several times slower
than the SIMD kernels of PyTorch that they replace.

Both passes run on a team of PyTorch's OpenMP threads (:mod:`.omp_team`; the entry points :func:`forward_entry` and
:func:`backward_entry` at the end of this module). Each thread takes whole blocks of ``_BLOCK`` rows; the threads meet
at a barrier before each sparse product (which reads every row of its input) and each sum over nodes. Sums over
nodes are formed per block, then over the blocks in order, so a team of any size gives the same bits. The small
per-window quantities of the attention (summary, query, weights, context, gate) are computed by every thread alike
and stored by thread 0. On 2 cores at DishBrain size the forward pass took 9.0 ms on a team of two against 15 ms
alone, the backward pass 8.2-8.7 ms against 14.5 ms.

Sparse adjacencies are passed as one CSR over all windows: ``indptr`` (T, N + 1) int64 offsets into ``indices``
(int32) and ``values``. The forward kernel takes weight matrices transposed (input-major) and the backward kernel
takes them as stored (output-major), so that every product reads contiguous rows.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import cfunc, njit, types
from numba.extending import intrinsic

from .omp_team import Layout, barrier, f32, i32, i64, table, team_position, value

__all__ = ["sequence_forward", "sequence_backward", "concatenated_csr"]

# reassociation lets LLVM vectorise reductions; no assumptions about NaN or infinities
_FASTMATH = {"contract", "reassoc", "nsz"}

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(1.428606765330187e-06)
_LN2 = np.float32(0.6931471805599453)
_SQRT2_M1 = np.float32(0.41421356237309503)


def concatenated_csr(adjacency: list) -> tuple:
    """``(indptr (T, N + 1) int64, indices int32, values float32)`` of a list of (N, N) sparse CSR tensors."""
    crows, cols, vals, offset = [], [], [], 0
    for adj in adjacency:
        crow = adj.crow_indices().numpy().astype(np.int64)
        crows.append(crow + offset)
        cols.append(adj.col_indices().numpy().astype(np.int32))
        vals.append(adj.values().numpy())
        offset += int(crow[-1])
    return np.stack(crows), np.concatenate(cols), np.concatenate(vals).astype(np.float32)


# ------------------------------------------------------------------ elementwise
@intrinsic
def _int32_bits_as_float32(typingctx, bits):
    """Reinterpret an int32 as the float32 with the same bits (an LLVM bitcast, which vectorises)."""
    signature = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return signature, codegen


@intrinsic
def _float32_bits(typingctx, value):
    """The int32 with the same bits as a float32 (an LLVM bitcast, which vectorises)."""
    signature = types.int32(types.float32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return signature, codegen


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _exp(x):
    """``exp(x)`` for one float32 (within ~2 ulps): 2^n from its exponent bits, exp of the remainder by a degree-6
    polynomial; written so that loops calling it vectorise. Arguments below -87 give ~1e-38 (not 0), above 88
    ~1.6e38."""
    v = min(max(x, np.float32(-87.0)), np.float32(88.0))
    n = np.floor(v * _LOG2E + np.float32(0.5))
    f = (v - n * _LN2_HI) - n * _LN2_LO
    p = np.float32(1.3981999507e-3)
    p = p * f + np.float32(8.3334519073e-3)
    p = p * f + np.float32(4.1665795894e-2)
    p = p * f + np.float32(1.6666665459e-1)
    p = p * f + np.float32(5.0000001201e-1)
    return (p * f * f + f + np.float32(1.0)) * _int32_bits_as_float32((np.int32(n) + np.int32(127)) << np.int32(23))


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _exp_into(x, out):
    """``out[i] = exp(x[i])`` for 1-D float32 arrays (:func:`_exp`, one vectorised loop)."""
    for i in range(x.size):
        out[i] = _exp(x[i])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _log1p(u):
    """``log(1 + u)`` for ``0 <= u <= 1`` (float32), as ``2 atanh(s)`` with ``|s| <= 0.172`` (exact for tiny u).

    For ``u > sqrt(2) - 1``, ``log1p(u) = log 2 + log((1 + u) / 2)`` keeps the series argument small. Written with
    selects of values, not branches, so that loops calling it vectorise."""
    big = u > _SQRT2_M1
    num = u - np.float32(1.0) if big else u
    den = u + (np.float32(3.0) if big else np.float32(2.0))
    s = num / den
    s2 = s * s
    # 2 atanh(s) = 2 (s + s^3 / 3 + s^5 / 5 + s^7 / 7 + s^9 / 9 + ...)
    inner = np.float32(2.0 / 7.0) + s2 * np.float32(2.0 / 9.0)
    series = s * (np.float32(2.0) + s2 * (np.float32(2.0 / 3.0) + s2 * (np.float32(0.4) + s2 * inner)))
    return series + (_LN2 if big else np.float32(0.0))


# ------------------------------------------------------------------ rows and products
# Rows are handled in blocks of _BLOCK: a thread of a team takes whole blocks, and every sum over nodes is formed
# per block, then over blocks in order, so the results do not depend on the number of threads.
_BLOCK = 32


@njit(cache=True, inline="always")
def _row_range(thread, n_threads, n):
    """Rows ``[r0, r1)`` of ``thread`` (of ``n_threads``), and its blocks ``[b0, b1)``."""
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    b0 = n_blocks * thread // n_threads
    b1 = n_blocks * (thread + 1) // n_threads
    return b0 * _BLOCK, min(b1 * _BLOCK, n), b0, b1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _spmm(row_ptr, indices, values, x, out, r0, r1):
    """Rows ``r0 <= i < r1`` of ``out = A x`` for the CSR matrix ``(row_ptr, indices, values)`` and C-contiguous
    ``x``, ``out`` (N, C)."""
    width = x.shape[1]
    for i in range(r0, r1):
        orow = out[i]
        orow[:] = 0.0
        p, stop = row_ptr[i], row_ptr[i + 1]
        # four neighbours per update of the output row: its loads and stores, not the products, were the limit
        while p + 3 < stop:
            xa, xb, xc, xd = x[indices[p]], x[indices[p + 1]], x[indices[p + 2]], x[indices[p + 3]]
            va, vb, vc, vd = values[p], values[p + 1], values[p + 2], values[p + 3]
            for c in range(width):
                orow[c] += (va * xa[c] + vb * xb[c]) + (vc * xc[c] + vd * xd[c])
            p += 4
        while p < stop:
            xa = x[indices[p]]
            va = values[p]
            for c in range(width):
                orow[c] += va * xa[c]
            p += 1


# ------------------------------------------------------------------ forward
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sequence_forward(
    thread, n_threads, barrier_at, x1, pre, rq, partials,
    indptr, indices, values, proj, shared, eps, sample, h0,
    w_ht, b_enc, w_postt, b_post, w_zt, b_z, w_gzt, b_gru, w_hct,
    attend, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt, b_v, w_gt, b_g,
    mem_states, mem_summaries, n_past, window,
    mu, sigma, z, states, ae, pz, rh, e_buf, sr_buf, sg_buf, c_buf,
    proposals, attended, queries, contexts, p_buf, gate_buf, diff_buf, attention,
):  # fmt: skip
    """Forward pass of every window (see :func:`.fused.step_forward` and :func:`.attention.gated_step_forward`),
    by thread ``thread`` of a team of ``n_threads`` (:mod:`.omp_team`; ``barrier_at`` 0 when alone), which computes
    its own rows and meets the others before every sparse product and every sum over nodes.

    Fills ``mu, sigma, z`` (T, N, k), ``states`` (T + 1, N, d) (``states[0] = h0`` is set here), and the
    activations the backward pass reads: ``ae, pz, rh, e_buf, c_buf`` (T, N, d), ``sr_buf`` (T, N, k), ``sg_buf``
    (T, N, 2d); with attention (``attend``) also ``proposals, attended, diff_buf`` (T, N, d), ``queries, gate_buf``
    (T, d), ``contexts`` (T, 2d), ``p_buf`` (T, N) (with a ``readout``) and ``attention`` (T, n_past + T), and the
    memory ``mem_states`` / ``mem_summaries`` from row ``n_past`` on. ``window <= 0`` attends to the whole history.
    ``x1, rq`` (N, d), ``pre`` (N, 3d) and ``partials`` (blocks, d + 2) are scratch shared by the team.
    """
    n_windows = indptr.shape[0]
    n, d = h0.shape
    k = w_zt.shape[0]
    width = w_ht.shape[1]  # 4d, or 3d without the candidate's zero block
    f32 = np.float32
    r0, r1, b0, b1 = _row_range(thread, n_threads, n)
    hp = np.empty((n, width), dtype=np.float32)  # this thread's rows only, as are the arrays up to aq
    a1 = np.empty((n, d), dtype=np.float32)
    post = np.empty((n, 2 * k), dtype=np.float32)
    pz_pre = np.empty((n, d), dtype=np.float32)
    gz = np.empty((n, 3 * d), dtype=np.float32)
    g = np.empty((n, 3 * d), dtype=np.float32)
    aq = np.empty((n, d), dtype=np.float32)
    scratch = max(n * 2 * d, n + mem_summaries.shape[0])  # also holds a window's attention scores (from n on)
    t_in = np.empty(scratch, dtype=np.float32)
    t_out = np.empty(scratch, dtype=np.float32)
    inv_sqrt_d = f32(1.0 / math.sqrt(d))
    for i in range(r0, r1):
        states[0, i] = h0[i]
    for t in range(n_windows):
        src = 0 if shared else t
        row_ptr = indptr[t]
        h = states[t]
        pg = proj[src]
        # hp = h W_h^T; x1 = pe + hp[:, :d]; a1 = A x1 + b_enc; e = relu(a1)
        np.dot(h[r0:r1], w_ht, hp[r0:r1])
        for i in range(r0, r1):
            for c in range(d):
                x1[i, c] = pg[i, c] + hp[i, c]
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, x1, a1, r0, r1)
        e = e_buf[t]
        for i in range(r0, r1):
            for c in range(d):
                e[i, c] = max(a1[i, c] + b_enc[c], f32(0.0))
        barrier(barrier_at)
        aet = ae[t]
        _spmm(row_ptr, indices, values, e, aet, r0, r1)
        np.dot(aet[r0:r1], w_postt, post[r0:r1])
        # mu, sigma = softplus(sr) = max(sr, 0) + log1p(exp(-|sr|)), z = mu + sigma eps
        sr = sr_buf[t]
        mut, sigt, zt = mu[t], sigma[t], z[t]
        for i in range(r0, r1):
            for c in range(k):
                mut[i, c] = post[i, c] + b_post[c]
                v = post[i, k + c] + b_post[k + c]
                sr[i, c] = v
                t_in[i * k + c] = -abs(v)
        _exp_into(t_in[r0 * k : r1 * k], t_out[r0 * k : r1 * k])
        for i in range(r0, r1):
            for c in range(k):
                sv = max(sr[i, c], f32(0.0)) + _log1p(t_out[i * k + c])
                sigt[i, c] = sv
                zt[i, c] = mut[i, c] + sv * eps[t, i, c] if sample else mut[i, c]
        # pz = relu(z W_z^T + b_z)
        np.dot(zt[r0:r1], w_zt, pz_pre[r0:r1])
        pzt = pz[t]
        for i in range(r0, r1):
            for c in range(d):
                pzt[i, c] = max(pz_pre[i, c] + b_z[c], f32(0.0))
        # pre = pg + hp[:, d:] + pz W_gz^T; G = A pre
        np.dot(pzt[r0:r1], w_gzt, gz[r0:r1])
        for i in range(r0, r1):
            for c in range(3 * d):
                pre[i, c] = pg[i, d + c] + gz[i, c]
            for c in range(width - d):
                pre[i, c] += hp[i, d + c]
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, pre, g, r0, r1)
        # s | r = sigmoid(G_sr + b)
        for i in range(r0, r1):
            for c in range(2 * d):
                t_in[i * 2 * d + c] = -(g[i, c] + b_gru[c])
        _exp_into(t_in[r0 * 2 * d : r1 * 2 * d], t_out[r0 * 2 * d : r1 * 2 * d])
        sg = sg_buf[t]
        rht = rh[t]
        for i in range(r0, r1):
            for c in range(2 * d):
                sg[i, c] = f32(1.0) / (f32(1.0) + t_out[i * 2 * d + c])
            for c in range(d):
                rht[i, c] = sg[i, d + c] * h[i, c]
        # c = tanh(G_c + b + A (r h) W_hc^T) = 2 sigmoid(2 (.)) - 1; h' = c + s (h - c)
        np.dot(rht[r0:r1], w_hct, rq[r0:r1])
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, rq, aq, r0, r1)
        for i in range(r0, r1):
            for c in range(d):
                t_in[i * d + c] = f32(-2.0) * (g[i, 2 * d + c] + b_gru[2 * d + c] + aq[i, c])
        _exp_into(t_in[r0 * d : r1 * d], t_out[r0 * d : r1 * d])
        cc = c_buf[t]
        h_new = proposals[t] if attend else states[t + 1]
        for i in range(r0, r1):
            for c in range(d):
                cv = f32(2.0) / (f32(1.0) + t_out[i * d + c]) - f32(1.0)
                cc[i, c] = cv
                h_new[i, c] = cv + sg[i, c] * (h[i, c] - cv)
        if attend:
            _attention_forward(
                thread, barrier_at, r0, r1, b0, b1, t, n_past + t, h_new, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt,
                b_v, w_gt, b_g, mem_states, mem_summaries, window, inv_sqrt_d,
                states[t + 1], attended[t], queries[t], contexts[t], p_buf, gate_buf[t], diff_buf[t], attention,
                partials, t_in, t_out,
            )  # fmt: skip


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _softmax_inplace(x, m, t_in, t_out):
    top = x[0]
    for i in range(1, m):
        top = max(top, x[i])
    for i in range(m):
        t_in[i] = x[i] - top
    _exp_into(t_in[:m], t_out[:m])
    total = np.float32(0.0)
    for i in range(m):
        total += t_out[i]
    for i in range(m):
        x[i] = t_out[i] / total


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _attention_forward(
    thread, barrier_at, r0, r1, b0, b1, t, tt, h_tilde, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt, b_v, w_gt, b_g,
    mem_states, mem_summaries, window, inv_sqrt_d,
    out, a, q_out, context_out, p_buf, gate_out, diff, attention, partials, t_in, t_out,
):  # fmt: skip
    """The attention of window ``t`` (memory row ``tt``) for rows ``[r0, r1)`` (blocks ``[b0, b1)``) of a team
    (see :func:`sequence_forward`). The small per-window quantities (summary, query, weights, context, gate) are
    computed by every thread alike from the team's per-block sums, and stored by thread 0."""
    n, d = h_tilde.shape
    f32 = np.float32
    start = 0 if window <= 0 else max(0, tt - window + 1)
    m = tt - start + 1
    summary = np.zeros(d, dtype=np.float32)
    if readout:
        # p = softmax(h~ w_r + b_r) over nodes; summary = p^T h~ (as sum_i e_i h~_i / sum_i e_i)
        p = p_buf[t]
        for b in range(b0, b1):
            top = -np.inf
            for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
                acc = b_r[0]
                for c in range(d):
                    acc += h_tilde[i, c] * w_r[c]
                p[i] = acc
                top = max(top, acc)
            partials[b, d] = top
        barrier(barrier_at)
        top = partials[0, d]
        for b in range(1, partials.shape[0]):
            top = max(top, partials[b, d])
        for i in range(r0, r1):
            t_in[i] = p[i] - top
        _exp_into(t_in[r0:r1], t_out[r0:r1])
        for b in range(b0, b1):
            part = partials[b]
            part[: d] = 0.0
            total = f32(0.0)
            for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
                ev = t_out[i]
                p[i] = ev
                total += ev
                for c in range(d):
                    part[c] += ev * h_tilde[i, c]
            part[d + 1] = total
        barrier(barrier_at)
        total = f32(0.0)
        for b in range(partials.shape[0]):
            total += partials[b, d + 1]
            for c in range(d):
                summary[c] += partials[b, c]
        for c in range(d):
            summary[c] /= total
        for i in range(r0, r1):
            p[i] /= total
    else:
        for b in range(b0, b1):
            part = partials[b]
            part[:d] = 0.0
            for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
                for c in range(d):
                    part[c] += h_tilde[i, c]
        barrier(barrier_at)
        for b in range(partials.shape[0]):
            for c in range(d):
                summary[c] += partials[b, c]
        for c in range(d):
            summary[c] /= n
    # q = W_q u_t + b_q; scores = (U W_k^T) q / sqrt(d); weights = softmax (U's last row is this summary)
    q = b_q.copy()
    for kk in range(d):
        for o in range(d):
            q[o] += summary[kk] * w_qt[kk, o]
    weights = np.empty(m, dtype=np.float32)
    for j in range(m):
        u = summary if j == m - 1 else mem_summaries[start + j]
        acc = f32(0.0)
        for o in range(d):
            key = f32(0.0)
            for kk in range(d):
                key += u[kk] * w_kt[kk, o]
            acc += key * q[o]
        weights[j] = acc * inv_sqrt_d
    _softmax_inplace(weights, m, t_in[n:], t_out[n:])
    # context = [u_t, U^T weights]; a = sum_s weights_s H_s (the proposal last)
    context = np.empty(2 * d, dtype=np.float32)
    for c in range(d):
        context[c] = summary[c]
        acc = weights[m - 1] * summary[c]
        for j in range(m - 1):
            acc += weights[j] * mem_summaries[start + j, c]
        context[d + c] = acc
    # gate = sigmoid(W_g context + b_g)
    gate = b_g.copy()
    for kk in range(2 * d):
        cv = context[kk]
        for o in range(d):
            gate[o] += cv * w_gt[kk, o]
    for o in range(d):
        gate[o] = f32(1.0) / (f32(1.0) + _exp(-gate[o]))
    if thread == 0:
        mem_summaries[tt] = summary
        q_out[:] = q
        context_out[:] = context
        gate_out[:] = gate
        attention[t, start : tt + 1] = weights
    w_last = weights[m - 1]
    for i in range(r0, r1):
        for c in range(d):
            a[i, c] = w_last * h_tilde[i, c]
    for j in range(m - 1):  # one past state at a time: each is read as one contiguous block
        wj = weights[j]
        hs = mem_states[start + j]
        for i in range(r0, r1):
            for c in range(d):
                a[i, c] += wj * hs[i, c]
    # diff = a W_v^T + b_v - h~; out = h~ + gate * diff
    av = np.dot(a[r0:r1], w_vt)
    state = mem_states[tt]
    for i in range(r0, r1):
        for c in range(d):
            dv = av[i - r0, c] + b_v[c] - h_tilde[i, c]
            diff[i, c] = dv
            ov = h_tilde[i, c] + gate[c] * dv
            out[i, c] = ov
            state[i, c] = ov


# ------------------------------------------------------------------ backward
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sequence_backward(
    thread, n_threads, barrier_at, carry, d_ae, partials,
    indptr, indices, values, eps, sample, states, ae, pz, rh, e_buf, sr_buf, sg_buf, c_buf, z,
    w_h, w_post, w_z, w_gz, w_hc,
    attend, readout, w_r, w_q, w_k, w_v, w_g, mem_states, mem_summaries, g_states, g_summaries, n_past, window,
    proposals, queries, p_buf, gate_buf, diff_buf, attention,
    d_mu, d_sigma, d_z, d_h_prev, has_d_mu, has_d_sigma, has_d_z, has_d_h_prev, d_h_last,
    d_hp, d_a1, d_post, d_pz, d_gsr, d_gc, d_att, d_gate, d_q, ud, d_logits,
):  # fmt: skip
    """Backward pass of every window, in reverse (see :func:`.fused.step_backward` and
    :func:`.attention.gated_step_backward`), by thread ``thread`` of a team of ``n_threads`` (as
    :func:`sequence_forward`). Writes the gradient factors ``d_hp`` (T, N, 4d), ``d_a1, d_pz, d_gc`` (T, N, d),
    ``d_post`` (T, N, 2k), ``d_gsr`` (T, N, 2d) and, with attention, ``d_att`` (T, N, d), ``d_gate, d_q, ud``
    (T, d) and ``d_logits`` (T, N), from which the caller forms the weight gradients, and the gradient of the
    initial state into ``carry`` (N, d). Weights are passed as stored (output-major). ``d_ae`` (N, d) and
    ``partials`` (blocks, d + M + 1), M the memory's length, are scratch shared by the team."""
    n_windows = indptr.shape[0]
    n, d = d_h_last.shape
    k = w_z.shape[1]
    width = w_h.shape[0]
    f32 = np.float32
    r0, r1, b0, b1 = _row_range(thread, n_threads, n)
    # W_h with zero rows up to 4d, so that d_h += d_hp W_h is one product over the contiguous d_hp
    w_h4 = np.zeros((4 * d, d), dtype=np.float32)
    w_h4[:width] = w_h
    for i in range(r0, r1):
        carry[i] = d_h_last[i]
    d_state = np.empty((n, d), dtype=np.float32)  # this thread's rows only, as are the arrays up to d_a
    d_h = np.empty((n, d), dtype=np.float32)
    d_rh = np.empty((n, d), dtype=np.float32)
    d_hw = np.empty((n, d), dtype=np.float32)
    a_gc = np.empty((n, d), dtype=np.float32)
    a_gsr = np.empty((n, 2 * d), dtype=np.float32)
    d_pre = np.empty((n, 3 * d), dtype=np.float32)
    d_pz_in = np.empty((n, d), dtype=np.float32)
    d_zt = np.empty((n, k), dtype=np.float32)
    d_ae_a = np.empty((n, d), dtype=np.float32)
    d_x1 = np.empty((n, d), dtype=np.float32)
    d_a = np.empty((n, d), dtype=np.float32)
    t_in = np.empty(n * k, dtype=np.float32)
    t_out = np.empty(n * k, dtype=np.float32)
    inv_sqrt_d = f32(1.0 / math.sqrt(d))
    for t in range(n_windows - 1, -1, -1):
        row_ptr = indptr[t]
        h = states[t]
        # ---- attention: d_state becomes the gradient of the proposal h~
        if attend:
            _attention_backward(
                thread, barrier_at, r0, r1, b0, b1, t, n_past + t, carry, d_state, proposals[t], readout, w_r, w_q,
                w_k, w_v, w_g, mem_states, mem_summaries, g_states, g_summaries, window, inv_sqrt_d,
                queries[t], p_buf, gate_buf[t], diff_buf[t], attention,
                d_att[t], d_gate[t], d_q[t], ud[t], d_logits, d_a, partials,
            )  # fmt: skip
        else:
            for i in range(r0, r1):
                d_state[i] = carry[i]
        sg, cc = sg_buf[t], c_buf[t]
        dhp, dgsr, dgc = d_hp[t], d_gsr[t], d_gc[t]
        # h' = c + s (h - c); c = tanh(.)
        for i in range(r0, r1):
            for c in range(d):
                dn = d_state[i, c]
                s = sg[i, c]
                cv = cc[i, c]
                dgc[i, c] = (dn - dn * s) * (f32(1.0) - cv * cv)
                dgsr[i, c] = dn * (h[i, c] - cv) * s * (f32(1.0) - s)
                d_h[i, c] = dn * s
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, dgc, a_gc, r0, r1)  # d_q = A dG_c (q = (r h) W_hc^T)
        np.dot(a_gc[r0:r1], w_hc, d_rh[r0:r1])
        for i in range(r0, r1):
            for c in range(d):
                r = sg[i, d + c]
                d_h[i, c] += d_rh[i, c] * r
                dgsr[i, d + c] = d_rh[i, c] * h[i, c] * r * (f32(1.0) - r)
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, dgsr, a_gsr, r0, r1)
        for i in range(r0, r1):
            for c in range(2 * d):
                d_pre[i, c] = a_gsr[i, c]
            for c in range(d):
                d_pre[i, 2 * d + c] = a_gc[i, c]
        # phi_z: d_pz = d_pre W_gz, through the relu
        np.dot(d_pre[r0:r1], w_gz, d_pz_in[r0:r1])
        pzt, dpz = pz[t], d_pz[t]
        for i in range(r0, r1):
            for c in range(d):
                dpz[i, c] = d_pz_in[i, c] if pzt[i, c] > 0.0 else f32(0.0)
        np.dot(dpz[r0:r1], w_z, d_zt[r0:r1])
        # posterior: d_post = [d_mu + d_z, d_sigma sigmoid(sr)] with d_sigma += d_z eps
        sr = sr_buf[t]
        for i in range(r0, r1):
            for c in range(k):
                t_in[i * k + c] = -sr[i, c]
        _exp_into(t_in[r0 * k : r1 * k], t_out[r0 * k : r1 * k])
        dpost = d_post[t]
        for i in range(r0, r1):
            for c in range(k):
                dz = d_zt[i, c] + (d_z[t, i, c] if has_d_z else f32(0.0))
                ds = d_sigma[t, i, c] if has_d_sigma else f32(0.0)
                if sample:
                    ds += dz * eps[t, i, c]
                dpost[i, c] = dz + (d_mu[t, i, c] if has_d_mu else f32(0.0))
                dpost[i, k + c] = ds / (f32(1.0) + t_out[i * k + c])
        np.dot(dpost[r0:r1], w_post, d_ae[r0:r1])
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, d_ae, d_ae_a, r0, r1)
        da1, e = d_a1[t], e_buf[t]
        for i in range(r0, r1):
            for c in range(d):
                da1[i, c] = d_ae_a[i, c] if e[i, c] > 0.0 else f32(0.0)
        barrier(barrier_at)
        _spmm(row_ptr, indices, values, da1, d_x1, r0, r1)
        for i in range(r0, r1):
            for c in range(d):
                dhp[i, c] = d_x1[i, c]
            for c in range(3 * d):
                dhp[i, d + c] = d_pre[i, c]
        np.dot(dhp[r0:r1], w_h4, d_hw[r0:r1])
        for i in range(r0, r1):
            for c in range(d):
                carry[i, c] = d_h[i, c] + d_hw[i, c] + (d_h_prev[t, i, c] if has_d_h_prev else f32(0.0))
        if attend and thread == 0:  # every thread has read this window's row (it passed the barriers above)
            g_summaries[n_past + t] = 0.0


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _attention_backward(
    thread, barrier_at, r0, r1, b0, b1, t, tt, d_out_in, d_h, h_tilde, readout, w_r, w_q, w_k, w_v, w_g,
    mem_states, mem_summaries, g_states, g_summaries, window, inv_sqrt_d,
    q, p_buf, gate, diff, attention,
    d_att, d_gpre_out, d_q_out, ud_out, d_logits, d_a, partials,
):  # fmt: skip
    """The attention's backward pass of window ``t`` (memory row ``tt``) for rows ``[r0, r1)`` of a team (see
    :func:`sequence_backward`); the per-window quantities are computed by every thread alike and stored by thread
    0, which also adds the summaries' gradients of the earlier windows."""
    n, d = h_tilde.shape
    f32 = np.float32
    start = 0 if window <= 0 else max(0, tt - window + 1)
    m = tt - start + 1
    n_memory = mem_summaries.shape[0]
    weights = attention[t, start : tt + 1]
    g_state = g_states[tt]
    # out = h~ + gate (att - h~): d_att = d_out gate, d_h = d_out - d_att, d_gate = sum_i d_out diff
    for b in range(b0, b1):
        part = partials[b]
        part[: d + m] = 0.0
        for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
            for c in range(d):
                do = d_out_in[i, c] + g_state[i, c]
                g_state[i, c] = 0.0
                da = do * gate[c]
                d_att[i, c] = da
                d_h[i, c] = do - da
                part[c] += do * diff[i, c]
    # a = sum_s alpha_s H_s; d_a = d_att W_v; d_alpha_s = <H_s, d_a> per block (in partials[:, d:])
    np.dot(d_att[r0:r1], w_v, d_a[r0:r1])
    w_last = weights[m - 1]
    for b in range(b0, b1):
        acc = f32(0.0)
        for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
            for c in range(d):
                acc += d_a[i, c] * h_tilde[i, c]
                d_h[i, c] += d_a[i, c] * w_last
        partials[b, d + m - 1] = acc
    for j in range(m - 1):  # each past step: its own weight's gradient and its own state's
        hs = mem_states[start + j]
        gs = g_states[start + j]
        wj = weights[j]
        for b in range(b0, b1):
            acc = f32(0.0)
            for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
                for c in range(d):
                    acc += hs[i, c] * d_a[i, c]
                    gs[i, c] += wj * d_a[i, c]
            partials[b, d + j] = acc
    barrier(barrier_at)
    n_blocks = partials.shape[0]
    d_gpre = np.zeros(d, dtype=np.float32)
    d_alpha = np.zeros(m, dtype=np.float32)
    for b in range(n_blocks):
        for c in range(d):
            d_gpre[c] += partials[b, c]
        for j in range(m):
            d_alpha[j] += partials[b, d + j]
    for c in range(d):
        d_gpre[c] *= gate[c] * (f32(1.0) - gate[c])
    # d_context = W_g^T d_gpre: [d_u_t | d_ctx]
    d_context = np.zeros(2 * d, dtype=np.float32)
    for o in range(d):
        gv = d_gpre[o]
        for kk in range(2 * d):
            d_context[kk] += gv * w_g[o, kk]
    # context's weighted summary: d_alpha += U d_ctx
    for j in range(m):
        acc = f32(0.0)
        for c in range(d):
            acc += mem_summaries[start + j, c] * d_context[d + c]
        d_alpha[j] += acc
    # weights = softmax(scores): d_scores = w (d_alpha - <w, d_alpha>) / sqrt(d)
    dot = f32(0.0)
    for j in range(m):
        dot += weights[j] * d_alpha[j]
    d_scores = np.empty(m, dtype=np.float32)
    for j in range(m):
        d_scores[j] = weights[j] * (d_alpha[j] - dot) * inv_sqrt_d
    # scores = K q, K = U W_k^T: d_q = K^T d_scores = W_k (U^T d_scores); ud = U^T d_scores
    ud = np.zeros(d, dtype=np.float32)
    for c in range(d):
        acc = f32(0.0)
        for j in range(m):
            acc += mem_summaries[start + j, c] * d_scores[j]
        ud[c] = acc
    d_q = np.zeros(d, dtype=np.float32)
    for o in range(d):
        acc = f32(0.0)
        for c in range(d):
            acc += w_k[o, c] * ud[c]
        d_q[o] = acc
    # d_u_t (the summary's own gradient) = d_context[:d] + W_q^T d_q + its share of d_U
    d_u_t = d_context[:d].copy()
    for o in range(d):
        qv = d_q[o]
        for c in range(d):
            d_u_t[c] += qv * w_q[o, c]
    # d_U = outer(weights, d_ctx) + outer(d_scores, W_k^T q)
    wkq = np.zeros(d, dtype=np.float32)
    for o in range(d):
        qv = q[o]
        for c in range(d):
            wkq[c] += qv * w_k[o, c]
    for c in range(d):
        d_u_t[c] += weights[m - 1] * d_context[d + c] + d_scores[m - 1] * wkq[c] + g_summaries[tt, c]
    if thread == 0:
        d_gpre_out[:] = d_gpre
        d_q_out[:] = d_q
        ud_out[:] = ud
        for j in range(m - 1):
            gsum = g_summaries[start + j]
            for c in range(d):
                gsum[c] += weights[j] * d_context[d + c] + d_scores[j] * wkq[c]
    # the summary: softmax readout or mean over nodes
    if readout:
        p = p_buf[t]
        dl = d_logits[t]
        for b in range(b0, b1):
            acc_dot = f32(0.0)
            for i in range(b * _BLOCK, min((b + 1) * _BLOCK, r1)):
                acc = f32(0.0)
                for c in range(d):
                    acc += h_tilde[i, c] * d_u_t[c]
                    d_h[i, c] += p[i] * d_u_t[c]
                dl[i] = acc
                acc_dot += acc * p[i]
            partials[b, d + n_memory] = acc_dot
        barrier(barrier_at)
        dot = f32(0.0)
        for b in range(n_blocks):
            dot += partials[b, d + n_memory]
        for i in range(r0, r1):
            dl[i] = p[i] * (dl[i] - dot)
            for c in range(d):
                d_h[i, c] += dl[i] * w_r[c]
    else:
        for i in range(r0, r1):
            for c in range(d):
                d_h[i, c] += d_u_t[c] / n


# ------------------------------------------------------------------ entry points for a team (:mod:`.omp_team`)
_FORWARD_ARGUMENTS = (
    ("x1", "f4:2"), ("pre", "f4:2"), ("rq", "f4:2"), ("partials", "f4:2"), ("indptr", "i8:2"), ("indices", "i4:1"),
    ("values", "f4:1"), ("proj", "f4:3"), ("shared", "bool"), ("eps", "f4:3"), ("sample", "bool"), ("h0", "f4:2"),
    ("w_ht", "f4:2"), ("b_enc", "f4:1"), ("w_postt", "f4:2"), ("b_post", "f4:1"), ("w_zt", "f4:2"), ("b_z", "f4:1"),
    ("w_gzt", "f4:2"), ("b_gru", "f4:1"), ("w_hct", "f4:2"), ("attend", "bool"), ("readout", "bool"),
    ("w_r", "f4:1"), ("b_r", "f4:1"), ("w_qt", "f4:2"), ("b_q", "f4:1"), ("w_kt", "f4:2"), ("w_vt", "f4:2"),
    ("b_v", "f4:1"), ("w_gt", "f4:2"), ("b_g", "f4:1"), ("mem_states", "f4:3"), ("mem_summaries", "f4:2"),
    ("n_past", "int"), ("window", "int"), ("mu", "f4:3"), ("sigma", "f4:3"), ("z", "f4:3"), ("states", "f4:3"),
    ("ae", "f4:3"), ("pz", "f4:3"), ("rh", "f4:3"), ("e_buf", "f4:3"), ("sr_buf", "f4:3"), ("sg_buf", "f4:3"),
    ("c_buf", "f4:3"), ("proposals", "f4:3"), ("attended", "f4:3"), ("queries", "f4:2"), ("contexts", "f4:2"),
    ("p_buf", "f4:2"), ("gate_buf", "f4:2"), ("diff_buf", "f4:3"), ("attention", "f4:2"),
)
FORWARD_LAYOUT = Layout([code for _, code in _FORWARD_ARGUMENTS])


@cfunc(types.void(types.voidptr), cache=True)
def forward_entry(data):
    """:func:`sequence_forward` for one thread of a team; ``data`` is the table of its arguments
    (:data:`FORWARD_LAYOUT`, in the order of :data:`_FORWARD_ARGUMENTS`)."""
    tb = table(data)
    thread, n_threads, barrier_at = team_position(tb)
    sequence_forward(
        thread, n_threads, barrier_at,
        f32(tb, 0, 2), f32(tb, 1, 2), f32(tb, 2, 2), f32(tb, 3, 2), i64(tb, 4, 2), i32(tb, 5, 1), f32(tb, 6, 1),
        f32(tb, 7, 3), value(tb, 8) != 0, f32(tb, 9, 3), value(tb, 10) != 0, f32(tb, 11, 2), f32(tb, 12, 2),
        f32(tb, 13, 1), f32(tb, 14, 2), f32(tb, 15, 1), f32(tb, 16, 2), f32(tb, 17, 1), f32(tb, 18, 2),
        f32(tb, 19, 1), f32(tb, 20, 2), value(tb, 21) != 0, value(tb, 22) != 0, f32(tb, 23, 1), f32(tb, 24, 1),
        f32(tb, 25, 2), f32(tb, 26, 1), f32(tb, 27, 2), f32(tb, 28, 2), f32(tb, 29, 1), f32(tb, 30, 2),
        f32(tb, 31, 1), f32(tb, 32, 3), f32(tb, 33, 2), value(tb, 34), value(tb, 35), f32(tb, 36, 3), f32(tb, 37, 3),
        f32(tb, 38, 3), f32(tb, 39, 3), f32(tb, 40, 3), f32(tb, 41, 3), f32(tb, 42, 3), f32(tb, 43, 3),
        f32(tb, 44, 3), f32(tb, 45, 3), f32(tb, 46, 3), f32(tb, 47, 3), f32(tb, 48, 3), f32(tb, 49, 2),
        f32(tb, 50, 2), f32(tb, 51, 2), f32(tb, 52, 2), f32(tb, 53, 3), f32(tb, 54, 2),
    )


_BACKWARD_ARGUMENTS = (
    ("carry", "f4:2"), ("d_ae", "f4:2"), ("partials", "f4:2"), ("indptr", "i8:2"), ("indices", "i4:1"),
    ("values", "f4:1"), ("eps", "f4:3"), ("sample", "bool"), ("states", "f4:3"), ("ae", "f4:3"), ("pz", "f4:3"),
    ("rh", "f4:3"), ("e_buf", "f4:3"), ("sr_buf", "f4:3"), ("sg_buf", "f4:3"), ("c_buf", "f4:3"), ("z", "f4:3"),
    ("w_h", "f4:2"), ("w_post", "f4:2"), ("w_z", "f4:2"), ("w_gz", "f4:2"), ("w_hc", "f4:2"), ("attend", "bool"),
    ("readout", "bool"), ("w_r", "f4:1"), ("w_q", "f4:2"), ("w_k", "f4:2"), ("w_v", "f4:2"), ("w_g", "f4:2"),
    ("mem_states", "f4:3"), ("mem_summaries", "f4:2"), ("g_states", "f4:3"), ("g_summaries", "f4:2"),
    ("n_past", "int"), ("window", "int"), ("proposals", "f4:3"), ("queries", "f4:2"), ("p_buf", "f4:2"),
    ("gate_buf", "f4:2"), ("diff_buf", "f4:3"), ("attention", "f4:2"), ("d_mu", "f4:3"), ("d_sigma", "f4:3"),
    ("d_z", "f4:3"), ("d_h_prev", "f4:3"), ("has_d_mu", "bool"), ("has_d_sigma", "bool"), ("has_d_z", "bool"),
    ("has_d_h_prev", "bool"), ("d_h_last", "f4:2"), ("d_hp", "f4:3"), ("d_a1", "f4:3"), ("d_post", "f4:3"),
    ("d_pz", "f4:3"), ("d_gsr", "f4:3"), ("d_gc", "f4:3"), ("d_att", "f4:3"), ("d_gate", "f4:2"), ("d_q", "f4:2"),
    ("ud", "f4:2"), ("d_logits", "f4:2"),
)
BACKWARD_LAYOUT = Layout([code for _, code in _BACKWARD_ARGUMENTS])


@cfunc(types.void(types.voidptr), cache=True)
def backward_entry(data):
    """:func:`sequence_backward` for one thread of a team; ``data`` is the table of its arguments
    (:data:`BACKWARD_LAYOUT`, in the order of :data:`_BACKWARD_ARGUMENTS`)."""
    tb = table(data)
    thread, n_threads, barrier_at = team_position(tb)
    sequence_backward(
        thread, n_threads, barrier_at,
        f32(tb, 0, 2), f32(tb, 1, 2), f32(tb, 2, 2), i64(tb, 3, 2), i32(tb, 4, 1), f32(tb, 5, 1), f32(tb, 6, 3),
        value(tb, 7) != 0, f32(tb, 8, 3), f32(tb, 9, 3), f32(tb, 10, 3), f32(tb, 11, 3), f32(tb, 12, 3),
        f32(tb, 13, 3), f32(tb, 14, 3), f32(tb, 15, 3), f32(tb, 16, 3), f32(tb, 17, 2), f32(tb, 18, 2),
        f32(tb, 19, 2), f32(tb, 20, 2), f32(tb, 21, 2), value(tb, 22) != 0, value(tb, 23) != 0, f32(tb, 24, 1),
        f32(tb, 25, 2), f32(tb, 26, 2), f32(tb, 27, 2), f32(tb, 28, 2), f32(tb, 29, 3), f32(tb, 30, 2),
        f32(tb, 31, 3), f32(tb, 32, 2), value(tb, 33), value(tb, 34), f32(tb, 35, 3), f32(tb, 36, 2), f32(tb, 37, 2),
        f32(tb, 38, 2), f32(tb, 39, 3), f32(tb, 40, 2), f32(tb, 41, 3), f32(tb, 42, 3), f32(tb, 43, 3),
        f32(tb, 44, 3), value(tb, 45) != 0, value(tb, 46) != 0, value(tb, 47) != 0, value(tb, 48) != 0,
        f32(tb, 49, 2), f32(tb, 50, 3), f32(tb, 51, 3), f32(tb, 52, 3), f32(tb, 53, 3), f32(tb, 54, 3),
        f32(tb, 55, 3), f32(tb, 56, 3), f32(tb, 57, 2), f32(tb, 58, 2), f32(tb, 59, 2), f32(tb, 60, 2),
    )
