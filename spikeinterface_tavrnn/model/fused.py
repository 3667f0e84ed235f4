"""One VGRNN recurrence step (encoder, posterior, reparameterisation, phi_z, graph GRU) as a single autograd node.

Eager autograd records ~40 nodes per window for this step; at 900 nodes each costs more in bookkeeping and
allocation than in arithmetic. :class:`FusedVGRNNStep` computes the same function with a hand-written backward
(checked against autograd in the tests). It is used for one-layer models; the modules in :mod:`.tavrnn` and
:mod:`.graph_gru` remain the reference implementation.

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

__all__ = ["FusedVGRNNStep"]


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
        n, d = h.shape
        k = w_post.shape[0] // 2
        ctx.joint = pg is None
        if ctx.joint:
            pe, pg = pe[:, :d], pe[:, d:]
        hp = h @ w_h.t()  # (N, 4d) or (N, 3d)
        a1 = torch.addmm(b_enc.expand(n, d), adj, torch.add(pe, hp[:, :d]))
        e = torch.relu(a1)
        ae = adj @ e
        post = torch.addmm(b_post, ae, w_post.t())
        mu, sr = post.split(k, dim=1)
        sr = sr.contiguous()  # elementwise kernels on 8-wide strided rows are several times slower
        sigma = F.softplus(sr)
        z = torch.addcmul(mu, sigma, eps) if eps is not None else mu
        pz = torch.relu(torch.addmm(b_z, z, w_z.t()))
        if hp.shape[1] == 4 * d:
            pre = torch.add(pg, hp[:, d:])
        else:
            pre = pg.clone()
            pre[:, : 2 * d].add_(hp[:, d:])
        pre = pre.addmm_(pz, w_gz.t())
        g = torch.addmm(b_gru.expand(n, 3 * d), adj, pre)
        sg = torch.sigmoid(g[:, : 2 * d])  # (N, 2d): update s | reset r
        s, r = sg[:, :d], sg[:, d:]
        rh = r * h
        # c = tanh(G_c + A (r h) W_hc^T) = 2 sigmoid(2 (...)) - 1
        c = torch.addmm(g[:, 2 * d :], adj, rh @ w_hc.t(), beta=2.0, alpha=2.0).sigmoid_().mul_(2.0).sub_(1.0)
        hc = h - c
        h_new = torch.addcmul(c, s, hc)  # s h + (1 - s) c
        ctx.adj = adj
        ctx.has_eps = eps is not None
        ctx.save_for_backward(h, eps, w_h, w_post, w_z, w_gz, w_hc, e, ae, sr, z, pz, sg, rh, c, hc)
        return mu.contiguous(), sigma, z if eps is not None else mu.clone(), h_new

    @staticmethod
    def backward(ctx, d_mu, d_sigma, d_z, d_h_new):
        (h, eps, w_h, w_post, w_z, w_gz, w_hc, e, ae, sr, z, pz, sg, rh, c, hc) = ctx.saved_tensors
        adj = ctx.adj
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
        d_hp = h.new_empty(n, 4 * d)

        # h' = c + s (h - c); c = tanh(.)
        d_gc = aten.tanh_backward(torch.addcmul(d_h_new, d_h_new, s, value=-1.0), c)
        d_q = torch.mm(adj, d_gc, out=d_hp[:, 3 * d :])  # q = (r h) W_hc^T, propagated: c_pre = G_c + A q
        d_w_hc = d_q.t() @ rh
        d_rh = d_q @ w_hc
        d_h = torch.addcmul(d_h_new * s, d_rh, r)
        d_gsr = h.new_empty(n, 2 * d)
        aten.sigmoid_backward.grad_input(d_h_new * hc, s, grad_input=d_gsr[:, :d])
        aten.sigmoid_backward.grad_input(d_rh * h, r, grad_input=d_gsr[:, d:])
        d_b_gru = torch.cat([d_gsr.sum(0), d_gc.sum(0)])
        torch.mm(adj, d_gsr, out=d_hp[:, d : 3 * d])
        d_pre = d_hp[:, d:]  # (N, 3d): gradient of pg, of the phi_z projection and of hp[:, d:]
        d_w_gz = d_pre.t() @ pz
        d_pz_pre = aten.threshold_backward(d_pre @ w_gz, pz, 0)
        d_w_z = d_pz_pre.t() @ z
        d_b_z = d_pz_pre.sum(0)
        d_z_total = torch.addmm(d_z, d_pz_pre, w_z)
        d_sigma_total = torch.addcmul(d_sigma, d_z_total, eps) if ctx.has_eps else d_sigma
        d_post = torch.cat([d_mu + d_z_total, aten.softplus_backward(d_sigma_total, sr, 1.0, 20.0)], dim=1)
        d_w_post = d_post.t() @ ae
        d_b_post = d_post.sum(0)
        d_a1 = aten.threshold_backward(adj @ (d_post @ w_post), e, 0)
        d_b_enc = d_a1.sum(0)
        d_x1 = torch.mm(adj, d_a1, out=d_hp[:, :d])  # gradient of pe and of hp[:, :d]
        d_hp_used = d_hp[:, :width]
        d_w_h = d_hp_used.t() @ h
        d_h = d_h.addmm_(d_hp_used, w_h)
        return (
            None,
            d_h,
            d_hp if ctx.joint else d_x1,
            None if ctx.joint else d_pre,
            None,
            d_w_h,
            d_b_enc,
            d_w_post,
            d_b_post,
            d_w_z,
            d_b_z,
            d_w_gz,
            d_b_gru,
            d_w_hc,
        )
