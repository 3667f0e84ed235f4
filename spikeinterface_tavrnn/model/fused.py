"""One VGRNN recurrence step (encoder, posterior, reparameterisation, phi_z, graph GRU) with a hand-written backward.

Eager autograd records ~40 nodes per window for this step; at 900 nodes each costs more in bookkeeping and
allocation than in arithmetic. :func:`step_forward` and :func:`step_backward` compute the same function and its
gradient as plain functions: :class:`~.sequence.FusedSequence` runs them over a whole sequence in one autograd node
(with the weight gradients of all windows taken at the end, see ``sink``), and :class:`FusedVGRNNStep` wraps them as
the autograd node of one window, which is how the tests check the step's gradient against finite differences. The
modules in :mod:`.tavrnn` and :mod:`.graph_gru` remain the reference implementation.

Notation (one window, d = h_dim, k = z_dim, A the normalised symmetric adjacency)::

    hp      = h W_h^T                       W_h = [W_enc_h; W_gru_h (2d); 0 (d)]    (N, 4d)
    a1      = A (pe + hp[:, :d]) + b_enc;   E = relu(a1)
    post    = (A E) W_post^T + b_post;      mu, sr = post[:, :k], post[:, k:];  sigma = softplus(sr)
    z       = mu + sigma * eps              (or mu)
    pz      = relu(z W_z^T + b_z)
    G       = A (pg + pz W_gz^T + hp[:, d:]) + b_gru;  s, r = sigmoid(G_s), sigmoid(G_r)
    c       = tanh(G_c + A ((r * h) W_hc^T));          h' = s * h + (1 - s) * c
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FusedVGRNNStep", "step_forward", "step_backward"]


def step_forward(adj, h, pe, pg, eps, w_h, b_enc, w_post, b_post, w_z, b_z, w_gz, b_gru, w_hc, rows=None):
    """One window's forward pass. Returns ``(mu, sigma, z, h_new, saved)``; ``saved`` is what
    :func:`step_backward` needs.

    ``rows`` (optional) holds preallocated tensors the step writes into instead of allocating: ``"mu"``, ``"sigma"``,
    ``"z"`` (N, k), ``"ae"``, ``"pz"``, ``"rh"`` and ``"h_new"`` (N, d). The others are kept in ``saved`` only.
    """
    n, d = h.shape
    k = w_post.shape[0] // 2
    if pg is None:
        pe, pg = pe[:, :d], pe[:, d:]
    row = (lambda name: None) if rows is None else rows.get
    hp = h @ w_h.t()  # (N, 4d) or (N, 3d)
    a1 = torch.addmm(b_enc.expand(n, d), adj, torch.add(pe, hp[:, :d]))
    e = torch.relu(a1)
    ae = torch.mm(adj, e, out=row("ae"))
    post = torch.addmm(b_post, ae, w_post.t())
    mu, sr = post.split(k, dim=1)
    sr = sr.contiguous()  # elementwise kernels on 8-wide strided rows are several times slower
    mu = row("mu").copy_(mu) if row("mu") is not None else mu.contiguous()
    sigma = F.softplus(sr) if row("sigma") is None else torch.ops.aten.softplus.out(sr, 1.0, 20.0, out=row("sigma"))
    if eps is not None:
        z = torch.addcmul(mu, sigma, eps, out=row("z"))
    else:
        z = mu.clone() if row("z") is None else row("z").copy_(mu)
    pz = torch.addmm(b_z, z, w_z.t(), out=row("pz")).relu_()
    if hp.shape[1] == 4 * d:
        pre = torch.add(pg, hp[:, d:])
    else:
        pre = pg.clone()
        pre[:, : 2 * d].add_(hp[:, d:])
    pre = pre.addmm_(pz, w_gz.t())
    g = torch.addmm(b_gru.expand(n, 3 * d), adj, pre)
    sg = torch.sigmoid(g[:, : 2 * d])  # (N, 2d): update s | reset r
    s, r = sg[:, :d], sg[:, d:]
    rh = torch.mul(r, h, out=row("rh"))
    # c = tanh(G_c + A (r h) W_hc^T) = 2 sigmoid(2 (...)) - 1
    c = torch.addmm(g[:, 2 * d :], adj, rh @ w_hc.t(), beta=2.0, alpha=2.0).sigmoid_().mul_(2.0).sub_(1.0)
    hc = h - c
    h_new = torch.addcmul(c, s, hc, out=row("h_new"))
    saved = (h, eps, w_h, w_post, w_z, w_gz, w_hc, e, ae, sr, z, pz, sg, rh, c, hc)
    return mu, sigma, z, h_new, saved


def step_backward(adj, saved, d_mu, d_sigma, d_z, d_h_new, sink=None):
    """One window's backward pass (``saved`` from :func:`step_forward`; None gradients count as zero).

    Without ``sink``, returns ``(d_h, d_hp, weight_grads)``: the gradient of the previous state, the (N, 4d)
    gradient of ``[pe | pg]`` (its first d columns are that of ``pe``) and the gradients of ``(w_h, b_enc, w_post,
    b_post, w_z, b_z, w_gz, b_gru, w_hc)``. With ``sink``, a dict of preallocated tensors ``"d_hp"`` (N, 4d),
    ``"d_a1"`` (N, d), ``"d_post"`` (N, 2k), ``"d_pz"`` (N, d), ``"d_gsr"`` (N, 2d) and ``"d_gc"`` (N, d), the step
    writes the
    gradients of its pre-activations there and skips the weight gradients (``weight_grads`` is None): they are sums
    over windows of products with the saved activations, taken for all windows at once by the caller.
    """
    (h, eps, w_h, w_post, w_z, w_gz, w_hc, e, ae, sr, z, pz, sg, rh, c, hc) = saved
    n, d = h.shape
    aten = torch.ops.aten
    zero = torch.zeros_like
    d_mu = zero(sr) if d_mu is None else d_mu
    d_sigma = zero(sr) if d_sigma is None else d_sigma
    d_z = zero(sr) if d_z is None else d_z
    d_h_new = zero(h) if d_h_new is None else d_h_new
    s, r = sg[:, :d], sg[:, d:]
    width = w_h.shape[0]  # 4d, or 3d without the candidate block
    # d_hp = [d_x1 | A dG_s | A dG_r | A dG_c]: the gradient of pe (first d columns), of pg (the rest) and of hp
    d_hp = h.new_empty(n, 4 * d) if sink is None else sink["d_hp"]
    d_gsr = h.new_empty(n, 2 * d) if sink is None else sink["d_gsr"]  # [dG_s | dG_r]

    # h' = c + s (h - c); c = tanh(.)
    d_c = torch.addcmul(d_h_new, d_h_new, s, value=-1.0)
    if sink is None:
        d_gc = aten.tanh_backward(d_c, c)
    else:
        d_gc = aten.tanh_backward.grad_input(d_c, c, grad_input=sink["d_gc"])
    d_q = torch.mm(adj, d_gc, out=d_hp[:, 3 * d :])  # q = (r h) W_hc^T, propagated: c_pre = G_c + A q
    d_rh = d_q @ w_hc
    d_h = torch.addcmul(d_h_new * s, d_rh, r)
    aten.sigmoid_backward.grad_input(d_h_new * hc, s, grad_input=d_gsr[:, :d])
    aten.sigmoid_backward.grad_input(d_rh * h, r, grad_input=d_gsr[:, d:])
    torch.mm(adj, d_gsr, out=d_hp[:, d : 3 * d])
    d_pre = d_hp[:, d:]  # (N, 3d): gradient of pg, of the phi_z projection and of hp[:, d:]
    d_pz = d_pre @ w_gz
    d_pz_pre = (
        aten.threshold_backward(d_pz, pz, 0)
        if sink is None
        else aten.threshold_backward.grad_input(d_pz, pz, 0, grad_input=sink["d_pz"])
    )
    d_z_total = torch.addmm(d_z, d_pz_pre, w_z)
    d_sigma_total = torch.addcmul(d_sigma, d_z_total, eps) if eps is not None else d_sigma
    d_post_parts = [d_mu + d_z_total, aten.softplus_backward(d_sigma_total, sr, 1.0, 20.0)]
    d_post = torch.cat(d_post_parts, dim=1, out=None if sink is None else sink["d_post"])
    d_a1_in = adj @ (d_post @ w_post)
    d_a1 = (
        aten.threshold_backward(d_a1_in, e, 0)
        if sink is None
        else aten.threshold_backward.grad_input(d_a1_in, e, 0, grad_input=sink["d_a1"])
    )
    torch.mm(adj, d_a1, out=d_hp[:, :d])  # gradient of pe and of hp[:, :d]
    d_hp_used = d_hp[:, :width]
    d_h = d_h.addmm_(d_hp_used, w_h)
    if sink is not None:
        return d_h, d_hp, None
    weight_grads = (
        d_hp_used.t() @ h,  # w_h
        d_a1.sum(0),  # b_enc
        d_post.t() @ ae,  # w_post
        d_post.sum(0),  # b_post
        d_pz_pre.t() @ z,  # w_z
        d_pz_pre.sum(0),  # b_z
        d_pre.t() @ pz,  # w_gz
        torch.cat([d_gsr.sum(0), d_gc.sum(0)]),  # b_gru
        d_q.t() @ rh,  # w_hc
    )
    return d_h, d_hp, weight_grads


class FusedVGRNNStep(torch.autograd.Function):
    """``(mu, sigma, z, h_new) = step(adj, h, pe, pg, eps, W_h, b_enc, W_post, b_post, W_z, b_z, W_gz, b_gru, W_hc)``.

    ``eps`` may be None (``z = mu``, deterministic). ``W_h`` is (4d, d) as in the module docstring, or (3d, d)
    without the candidate's zero block (same function, one product narrower). ``pg`` may be None with ``pe`` the
    (N, 4d) concatenation ``[pe | pg]`` (one input, one gradient: the caller's projection of all windows then needs
    no split). See the module docstring.

    The candidate's ``tanh(x)`` is computed as ``2 sigmoid(2 x) - 1`` (the same function, one cheap transcendental
    instead of a dear one on CPU). The backward pass uses the fused elementwise backward kernels of ATen
    (``sigmoid_backward``, ``tanh_backward``, ``threshold_backward``, ``softplus_backward``), writes the gate
    gradients into one buffer, and reuses ``A dG_c`` (needed early for the reset gate) as the candidate's share of
    ``A dG`` instead of propagating it twice.
    """

    @staticmethod
    def forward(ctx, adj, h, pe, pg, eps, w_h, b_enc, w_post, b_post, w_z, b_z, w_gz, b_gru, w_hc):
        mu, sigma, z, h_new, saved = step_forward(adj, h, pe, pg, eps, w_h, b_enc, w_post, b_post, w_z, b_z, w_gz,
                                                  b_gru, w_hc)  # fmt: skip
        ctx.adj = adj
        ctx.joint = pg is None
        ctx.save_for_backward(*saved)
        return mu, sigma, z, h_new

    @staticmethod
    def backward(ctx, d_mu, d_sigma, d_z, d_h_new):
        d_h, d_hp, weight_grads = step_backward(ctx.adj, ctx.saved_tensors, d_mu, d_sigma, d_z, d_h_new)
        d = d_h.shape[1]
        return (
            None,
            d_h,
            d_hp if ctx.joint else d_hp[:, :d],
            None if ctx.joint else d_hp[:, d:],
            None,
            *weight_grads,
        )
