"""Compiled (numba) CPU kernels for the elementwise tail of the model and the loss: the softplus of the prior's scale
and the Gaussian KL term with its gradient.

Each is a few dozen PyTorch operations on (T, N, k) tensors, forward and backward, each with its dispatch cost and a
pass over memory (PyTorch's float32 softplus alone took ~1.3 ms for 19 x 900 x 8 values); here one vectorised loop
does each direction. Logarithms and exponentials are the float32 approximations of :mod:`.cpu_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cpu_kernels import _FASTMATH, _LN2, _exp, _float32_bits, _int32_bits_as_float32, _log1p

__all__ = ["softplus_forward", "softplus_backward", "kl_normal_grad"]

_SQRT2 = np.float32(1.4142135623730951)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _log(x):
    """``log(x)`` for a positive normal float32 (within ~2 ulps): ``x = m 2^e`` with ``m`` in [sqrt(1/2), sqrt(2)),
    ``log m = 2 atanh((m - 1) / (m + 1))``. Written with selects, so that loops calling it vectorise."""
    bits = _float32_bits(x)
    e = ((bits >> np.int32(23)) & np.int32(0xFF)) - np.int32(127)
    m = _int32_bits_as_float32((bits & np.int32(0x7FFFFF)) | np.int32(0x3F800000))  # in [1, 2)
    big = m > _SQRT2
    m = m * np.float32(0.5) if big else m
    e = e + np.int32(1) if big else e
    s = (m - np.float32(1.0)) / (m + np.float32(1.0))
    s2 = s * s
    inner = np.float32(2.0 / 7.0) + s2 * np.float32(2.0 / 9.0)
    series = s * (np.float32(2.0) + s2 * (np.float32(2.0 / 3.0) + s2 * (np.float32(0.4) + s2 * inner)))
    return series + np.float32(e) * _LN2


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def softplus_forward(x, out):
    """``out = softplus(x) = max(x, 0) + log1p(exp(-|x|))`` elementwise (flat float32 arrays); NaN stays NaN."""
    for i in range(x.size):
        v = x[i]
        r = max(v, np.float32(0.0)) + _log1p(_exp(-abs(v)))
        out[i] = r if v == v else v


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def softplus_backward(x, grad_out, grad_in):
    """``grad_in = grad_out * sigmoid(x)`` elementwise (flat float32 arrays); NaN stays NaN."""
    for i in range(x.size):
        v = x[i]
        e = _exp(-abs(v))
        r = grad_out[i] * (np.float32(1.0) if v >= np.float32(0.0) else e) / (np.float32(1.0) + e)
        grad_in[i] = r if v == v else v


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def kl_normal_grad(mu_q, sigma_q, mu_p, sigma_p, eps, totals, g_mu_q, g_sigma_q, g_mu_p, g_sigma_p):
    """Per window ``t``: ``totals[t] = sum_{i,c} KL(N(mu_q, sigma_q) || N(mu_p, sigma_p))`` (float64, (T,)) and the
    derivatives of that sum with respect to each input, written to the ``g_`` arrays. Inputs and outputs are
    (T, M) float32 (M = nodes x latent dimensions); ``eps`` is added to both scales, as in
    :func:`.losses.kl_normal`. A NaN or infinite input reaches the total through the quadratic term (the logarithm
    alone would not carry it)."""
    n_windows, size = mu_q.shape
    for t in range(n_windows):
        mq, sq, mp, sp = mu_q[t], sigma_q[t], mu_p[t], sigma_p[t]
        gmq, gsq, gmp, gsp = g_mu_q[t], g_sigma_q[t], g_mu_p[t], g_sigma_p[t]
        acc = np.float32(0.0)
        for i in range(size):
            sqe = sq[i] + eps
            spe = sp[i] + eps
            inv_p = np.float32(1.0) / spe
            inv_p2 = inv_p * inv_p
            diff = mq[i] - mp[i]
            spread = sq[i] * sq[i] + diff * diff
            acc += _log(spe / sqe) + np.float32(0.5) * spread * inv_p2 - np.float32(0.5)
            gmq[i] = diff * inv_p2
            gmp[i] = -diff * inv_p2
            gsq[i] = sq[i] * inv_p2 - np.float32(1.0) / sqe
            gsp[i] = inv_p - spread * inv_p2 * inv_p
        totals[t] = acc
