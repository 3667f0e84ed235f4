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

Sparse adjacencies are passed as one CSR over all windows: ``indptr`` (T, N + 1) int64 offsets into ``indices``
(int32) and ``values``. The forward kernel takes weight matrices transposed (input-major) and the backward kernel
takes them as stored (output-major), so that every product reads contiguous rows.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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


# ------------------------------------------------------------------ products
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _spmm(row_ptr, indices, values, x, out):
    """``out = A x`` for the CSR matrix ``(row_ptr, indices, values)`` and C-contiguous ``x``, ``out`` (N, C)."""
    width = x.shape[1]
    for i in range(out.shape[0]):
        orow = out[i]
        orow[:] = 0.0
        for p in range(row_ptr[i], row_ptr[i + 1]):
            xrow = x[indices[p]]
            v = values[p]
            for c in range(width):
                orow[c] += v * xrow[c]


# ------------------------------------------------------------------ forward
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sequence_forward(
    indptr, indices, values, proj, shared, eps, sample, h0,
    w_ht, b_enc, w_postt, b_post, w_zt, b_z, w_gzt, b_gru, w_hct,
    attend, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt, b_v, w_gt, b_g,
    mem_states, mem_summaries, n_past, window,
    mu, sigma, z, states, ae, pz, rh, e_buf, sr_buf, sg_buf, c_buf,
    proposals, attended, queries, contexts, p_buf, gate_buf, diff_buf, attention,
):  # fmt: skip
    """Forward pass of every window (see :func:`.fused.step_forward` and :func:`.attention.gated_step_forward`).

    Fills ``mu, sigma, z`` (T, N, k), ``states`` (T + 1, N, d) (``states[0] = h0`` is set here), and the
    activations the backward pass reads: ``ae, pz, rh, e_buf, c_buf`` (T, N, d), ``sr_buf`` (T, N, k), ``sg_buf``
    (T, N, 2d); with attention (``attend``) also ``proposals, attended, diff_buf`` (T, N, d), ``queries, gate_buf``
    (T, d), ``contexts`` (T, 2d), ``p_buf`` (T, N) (with a ``readout``) and ``attention`` (T, n_past + T), and the
    memory ``mem_states`` / ``mem_summaries`` from row ``n_past`` on. ``window <= 0`` attends to the whole history.
    """
    n_windows = indptr.shape[0]
    n, d = h0.shape
    k = w_zt.shape[0]
    width = w_ht.shape[1]  # 4d, or 3d without the candidate's zero block
    f32 = np.float32
    x1 = np.empty((n, d), dtype=np.float32)
    a1 = np.empty((n, d), dtype=np.float32)
    pre = np.empty((n, 3 * d), dtype=np.float32)
    g = np.empty((n, 3 * d), dtype=np.float32)
    aq = np.empty((n, d), dtype=np.float32)
    scratch = max(n * 2 * d, n, mem_summaries.shape[0])  # also holds a window's attention scores
    t_in = np.empty(scratch, dtype=np.float32)
    t_out = np.empty(scratch, dtype=np.float32)
    inv_sqrt_d = f32(1.0 / math.sqrt(d))
    states[0] = h0
    for t in range(n_windows):
        src = 0 if shared else t
        row_ptr = indptr[t]
        h = states[t]
        pg = proj[src]
        # hp = h W_h^T; x1 = pe + hp[:, :d]; a1 = A x1 + b_enc; e = relu(a1)
        hp = np.dot(h, w_ht)
        for i in range(n):
            for c in range(d):
                x1[i, c] = pg[i, c] + hp[i, c]
        _spmm(row_ptr, indices, values, x1, a1)
        e = e_buf[t]
        for i in range(n):
            for c in range(d):
                e[i, c] = max(a1[i, c] + b_enc[c], f32(0.0))
        aet = ae[t]
        _spmm(row_ptr, indices, values, e, aet)
        post = np.dot(aet, w_postt)
        # mu, sigma = softplus(sr) = max(sr, 0) + log1p(exp(-|sr|)), z = mu + sigma eps
        sr = sr_buf[t]
        mut, sigt, zt = mu[t], sigma[t], z[t]
        for i in range(n):
            for c in range(k):
                mut[i, c] = post[i, c] + b_post[c]
                v = post[i, k + c] + b_post[k + c]
                sr[i, c] = v
                t_in[i * k + c] = -abs(v)
        _exp_into(t_in[: n * k], t_out[: n * k])
        for i in range(n):
            for c in range(k):
                sv = max(sr[i, c], f32(0.0)) + _log1p(t_out[i * k + c])
                sigt[i, c] = sv
                zt[i, c] = mut[i, c] + sv * eps[t, i, c] if sample else mut[i, c]
        # pz = relu(z W_z^T + b_z)
        pz_pre = np.dot(zt, w_zt)
        pzt = pz[t]
        for i in range(n):
            for c in range(d):
                pzt[i, c] = max(pz_pre[i, c] + b_z[c], f32(0.0))
        # pre = pg + hp[:, d:] + pz W_gz^T; G = A pre
        gz = np.dot(pzt, w_gzt)
        for i in range(n):
            for c in range(3 * d):
                pre[i, c] = pg[i, d + c] + gz[i, c]
            for c in range(width - d):
                pre[i, c] += hp[i, d + c]
        _spmm(row_ptr, indices, values, pre, g)
        # s | r = sigmoid(G_sr + b)
        for i in range(n):
            for c in range(2 * d):
                t_in[i * 2 * d + c] = -(g[i, c] + b_gru[c])
        _exp_into(t_in[: n * 2 * d], t_out[: n * 2 * d])
        sg = sg_buf[t]
        rht = rh[t]
        for i in range(n):
            for c in range(2 * d):
                sg[i, c] = f32(1.0) / (f32(1.0) + t_out[i * 2 * d + c])
            for c in range(d):
                rht[i, c] = sg[i, d + c] * h[i, c]
        # c = tanh(G_c + b + A (r h) W_hc^T) = 2 sigmoid(2 (.)) - 1; h' = c + s (h - c)
        _spmm(row_ptr, indices, values, np.dot(rht, w_hct), aq)
        for i in range(n):
            for c in range(d):
                t_in[i * d + c] = f32(-2.0) * (g[i, 2 * d + c] + b_gru[2 * d + c] + aq[i, c])
        _exp_into(t_in[: n * d], t_out[: n * d])
        cc = c_buf[t]
        h_new = proposals[t] if attend else states[t + 1]
        for i in range(n):
            for c in range(d):
                cv = f32(2.0) / (f32(1.0) + t_out[i * d + c]) - f32(1.0)
                cc[i, c] = cv
                h_new[i, c] = cv + sg[i, c] * (h[i, c] - cv)
        if attend:
            _attention_forward(
                t, n_past + t, h_new, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt, b_v, w_gt, b_g,
                mem_states, mem_summaries, window, inv_sqrt_d,
                states[t + 1], attended[t], queries[t], contexts[t], p_buf, gate_buf[t], diff_buf[t], attention,
                t_in, t_out,
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
    t, tt, h_tilde, readout, w_r, b_r, w_qt, b_q, w_kt, w_vt, b_v, w_gt, b_g,
    mem_states, mem_summaries, window, inv_sqrt_d,
    out, a, q, context, p_buf, gate, diff, attention, t_in, t_out,
):  # fmt: skip
    n, d = h_tilde.shape
    start = 0 if window <= 0 else max(0, tt - window + 1)
    m = tt - start + 1
    summary = mem_summaries[tt]
    if readout:
        p = p_buf[t]
        for i in range(n):
            acc = b_r[0]
            for c in range(d):
                acc += h_tilde[i, c] * w_r[c]
            p[i] = acc
        _softmax_inplace(p, n, t_in, t_out)
        for c in range(d):
            summary[c] = 0.0
        for i in range(n):
            for c in range(d):
                summary[c] += p[i] * h_tilde[i, c]
    else:
        for c in range(d):
            summary[c] = 0.0
        for i in range(n):
            for c in range(d):
                summary[c] += h_tilde[i, c]
        for c in range(d):
            summary[c] /= n
    # q = W_q u_t + b_q; scores = (U W_k^T) q / sqrt(d); weights = softmax
    for o in range(d):
        q[o] = b_q[o]
    for kk in range(d):
        for o in range(d):
            q[o] += summary[kk] * w_qt[kk, o]
    weights = attention[t, start : tt + 1]
    for j in range(m):
        u = mem_summaries[start + j]
        acc = np.float32(0.0)
        for o in range(d):
            key = np.float32(0.0)
            for kk in range(d):
                key += u[kk] * w_kt[kk, o]
            acc += key * q[o]
        weights[j] = acc * inv_sqrt_d
    _softmax_inplace(weights, m, t_in, t_out)
    # context = [u_t, U^T weights]; a = sum_s weights_s H_s (the proposal last)
    for c in range(d):
        context[c] = summary[c]
        acc = np.float32(0.0)
        for j in range(m):
            acc += weights[j] * mem_summaries[start + j, c]
        context[d + c] = acc
    w_last = weights[m - 1]
    for i in range(n):
        for c in range(d):
            a[i, c] = w_last * h_tilde[i, c]
    for j in range(m - 1):  # one past state at a time: each is read as one contiguous block
        wj = weights[j]
        hs = mem_states[start + j]
        for i in range(n):
            for c in range(d):
                a[i, c] += wj * hs[i, c]
    # gate = sigmoid(W_g context + b_g)
    for o in range(d):
        gate[o] = b_g[o]
    for kk in range(2 * d):
        cv = context[kk]
        for o in range(d):
            gate[o] += cv * w_gt[kk, o]
    for o in range(d):
        t_in[o] = -gate[o]
    _exp_into(t_in[:d], t_out[:d])
    for o in range(d):
        gate[o] = np.float32(1.0) / (np.float32(1.0) + t_out[o])
    # diff = a W_v^T + b_v - h~; out = h~ + gate * diff
    av = np.dot(a, w_vt)
    state = mem_states[tt]
    for i in range(n):
        for c in range(d):
            dv = av[i, c] + b_v[c] - h_tilde[i, c]
            diff[i, c] = dv
            ov = h_tilde[i, c] + gate[c] * dv
            out[i, c] = ov
            state[i, c] = ov


# ------------------------------------------------------------------ backward
@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sequence_backward(
    indptr, indices, values, eps, sample, states, ae, pz, rh, e_buf, sr_buf, sg_buf, c_buf, z,
    w_h, w_post, w_z, w_gz, w_hc,
    attend, readout, w_r, w_q, w_k, w_v, w_g, mem_states, mem_summaries, g_states, g_summaries, n_past, window,
    proposals, queries, p_buf, gate_buf, diff_buf, attention,
    d_mu, d_sigma, d_z, d_h_prev, has_d_mu, has_d_sigma, has_d_z, has_d_h_prev, d_h_last,
    d_hp, d_a1, d_post, d_pz, d_gsr, d_gc, d_att, d_gate, d_q, ud, d_logits,
):  # fmt: skip
    """Backward pass of every window, in reverse (see :func:`.fused.step_backward` and
    :func:`.attention.gated_step_backward`). Writes the gradient factors ``d_hp`` (T, N, 4d), ``d_a1, d_pz,
    d_gc`` (T, N, d), ``d_post`` (T, N, 2k), ``d_gsr`` (T, N, 2d) and, with attention, ``d_att`` (T, N, d),
    ``d_gate, d_q, ud`` (T, d) and ``d_logits`` (T, N), from which the caller forms the weight gradients. Weights
    are passed as stored (output-major). Returns the gradient of the initial state (N, d)."""
    n_windows = indptr.shape[0]
    n, d = d_h_last.shape
    k = w_z.shape[1]
    width = w_h.shape[0]
    f32 = np.float32
    # W_h with zero rows up to 4d, so that d_h += d_hp W_h is one product over the contiguous d_hp
    w_h4 = np.zeros((4 * d, d), dtype=np.float32)
    w_h4[:width] = w_h
    carry = d_h_last.copy()
    d_state = np.empty((n, d), dtype=np.float32)
    d_h = np.empty((n, d), dtype=np.float32)
    a_gc = np.empty((n, d), dtype=np.float32)
    a_gsr = np.empty((n, 2 * d), dtype=np.float32)
    d_pre = np.empty((n, 3 * d), dtype=np.float32)
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
                t, n_past + t, carry, d_state, proposals[t], readout, w_r, w_q, w_k, w_v, w_g,
                mem_states, mem_summaries, g_states, g_summaries, window, inv_sqrt_d,
                queries[t], p_buf, gate_buf[t], diff_buf[t], attention,
                d_att[t], d_gate[t], d_q[t], ud[t], d_logits, d_a,
            )  # fmt: skip
        else:
            d_state[:] = carry
        sg, cc = sg_buf[t], c_buf[t]
        dhp, dgsr, dgc = d_hp[t], d_gsr[t], d_gc[t]
        # h' = c + s (h - c); c = tanh(.)
        for i in range(n):
            for c in range(d):
                dn = d_state[i, c]
                s = sg[i, c]
                cv = cc[i, c]
                dgc[i, c] = (dn - dn * s) * (f32(1.0) - cv * cv)
                dgsr[i, c] = dn * (h[i, c] - cv) * s * (f32(1.0) - s)
                d_h[i, c] = dn * s
        _spmm(row_ptr, indices, values, dgc, a_gc)  # d_q = A dG_c (q = (r h) W_hc^T)
        d_rh = np.dot(a_gc, w_hc)
        for i in range(n):
            for c in range(d):
                r = sg[i, d + c]
                d_h[i, c] += d_rh[i, c] * r
                dgsr[i, d + c] = d_rh[i, c] * h[i, c] * r * (f32(1.0) - r)
        _spmm(row_ptr, indices, values, dgsr, a_gsr)
        for i in range(n):
            for c in range(2 * d):
                d_pre[i, c] = a_gsr[i, c]
            for c in range(d):
                d_pre[i, 2 * d + c] = a_gc[i, c]
        # phi_z: d_pz = d_pre W_gz, through the relu
        d_pz_in = np.dot(d_pre, w_gz)
        pzt, dpz = pz[t], d_pz[t]
        for i in range(n):
            for c in range(d):
                dpz[i, c] = d_pz_in[i, c] if pzt[i, c] > 0.0 else f32(0.0)
        d_zt = np.dot(dpz, w_z)
        # posterior: d_post = [d_mu + d_z, d_sigma sigmoid(sr)] with d_sigma += d_z eps
        sr = sr_buf[t]
        for i in range(n):
            for c in range(k):
                t_in[i * k + c] = -sr[i, c]
        _exp_into(t_in, t_out)
        dpost = d_post[t]
        for i in range(n):
            for c in range(k):
                dz = d_zt[i, c] + (d_z[t, i, c] if has_d_z else f32(0.0))
                ds = d_sigma[t, i, c] if has_d_sigma else f32(0.0)
                if sample:
                    ds += dz * eps[t, i, c]
                dpost[i, c] = dz + (d_mu[t, i, c] if has_d_mu else f32(0.0))
                dpost[i, k + c] = ds / (f32(1.0) + t_out[i * k + c])
        d_ae = np.dot(dpost, w_post)
        _spmm(row_ptr, indices, values, d_ae, d_ae_a)
        da1, e = d_a1[t], e_buf[t]
        for i in range(n):
            for c in range(d):
                da1[i, c] = d_ae_a[i, c] if e[i, c] > 0.0 else f32(0.0)
        _spmm(row_ptr, indices, values, da1, d_x1)
        for i in range(n):
            for c in range(d):
                dhp[i, c] = d_x1[i, c]
            for c in range(3 * d):
                dhp[i, d + c] = d_pre[i, c]
        d_h += np.dot(dhp, w_h4)
        if has_d_h_prev:
            d_h += d_h_prev[t]
        carry[:] = d_h
    return carry


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _attention_backward(
    t, tt, d_out_in, d_h, h_tilde, readout, w_r, w_q, w_k, w_v, w_g,
    mem_states, mem_summaries, g_states, g_summaries, window, inv_sqrt_d,
    q, p_buf, gate, diff, attention,
    d_att, d_gpre, d_q, ud, d_logits, d_a,
):  # fmt: skip
    n, d = h_tilde.shape
    f32 = np.float32
    start = 0 if window <= 0 else max(0, tt - window + 1)
    m = tt - start + 1
    weights = attention[t, start : tt + 1]
    g_state = g_states[tt]
    # out = h~ + gate (att - h~): d_att = d_out gate, d_h = d_out - d_att, d_gate = sum_i d_out diff
    d_gate_sum = np.zeros(d, dtype=np.float32)
    for i in range(n):
        for c in range(d):
            do = d_out_in[i, c] + g_state[i, c]
            g_state[i, c] = 0.0
            da = do * gate[c]
            d_att[i, c] = da
            d_h[i, c] = do - da
            d_gate_sum[c] += do * diff[i, c]
    for c in range(d):
        d_gpre[c] = d_gate_sum[c] * gate[c] * (f32(1.0) - gate[c])
    # d_context = W_g^T d_gpre: [d_u_t | d_ctx]
    d_context = np.zeros(2 * d, dtype=np.float32)
    for o in range(d):
        gv = d_gpre[o]
        for kk in range(2 * d):
            d_context[kk] += gv * w_g[o, kk]
    # a = sum_s alpha_s H_s; d_a = d_att W_v
    d_a[:] = np.dot(d_att, w_v)
    d_alpha = np.zeros(m, dtype=np.float32)
    w_last = weights[m - 1]
    acc = f32(0.0)
    for i in range(n):
        for c in range(d):
            acc += d_a[i, c] * h_tilde[i, c]
            d_h[i, c] += d_a[i, c] * w_last
    d_alpha[m - 1] = acc
    for j in range(m - 1):  # each past step: its own weight's gradient and its own state's
        hs = mem_states[start + j]
        gs = g_states[start + j]
        wj = weights[j]
        acc = f32(0.0)
        for i in range(n):
            for c in range(d):
                acc += hs[i, c] * d_a[i, c]
                gs[i, c] += wj * d_a[i, c]
        d_alpha[j] = acc
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
    for c in range(d):
        acc = f32(0.0)
        for j in range(m):
            acc += mem_summaries[start + j, c] * d_scores[j]
        ud[c] = acc
    for o in range(d):
        acc = f32(0.0)
        for c in range(d):
            acc += w_k[o, c] * ud[c]
        d_q[o] = acc
    # d_u_t = d_ctx-part... : d_u_t (the summary's own gradient) += W_q^T d_q
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
    for j in range(m - 1):
        gsum = g_summaries[start + j]
        for c in range(d):
            gsum[c] += weights[j] * d_context[d + c] + d_scores[j] * wkq[c]
    for c in range(d):
        d_u_t[c] += weights[m - 1] * d_context[d + c] + d_scores[m - 1] * wkq[c] + g_summaries[tt, c]
        g_summaries[tt, c] = 0.0
    # the summary: softmax readout or mean over nodes
    if readout:
        p = p_buf[t]
        dl = d_logits[t]
        dot = f32(0.0)
        for i in range(n):
            acc = f32(0.0)
            for c in range(d):
                acc += h_tilde[i, c] * d_u_t[c]
                d_h[i, c] += p[i] * d_u_t[c]
            dl[i] = acc
            dot += acc * p[i]
        for i in range(n):
            dl[i] = p[i] * (dl[i] - dot)
            for c in range(d):
                d_h[i, c] += dl[i] * w_r[c]
    else:
        for i in range(n):
            for c in range(d):
                d_h[i, c] += d_u_t[c] / n

