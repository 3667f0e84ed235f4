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

    ``eps`` may be None (``z = mu``, deterministic). See the module docstring for the function.
    """

    @staticmethod
    def forward(ctx, adj, h, pe, pg, eps, w_h, b_enc, w_post, b_post, w_z, b_z, w_gz, b_gru, w_hc):
        d = h.shape[1]
        k = w_post.shape[0] // 2
        hp = h @ w_h.t()
        hp_e, hp_g = hp.split([d, 3 * d], dim=1)
        a1 = torch.addmm(b_enc.expand(h.shape[0], d), adj, pe + hp_e)
        e = torch.relu(a1)
        ae = adj @ e
        post = torch.addmm(b_post, ae, w_post.t())
        mu, sr = post.split(k, dim=1)
        sigma = F.softplus(sr)
        z = torch.addcmul(mu, sigma, eps) if eps is not None else mu
        pz = torch.relu(torch.addmm(b_z, z, w_z.t()))
        pre = torch.addmm(pg + hp_g, pz, w_gz.t())
        g = torch.addmm(b_gru.expand(h.shape[0], 3 * d), adj, pre)
        s, r = torch.sigmoid(g[:, : 2 * d]).split(d, dim=1)
        rh = r * h
        c = torch.tanh(torch.addmm(g[:, 2 * d :], adj, rh @ w_hc.t()))
        h_new = torch.lerp(c, h, s)
        ctx.adj = adj
        ctx.has_eps = eps is not None
        ctx.save_for_backward(h, eps, w_h, w_post, w_z, w_gz, w_hc, a1, e, ae, sr, sigma, z, pz, s, r, rh, c)
        return mu.contiguous(), sigma, z if eps is not None else mu.clone(), h_new

    @staticmethod
    def backward(ctx, d_mu, d_sigma, d_z, d_h_new):
        (h, eps, w_h, w_post, w_z, w_gz, w_hc, a1, e, ae, sr, sigma, z, pz, s, r, rh, c) = ctx.saved_tensors
        adj = ctx.adj
        d = h.shape[1]
        zero = torch.zeros_like
        d_mu = zero(sigma) if d_mu is None else d_mu
        d_sigma = zero(sigma) if d_sigma is None else d_sigma
        d_z = zero(sigma) if d_z is None else d_z
        d_h_new = zero(h) if d_h_new is None else d_h_new

        # h' = s h + (1 - s) c
        d_c = d_h_new * (1.0 - s)
        d_s = d_h_new * (h - c)
        d_h = d_h_new * s
        d_gc = d_c * (1.0 - c * c)
        d_q = adj @ d_gc  # q = (r h) W_hc^T, propagated: c_pre = G_c + A q
        d_w_hc = d_q.t() @ rh
        d_rh = d_q @ w_hc
        d_r = d_rh * h
        d_h = d_h + d_rh * r
        d_g = torch.cat([d_s * s * (1.0 - s), d_r * r * (1.0 - r), d_gc], dim=1)
        d_b_gru = d_g.sum(0)
        d_pre = adj @ d_g  # (N, 3d): gradient of pg, of the phi_z projection and of hp[:, d:]
        d_w_gz = d_pre.t() @ pz
        d_pz_pre = (d_pre @ w_gz).mul_(pz > 0)
        d_w_z = d_pz_pre.t() @ z
        d_b_z = d_pz_pre.sum(0)
        d_z_total = d_z + d_pz_pre @ w_z
        d_mu_total = d_mu + d_z_total
        d_sigma_total = d_sigma + d_z_total * eps if ctx.has_eps else d_sigma
        d_sr = d_sigma_total * torch.sigmoid(sr)
        d_post = torch.cat([d_mu_total, d_sr], dim=1)
        d_w_post = d_post.t() @ ae
        d_b_post = d_post.sum(0)
        d_e = adj @ (d_post @ w_post)
        d_a1 = d_e.mul_(a1 > 0)
        d_b_enc = d_a1.sum(0)
        d_x1 = adj @ d_a1  # gradient of pe and of hp[:, :d]
        d_hp = torch.cat([d_x1, d_pre], dim=1)
        d_w_h = d_hp.t() @ h
        d_h = d_h + d_hp @ w_h
        return (
            None,
            d_h,
            d_x1,
            d_pre,
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
