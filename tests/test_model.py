import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.nn import GCNConv

from spikeinterface_tavrnn.graphs import GraphSequence
from spikeinterface_tavrnn.model import (
    VGRNN,
    GraphGRUCell,
    NegativeSampler,
    PrecomputedGCNConv,
    TAVRNNModule,
    TemporalAttention,
    kl_normal,
    normalized_adjacency,
    pairwise_softplus_sum,
    prepare_sequence,
    reconstruction_loss,
    symmetric_spmm,
)


sys.path.insert(0, str(Path(__file__).parent))
from _prepared import as_double as _double  # noqa: E402
from _team import record_team_sizes  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _random_graphs(n=12, t=4, p=0.3, seed=0, features=False, weighted=False):
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(t):
        upper = np.triu(rng.random((n, n)) < p, 1).astype(np.float32)
        if weighted:
            upper *= rng.random((n, n)).astype(np.float32) + 0.1
        mats.append(upper + upper.T)
    feats = rng.random((t, n, 5)).astype(np.float32) if features else None
    return GraphSequence.from_adjacency(mats, node_features=feats)


def _loss(module, prep, mode="dense", negatives=None):
    out = module(prep, sample=True, generator=torch.Generator().manual_seed(0))
    rec = reconstruction_loss(out.z, prep, mode, negatives)
    return (rec + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)).sum()


_OUTPUT_NAMES = ("mu", "sigma", "z", "prior_mu", "prior_sigma")


def _outputs_and_grads(module, prep, seed=0, sample=True, extra=None):
    module.zero_grad()
    out = module(prep, sample=sample, generator=torch.Generator().manual_seed(seed))
    loss = (
        reconstruction_loss(out.z, prep, "dense") + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)
    ).sum() + (out.mu**3).sum()
    if extra is not None:
        loss = loss + extra(out)
    loss.backward()
    return out, {n: p.grad.clone() for n, p in module.named_parameters()}


def _assert_fused_matches_reference(module, prep, sample=True, extra=None, names=_OUTPUT_NAMES):
    """The fused path (module.fused) gives the reference layers' outputs and every parameter gradient."""
    module.fused = False
    ref_out, ref_grads = _outputs_and_grads(module, prep, sample=sample, extra=extra)
    module.fused = True
    out, grads = _outputs_and_grads(module, prep, sample=sample, extra=extra)
    for name in names:
        torch.testing.assert_close(getattr(out, name), getattr(ref_out, name))
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, msg=name)


# ---------------------------------------------------------------- layers
def test_precomputed_gcn_matches_pyg_gcnconv():
    torch.manual_seed(0)
    g = _random_graphs(n=15, t=1, weighted=True)
    ei = torch.from_numpy(g.edge_index(0))
    w = torch.from_numpy(g.edge_weight(0))
    x = torch.randn(15, 6)
    for weight in (None, w):
        ref = GCNConv(6, 4, cached=False, add_self_loops=True, normalize=True)
        ours = PrecomputedGCNConv(6, 4)
        with torch.no_grad():
            ours.lin.weight.copy_(ref.lin.weight)
            ref.bias.normal_()
            ours.bias.copy_(ref.bias)
        adj = normalized_adjacency(ei, 15, weight)
        torch.testing.assert_close(ours(x, adj), ref(x, ei, weight), rtol=1e-5, atol=1e-5)


def test_symmetric_spmm_gradient():
    g = _random_graphs(n=10, t=1)
    adj = normalized_adjacency(torch.from_numpy(g.edge_index(0)), 10)
    dense = adj.to_dense()
    x = torch.randn(10, 3, requires_grad=True)
    y = torch.randn(10, 3)
    (symmetric_spmm(adj, x) * y).sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ y)
    torch.testing.assert_close(dense, dense.t())


def test_graph_gru_cell_matches_separate_gcns():
    torch.manual_seed(0)
    g = _random_graphs(n=9, t=1)
    adj = normalized_adjacency(torch.from_numpy(g.edge_index(0)), 9)
    a = adj.to_dense()
    cell = GraphGRUCell(5, 4)
    with torch.no_grad():
        cell.bias.normal_()
    x, h = torch.randn(9, 5), torch.randn(9, 4)
    wx, wh, whc = cell.lin_x.weight, cell.lin_h.weight, cell.lin_hc.weight
    b = cell.bias
    s = torch.sigmoid(a @ x @ wx[:4].t() + a @ h @ wh[:4].t() + b[:4])
    r = torch.sigmoid(a @ x @ wx[4:8].t() + a @ h @ wh[4:].t() + b[4:8])
    c = torch.tanh(a @ x @ wx[8:].t() + a @ (r * h) @ whc.t() + b[8:])
    torch.testing.assert_close(cell(x, h, adj), s * h + (1 - s) * c, rtol=1e-5, atol=1e-5)


def test_pairwise_softplus_sum_exact_and_gradient():
    torch.manual_seed(0)
    z = torch.randn(3, 37, 4, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.softplus(z @ z.transpose(1, 2)).sum(dim=(1, 2))
    torch.testing.assert_close(pairwise_softplus_sum(z), ref)
    assert torch.autograd.gradcheck(pairwise_softplus_sum, (z,))
    # many blocks
    big = torch.randn(2, 700, 3, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.softplus(big @ big.transpose(1, 2)).sum(dim=(1, 2))
    torch.testing.assert_close(pairwise_softplus_sum(big), ref)
    w = torch.randn(2, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((pairwise_softplus_sum(big) * w).sum(), big)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), big)
    torch.testing.assert_close(g_ours, g_ref)
    # large logits take the underflow-safe path
    large = (torch.randn(2, 300, 3, dtype=torch.float64) * 6).requires_grad_()
    ref = torch.nn.functional.softplus(large @ large.transpose(1, 2)).sum(dim=(1, 2))
    torch.testing.assert_close(pairwise_softplus_sum(large), ref)
    (g_ours,) = torch.autograd.grad((pairwise_softplus_sum(large) * w).sum(), large)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), large)
    torch.testing.assert_close(g_ours, g_ref)
    # float32, the dtype used in training: PyTorch path and compiled kernel
    z32 = torch.randn(4, 500, 8) * 0.5
    for compiled in (False, True):
        torch.testing.assert_close(
            pairwise_softplus_sum(z32, compiled),
            torch.nn.functional.softplus(z32 @ z32.transpose(1, 2)).sum(dim=(1, 2)),
        )


def test_pairwise_softplus_sum_grouped_logs():
    from spikeinterface_tavrnn.model.losses import _product_group, _sum_log

    torch.manual_seed(0)
    for shape in [(2, 37, 37), (3, 8, 6), (1, 1, 1), (2, 5, 9)]:
        s = torch.rand(shape, dtype=torch.float64) * 0.9 + 0.05
        ref = s.log().sum(dim=(1, 2))
        for group in (1, 2, 4, 16):
            torch.testing.assert_close(_sum_log(s.clone(), group), ref)
    # the group keeps products of sigmoid(-x), |x| <= max |z|^2, above the smallest normal float32
    for max_sq in (0.0, 3.8, 12.0, 40.0, 79.0):
        g = _product_group(max_sq, torch.float32)
        assert g >= 1 and torch.sigmoid(torch.tensor(-max_sq)) ** g >= torch.finfo(torch.float32).tiny
    # float32 at several logit scales (different group sizes), against float64 brute force
    for scale in (0.3, 1.0, 2.0):
        z = torch.randn(3, 301, 8) * scale
        ref = torch.nn.functional.softplus(z.double() @ z.double().transpose(1, 2)).sum(dim=(1, 2))
        torch.testing.assert_close(pairwise_softplus_sum(z, compiled=False).double(), ref, rtol=1e-5, atol=1e-3)


def _pairwise_brute_force(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zz = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    totals = torch.nn.functional.softplus(zz @ zz.transpose(1, 2)).sum(dim=(1, 2))
    totals.sum().backward()
    return totals.detach().numpy(), zz.grad.numpy()


@pytest.mark.parametrize(
    "n_windows, n_nodes, k, scale",
    [(3, 37, 8, 1.0), (2, 5, 3, 2.0), (2, 1, 8, 1.0), (1, 4, 2, 1.0), (4, 101, 7, 3.0), (2, 64, 16, 0.5),
     (1, 9, 1, 10.0), (2, 250, 8, 12.0)],
)  # fmt: skip
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_compiled_pairwise_kernel_matches_brute_force(n_windows, n_nodes, k, scale, n_threads):
    """The compiled dense term (value and gradient) against float64 autograd of the full N x N softplus, for node
    counts that are and are not multiples of the block (4) and of the padding (8), odd latent sizes, logits up to
    several hundred (exp(-|x|) near the float32 floor), and rows split between threads."""
    from spikeinterface_tavrnn.model.cpu_pairwise import pairwise_softplus_sum_grad

    rng = np.random.default_rng(n_nodes * 10 + k)
    z = (rng.standard_normal((n_windows, n_nodes, k)) * scale).astype(np.float32)
    totals, grad = pairwise_softplus_sum_grad(z, n_threads)
    ref_totals, ref_grad = _pairwise_brute_force(z)
    assert totals.shape == (n_windows,) and grad.shape == z.shape and grad.dtype == np.float32
    np.testing.assert_allclose(totals, ref_totals, rtol=2e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-4 * np.abs(ref_grad).max())


def test_compiled_pairwise_sum_in_window_ranges():
    """Windows handed over in ranges (the first on a pool thread while the caller goes on) give the result of one
    pass; ranges out of order are refused; a non-finite window gets NaN without touching the others."""
    from spikeinterface_tavrnn.model.cpu_pairwise import PairwiseSum

    rng = np.random.default_rng(5)
    z = (rng.standard_normal((7, 50, 8)) * 0.8).astype(np.float32)
    reference = _pairwise_brute_force(z)
    for n_threads in (1, 2, 3):
        for cut in (0, 1, 3, 7):
            z_run = z.copy()
            z_run[cut:] = np.nan  # not final yet: only the handed-over windows may be read before finish
            pairwise = PairwiseSum(z.shape, n_threads)
            pairwise.start(z_run, 0, cut)
            z_run[cut:] = z[cut:]
            totals, grad = pairwise.finish(z_run)
            np.testing.assert_allclose(totals, reference[0], rtol=2e-6)
            np.testing.assert_allclose(grad, reference[1], rtol=1e-4, atol=1e-4 * np.abs(reference[1]).max())
    pairwise = PairwiseSum(z.shape, 2)
    with pytest.raises(ValueError, match="in order"):
        pairwise.start(z, 2, 4)
    bad = z.copy()
    bad[4, 7, 1] = np.inf
    totals, grad = PairwiseSum(z.shape, 2).finish(bad)
    assert np.isnan(totals[4]) and np.isnan(grad[4]).all()
    np.testing.assert_allclose(np.delete(totals, 4), np.delete(reference[0], 4), rtol=2e-6)


def test_compiled_pairwise_row_splits_balance_the_work():
    from spikeinterface_tavrnn.model.cpu_pairwise import row_splits

    assert row_splits(900, 1) == [0, 900]
    assert row_splits(3, 4) == [0, 3]  # fewer blocks than threads: one part
    for n, parts in [(900, 2), (901, 3), (64, 4), (17, 2)]:
        bounds = row_splits(n, parts, row_overhead=0.0)
        assert bounds[0] == 0 and bounds[-1] == n and all(b % 4 == 0 for b in bounds[:-1])
        assert all(a < b for a, b in zip(bounds, bounds[1:]))
        pairs = [sum(n - i for i in range(a, b)) for a, b in zip(bounds, bounds[1:])]
        assert max(pairs) - min(pairs) <= 4 * n  # within one block of rows of an even share
    # the first part, whose rows are the longest, gets fewer of them
    first, second = np.diff(row_splits(900, 2))
    assert first < second


def test_compiled_pairwise_gradient_through_autograd_and_precomputed():
    """pairwise_softplus_sum with the compiled kernel: gradients under a weighted sum, and a precomputed result used
    only for the tensor (and in-place version) it was computed for."""
    from spikeinterface_tavrnn.model.losses import precompute_pairwise

    torch.manual_seed(0)
    z = (torch.randn(3, 45, 8) * 0.7).requires_grad_()
    w = torch.randn(3)
    ref = torch.nn.functional.softplus(z.double() @ z.double().transpose(1, 2)).sum(dim=(1, 2))
    (g_ref,) = torch.autograd.grad((ref * w.double()).sum(), z)
    (g_ours,) = torch.autograd.grad((pairwise_softplus_sum(z) * w).sum(), z)
    torch.testing.assert_close(g_ours, g_ref.float(), rtol=1e-4, atol=1e-4)
    pre = precompute_pairwise(z)
    assert pre.matches(z)
    torch.testing.assert_close(pairwise_softplus_sum(z, precomputed=pre).double(), ref, rtol=1e-6, atol=1e-3)
    # another tensor, or this one changed in place: the precomputed result is not used
    other = torch.randn(3, 45, 8)
    torch.testing.assert_close(
        pairwise_softplus_sum(other, precomputed=pre),
        torch.nn.functional.softplus(other @ other.transpose(1, 2)).sum(dim=(1, 2)),
    )
    y = z.detach().clone()
    pre_y = precompute_pairwise(y)
    y.mul_(2.0)
    assert not pre_y.matches(y)
    torch.testing.assert_close(
        pairwise_softplus_sum(y, precomputed=pre_y),
        torch.nn.functional.softplus(y @ y.transpose(1, 2)).sum(dim=(1, 2)),
        rtol=1e-5,
        atol=1e-2,
    )
    # float64 and empty inputs are not for the kernel
    assert precompute_pairwise(z.double()) is None and precompute_pairwise(torch.zeros(2, 0, 8)) is None


def test_dense_reconstruction_equals_published_weighted_bce():
    torch.manual_seed(0)
    g = _random_graphs(n=14, t=3)
    prep = prepare_sequence(g, "identity")
    z = torch.randn(3, 14, 4)
    z.requires_grad_()
    ours = reconstruction_loss(z, prep, "dense")
    for t in range(3):
        target = torch.from_numpy(g.to_dense(t) > 0).float() + torch.eye(14)
        n2, pos = 14 * 14, target.sum()
        pos_weight = (n2 - pos) / pos
        norm = n2 / (2 * (n2 - pos))
        logits = z[t] @ z[t].t()
        ref = norm * torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        torch.testing.assert_close(ours[t], ref, rtol=1e-5, atol=1e-6)
    # gradient of the whole loss against autograd on the dense formula
    (g_ours,) = torch.autograd.grad(ours.sum(), z)
    zz = z.detach().clone().requires_grad_()
    ref_total = 0.0
    for t in range(3):
        target = torch.from_numpy(g.to_dense(t) > 0).float() + torch.eye(14)
        pos_weight = (196 - target.sum()) / target.sum()
        norm = 196 / (2 * (196 - target.sum()))
        logits = zz[t] @ zz[t].t()
        ref_total = ref_total + norm * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=pos_weight
        )
    (g_ref,) = torch.autograd.grad(ref_total, zz)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_sampled_reconstruction_estimates_dense():
    torch.manual_seed(0)
    g = _random_graphs(n=40, t=2, p=0.1)
    prep = prepare_sequence(g, "identity")
    z = torch.randn(2, 40, 3) * 0.7
    dense = reconstruction_loss(z, prep, "dense")
    sampler = NegativeSampler(prep.edge_index_with_loops, 40, ratio=20.0, seed=1)
    draws = []
    for _ in range(20):
        neg = sampler.sample()
        # negatives are never positives (nor self-loops)
        coo = prep.pos_pattern.to_sparse_coo().indices()
        pos_keys = set((coo[0] * 1000 + coo[1]).tolist())
        assert not pos_keys & set((neg[0] * 1000 + neg[1]).tolist())
        draws.append(reconstruction_loss(z, prep, "sampled", neg))
    torch.testing.assert_close(torch.stack(draws).mean(0), dense, rtol=0.03, atol=0.0)


def test_negative_sampler_reproducible_uniform_and_isolated():
    g = _random_graphs(n=20, t=2)
    prep = prepare_sequence(g, "identity")
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state()
    a = NegativeSampler(prep.edge_index_with_loops, 20, seed=5).sample()
    b = NegativeSampler(prep.edge_index_with_loops, 20, seed=5).sample()
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.get_rng_state(), torch_state)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    # the counts follow the ratio, the draws cover the non-edges roughly uniformly
    sampler = NegativeSampler(prep.edge_index_with_loops[:1], 20, ratio=3.0, seed=0)
    n_pos = prep.edge_index_with_loops[0].shape[1]
    hits = np.zeros((20, 20))
    for _ in range(300):
        src, dst, win, counts = sampler.sample()
        assert counts.tolist() == [round(3.0 * n_pos)] and torch.all(win == 0)
        np.add.at(hits, (src.numpy(), dst.numpy()), 1)
    positive = np.zeros((20, 20), dtype=bool)
    positive[tuple(prep.edge_index_with_loops[0].numpy())] = True
    assert hits[positive].sum() == 0
    expected = hits.sum() / (~positive).sum()
    assert np.all(np.abs(hits[~positive] - expected) < 6 * np.sqrt(expected))
    # a complete graph has no negatives
    full = GraphSequence.from_adjacency([np.ones((4, 4))])
    assert NegativeSampler(prepare_sequence(full, "identity").edge_index_with_loops, 4).sample()[0].numel() == 0


def test_kl_normal_matches_torch_distributions():
    torch.manual_seed(0)
    mq, mp = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    sq, sp = torch.rand(2, 5, 3) + 0.2, torch.rand(2, 5, 3) + 0.2
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq), torch.distributions.Normal(mp, sp))
    for compiled in (False, True):
        torch.testing.assert_close(kl_normal(mq, sq, mp, sp, compiled), ref.sum(2).mean(1) / 5, rtol=1e-4, atol=1e-5)


def test_compiled_kl_matches_float64_autograd():
    """The compiled KL (CPU float32) and its four gradients, under a weighted sum over windows, against float64
    autograd of the PyTorch formula; scales from 1e-4 (where the 1e-6 floor matters) to 50."""
    rng = np.random.default_rng(3)
    shape = (4, 37, 5)
    mq, mp = (torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 3) for _ in range(2))
    log_scales = (rng.uniform(np.log(1e-4), np.log(50.0), shape) for _ in range(2))
    sq, sp = (torch.from_numpy(np.exp(x).astype(np.float32)) for x in log_scales)
    weights = torch.randn(4)
    inputs32 = [x.clone().requires_grad_() for x in (mq, sq, mp, sp)]
    inputs64 = [x.double().requires_grad_() for x in (mq, sq, mp, sp)]
    ours = kl_normal(*inputs32)
    ref = kl_normal(*inputs64, compiled=False)
    torch.testing.assert_close(ours.double(), ref, rtol=2e-5, atol=1e-6)
    (ours * weights).sum().backward()
    (ref * weights.double()).sum().backward()
    for a, b in zip(inputs32, inputs64):
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-5 * float(b.grad.abs().max()))
    # a NaN in any input makes its window NaN, as in the PyTorch formula
    for position in range(4):
        inputs = [x.clone() for x in (mq, sq, mp, sp)]
        inputs[position][2, 0, 0] = float("nan")
        kl = kl_normal(*inputs)
        assert torch.isnan(kl[2]) and torch.isfinite(kl[[0, 1, 3]]).all()


def _map_compiled(scalar, values: np.ndarray) -> np.ndarray:
    """``scalar`` (a compiled float32 -> float32 function) applied to every value, inside a compiled loop."""
    from numba import njit

    @njit
    def apply(v):
        out = np.empty_like(v)
        for i in range(v.size):
            out[i] = scalar(v[i])
        return out

    return apply(values)


def test_compiled_softplus_and_log_are_float32_accurate():
    from spikeinterface_tavrnn.model.cpu_elementwise import _log
    from spikeinterface_tavrnn.model.tavrnn import _softplus

    x = torch.cat([torch.linspace(-120.0, 120.0, 20_001), torch.randn(5_000)]).requires_grad_()
    ours = _softplus(x, compiled=True)
    ref = torch.nn.functional.softplus(x.double())
    torch.testing.assert_close(ours.double(), ref, rtol=4 * 1.2e-7, atol=1e-37)
    grad_out = torch.randn(x.shape)
    ours.backward(grad_out)
    torch.testing.assert_close(x.grad.double(), grad_out.double() * torch.sigmoid(x.double()), rtol=1e-6, atol=1e-37)
    nan = torch.tensor([1.0, float("nan"), -3.0], requires_grad=True)
    out = _softplus(nan, compiled=True)
    out.sum().backward()
    assert torch.isnan(out[1]) and torch.isnan(nan.grad[1]) and torch.isfinite(out[[0, 2]]).all()

    v = np.concatenate([np.geomspace(1.2e-38, 3e38, 200_001), np.linspace(0.5, 2.0, 10_001)]).astype(np.float32)
    reference = np.log(v.astype(np.float64))
    tolerance = 3 * np.finfo(np.float32).eps * np.maximum(np.abs(reference), 1.0)
    assert np.all(np.abs(_map_compiled(_log, v) - reference) <= tolerance)


# ---------------------------------------------------------------- whole model
@pytest.mark.parametrize(
    "kind, mode, history, layers",
    [
        ("identity", "gated", True, 1),
        ("adjacency", "gated", False, 2),
        ("graph", "published", True, 1),
        ("identity", "published", False, 2),
    ],
)
def test_every_parameter_gets_gradient_and_changes(kind, mode, history, layers):
    torch.manual_seed(0)
    g = _random_graphs(n=12, t=4, features=True)
    wired = mode == "published" and history
    prep = prepare_sequence(g, kind, wired_history_node=wired)
    module = TAVRNNModule(
        prep.n_features, kind, h_dim=8, z_dim=4, n_layers=layers, attention_mode=mode, history_node=history,
        wired_index=12 if wired else None,
    )
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    _loss(module, prep).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.count_nonzero(p.grad) > 0, name
    opt.step()
    for name, p in module.named_parameters():
        assert not torch.equal(p.detach(), before[name]), name
    # every GCN of the graph GRU is registered (the published code kept them in Python lists)
    names = {n for n, _ in module.named_parameters()}
    assert {"rnn.cells.0.lin_x.weight", "rnn.cells.0.lin_h.weight", "rnn.cells.0.lin_hc.weight"} <= names


def test_attention_false_is_vgrnn():
    g = _random_graphs(n=12, t=4)
    prep = prepare_sequence(g, "identity")
    torch.manual_seed(3)
    plain = TAVRNNModule(prep.n_features, "identity", h_dim=8, z_dim=4, attention=False)
    torch.manual_seed(3)
    vgrnn = VGRNN(prep.n_features, "identity", h_dim=8, z_dim=4)
    assert plain.state_dict().keys() == vgrnn.state_dict().keys()
    for (k, a), b in zip(plain.state_dict().items(), vgrnn.state_dict().values()):
        assert torch.equal(a, b), k
    out_a = plain(prep, sample=True, generator=torch.Generator().manual_seed(1))
    out_b = vgrnn(prep, sample=True, generator=torch.Generator().manual_seed(1))
    assert out_a.attention is None and out_b.attention is None
    assert torch.equal(out_a.z, out_b.z) and torch.equal(out_a.prior_mu, out_b.prior_mu)
    # with attention, the shared layers start from the same values for the same seed
    torch.manual_seed(3)
    attn = TAVRNNModule(prep.n_features, "identity", h_dim=8, z_dim=4, attention=True)
    for k, v in vgrnn.state_dict().items():
        assert torch.equal(attn.state_dict()[k], v), k


@pytest.mark.parametrize("mode", ["gated", "published"])
@pytest.mark.parametrize("window", [None, 1, 2, 3])
def test_attention_weights_rows_sum_to_one_inside_window(mode, window):
    torch.manual_seed(0)
    g = _random_graphs(n=10, t=6)
    wired = mode == "published"
    prep = prepare_sequence(g, "identity", wired_history_node=wired)
    module = TAVRNNModule(
        prep.n_features, "identity", h_dim=8, z_dim=4, attention_mode=mode, attention_window=window,
        wired_index=10 if wired else None,
    )
    att = module(prep, sample=False).attention
    assert att.shape == (6, 6)
    torch.testing.assert_close(att.sum(1), torch.ones(6))
    w = 6 if window is None else window
    for t in range(6):
        for s in range(6):
            if s > t or s <= t - w:
                assert att[t, s] == 0
            else:
                assert att[t, s] > 0
    assert att[0, 0] == 1


def test_attention_window_one_gated_mixes_only_current_state():
    # with window 1 the attended value is V H~_t (V = identity at initialisation): H_t = H~_t
    torch.manual_seed(0)
    att = TemporalAttention(4, n_layers=1, mode="gated", window=1)
    memory = att.initial_state(5, torch.device("cpu"))
    h = [torch.randn(5, 4)]
    out, weights = att(h, memory)
    torch.testing.assert_close(out[0], h[0])
    assert weights.tolist() == [1.0]


def test_identity_features_scale_without_dense_matrix():
    g = GraphSequence([np.array([[0, 1], [1, 0]]), np.zeros((2, 0), dtype=np.int64)], num_nodes=20000)
    prep = prepare_sequence(g, "identity")
    assert prep.features is None and prep.n_features == 20000
    module = TAVRNNModule(prep.n_features, "identity", h_dim=4, z_dim=2, attention=False)
    neg = NegativeSampler(prep.edge_index_with_loops, prep.n_total, seed=0).sample()
    _loss(module, prep, "sampled", neg).backward()


def test_edge_weights_change_normalisation_and_must_be_non_negative():
    g = _random_graphs(n=8, t=2, weighted=True)
    binary = prepare_sequence(g, "identity", use_edge_weight=False)
    weighted = prepare_sequence(g, "identity", use_edge_weight=True)
    assert not torch.allclose(binary.adjacency[0].to_dense(), weighted.adjacency[0].to_dense())
    bad = GraphSequence.from_adjacency(-g.to_dense())
    with pytest.raises(ValueError, match="negative edge weights"):
        prepare_sequence(bad, "identity", use_edge_weight=True)
    assert prepare_sequence(bad, "identity", use_edge_weight=False).n_windows == 2


def test_wired_history_node_is_connected_to_every_node():
    g = _random_graphs(n=7, t=2)
    prep = prepare_sequence(g, "adjacency", wired_history_node=True)
    assert prep.n_total == 8 and prep.n_features == 8
    a = prep.adjacency[0].to_dense()
    assert torch.all(a[7] > 0) and torch.all(a[:, 7] > 0)
    feats = prep.features[0].to_dense()
    assert torch.all(feats[7] == 1)


def test_empty_windows_and_feature_shape_errors():
    g = GraphSequence.from_adjacency([np.zeros((6, 6)), np.zeros((6, 6))])
    prep = prepare_sequence(g, "adjacency")
    module = TAVRNNModule(prep.n_features, "adjacency", h_dim=4, z_dim=2)
    assert torch.isfinite(_loss(module, prep))
    with pytest.raises(ValueError, match="node feature array"):
        prepare_sequence(g, "array", feature_array=np.ones((5, 3)))
    with pytest.raises(ValueError, match="node feature array"):
        prepare_sequence(g, "array", feature_array=np.ones((3, 6, 3)))
    with pytest.raises(ValueError, match="NaN"):
        prepare_sequence(g, "array", feature_array=np.full((6, 3), np.nan))


@pytest.mark.parametrize("mode", ["gated", "published"])
@pytest.mark.parametrize("sample", [True, False])
def test_fused_step_matches_reference_modules(mode, sample):
    g = _random_graphs(n=11, t=4, features=True)
    wired = mode == "published"
    prep = prepare_sequence(g, "graph", wired_history_node=wired)
    torch.manual_seed(0)
    module = TAVRNNModule(
        prep.n_features, "graph", h_dim=6, z_dim=3, attention_mode=mode, wired_index=11 if wired else None
    ).double()
    _assert_fused_matches_reference(module, _double(prep), sample=sample, extra=lambda out: out.sigma.sum())


@pytest.mark.parametrize("sample", [True, False])
def test_fused_step_gradcheck_and_unpadded_state_weight(sample):
    from spikeinterface_tavrnn.model.fused import FusedVGRNNStep

    torch.manual_seed(0)
    n, d, k = 7, 3, 2
    a = torch.rand(n, n, dtype=torch.float64)
    adj = ((a + a.t()) / n).to_sparse_csr()
    dd = lambda *s: torch.randn(*s, dtype=torch.float64, requires_grad=True)  # noqa: E731
    h, pe, pg = dd(n, d), dd(n, d), dd(n, 3 * d)
    eps = torch.randn(n, k, dtype=torch.float64) if sample else None
    w_h3 = dd(3 * d, d)
    rest = [dd(d), dd(2 * k, d), dd(2 * k), dd(d, k), dd(d), dd(3 * d, d), dd(3 * d), dd(d, d)]

    def step(w_h, *args):
        return FusedVGRNNStep.apply(adj, args[0], args[1], args[2], eps, w_h, *args[3:])

    # the (3d, d) state weight is the (4d, d) one without its zero candidate block
    w_h4 = torch.cat([w_h3, torch.zeros(d, d, dtype=torch.float64)])
    for out3, out4 in zip(step(w_h3, h, pe, pg, *rest), step(w_h4, h, pe, pg, *rest)):
        torch.testing.assert_close(out3, out4)
    assert torch.autograd.gradcheck(lambda *x: step(*x), (w_h3, h, pe, pg, *rest))
    assert torch.autograd.gradcheck(lambda *x: step(*x), (w_h4.detach().requires_grad_(), h, pe, pg, *rest))
    # [pe | pg] as one input
    p = torch.cat([pe, pg], dim=1).detach().requires_grad_()
    joint = FusedVGRNNStep.apply(adj, h, p, None, eps, w_h3, *rest)
    for out_joint, out in zip(joint, step(w_h3, h, pe, pg, *rest)):
        torch.testing.assert_close(out_joint, out)
    assert torch.autograd.gradcheck(
        lambda p, h, w_h: FusedVGRNNStep.apply(adj, h, p, None, eps, w_h, *rest), (p, h, w_h4.detach().requires_grad_())
    )


@pytest.mark.parametrize("window", [None, 2])
@pytest.mark.parametrize("history_node", [True, False])
def test_fused_gated_attention_matches_reference(window, history_node):
    g = _random_graphs(n=11, t=5, features=True)
    prep = prepare_sequence(g, "graph")
    torch.manual_seed(1)
    module = TAVRNNModule(
        prep.n_features, "graph", h_dim=6, z_dim=3, attention_window=window, history_node=history_node
    ).double()
    with torch.no_grad():  # move the attention away from its (identity-like) initialisation
        for p in module.attention.parameters():
            p.add_(0.5 * torch.randn_like(p))
    _assert_fused_matches_reference(
        module, _double(prep), extra=lambda out: (out.prior_mu**2).sum(), names=_OUTPUT_NAMES + ("attention",)
    )


@pytest.mark.parametrize("kind", ["identity", "adjacency"])
@pytest.mark.parametrize("attention", ["gated", "published-mean", None])
def test_fused_sequence_matches_reference_for_every_feature_kind(kind, attention):
    # identity features share one projection row across windows (its gradient is summed over windows);
    # "published-mean": published attention without a history node (summaries are means over nodes)
    prep = _double(prepare_sequence(_random_graphs(n=10, t=4, weighted=True), kind, use_edge_weight=True))
    torch.manual_seed(2)
    options = {"attention": attention is not None}
    if attention == "published-mean":
        options.update(attention_mode="published", history_node=False)
    module = TAVRNNModule(prep.n_features, kind, h_dim=5, z_dim=3, **options).double()
    if attention is not None:
        with torch.no_grad():  # away from the identity-like initialisation
            for p in module.attention.parameters():
                p.add_(0.3 * torch.randn_like(p))
    _assert_fused_matches_reference(module, prep)


def test_fused_sequence_reuses_buffers_only_between_finished_passes():
    prep = prepare_sequence(_random_graphs(n=12, t=5, features=True), "graph")
    torch.manual_seed(3)
    module = TAVRNNModule(prep.n_features, "graph", h_dim=6, z_dim=3)
    expected = []
    for seed in (0, 1):  # one pass at a time: the second reuses the first's buffers
        expected.append(_outputs_and_grads(module, prep, seed)[1])
    assert module.workspaces._free  # buffers were kept for reuse

    # two graphs alive at once must not share buffers: forward, forward, then both backward passes
    losses = []
    for seed in (0, 1):
        out = module(prep, sample=True, generator=torch.Generator().manual_seed(seed))
        rec = reconstruction_loss(out.z, prep, "dense")
        losses.append((rec + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)).sum() + (out.mu**3).sum())
    for loss, want in zip(losses[::-1], expected[::-1]):
        module.zero_grad()
        loss.backward()
        for name, p in module.named_parameters():
            torch.testing.assert_close(p.grad, want[name], msg=name)

    loss = _loss(module, prep)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward twice"):
        loss.backward()


def test_fit_releases_the_training_buffers():
    from spikeinterface_tavrnn import TAVRNN

    est = TAVRNN(h_dim=6, z_dim=3, epochs=2, seed=0, verbose=False).fit(_random_graphs(n=12, t=4))
    assert not est.module_.workspaces._free


def test_workspace_pool_keeps_few_sets():
    from spikeinterface_tavrnn.model.sequence import WorkspacePool

    pool = WorkspacePool(max_sets=2)
    made = []

    def make():
        made.append(torch.empty(1))
        return {"x": made[-1]}

    first = pool.take(("a",), make)
    assert pool.take(("a",), make) is not first  # taken sets are never handed out twice
    pool.give(("a",), first)
    assert pool.take(("a",), make) is first
    for key in ("a", "b", "c"):
        pool.give((key,), {"x": torch.empty(1)})
    assert list(pool._free) == [("b",), ("c",)]  # the oldest set was dropped
    pool.clear()
    assert not pool._free


# ---------------------------------------------------------------- compiled CPU kernels (float32)
def _kernel_calls(monkeypatch):
    """Count the runs of the compiled forward and backward kernels (through :func:`.omp_team.run`)."""
    from spikeinterface_tavrnn.model import cpu_kernels, omp_team

    calls = {"forward": 0, "backward": 0}
    original = omp_team.run

    def counted(entry, tb, n_threads):
        for name in calls:
            if entry is getattr(cpu_kernels, f"{name}_entry"):
                calls[name] += 1
        return original(entry, tb, n_threads)

    monkeypatch.setattr(omp_team, "run", counted)
    return calls


def _assert_kernels_match_torch(module, prep, calls, sample=True, state=None, names=_OUTPUT_NAMES):
    """The compiled kernels give the outputs and every parameter gradient of the PyTorch fused sequence (float32)."""
    results = {}
    for compiled in (False, True):
        module.cpu_kernels = compiled
        module.zero_grad()
        out = module(prep, sample=sample, generator=torch.Generator().manual_seed(0), state=state)
        loss = (
            reconstruction_loss(out.z, prep, "dense") + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)
        ).sum() + (out.mu**3).sum() + (out.prior_mu**2).sum()
        loss.backward()
        results[compiled] = (out, {n: p.grad.clone() for n, p in module.named_parameters()})
    assert calls["forward"] >= 1 and calls["backward"] >= 1  # the compiled path did run
    (ref_out, ref_grads), (out, grads) = results[False], results[True]
    for name in names:
        torch.testing.assert_close(getattr(out, name), getattr(ref_out, name), rtol=1e-5, atol=1e-6)
    # float32 rounding differs between the two orders of summation: tolerances scale with the gradients (the readout
    # bias's gradient is 0 up to rounding, softmax being shift-invariant)
    overall = max(float(g.abs().max()) for g in ref_grads.values())
    for name, ref in ref_grads.items():
        atol = 2e-5 * float(ref.abs().max()) + 1e-6 * overall
        torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize(
    "attention, window", [("readout", None), ("readout", 2), ("mean", None), ("mean", 2), (None, None)]
)
@pytest.mark.parametrize("sample", [True, False])
def test_cpu_kernels_match_torch_fused_sequence(attention, window, sample, monkeypatch):
    # "readout": gated attention queried by the history node; "mean": by the mean state
    calls = _kernel_calls(monkeypatch)
    prep = prepare_sequence(_random_graphs(n=13, t=6, features=True), "graph")
    torch.manual_seed(4)
    options = {"attention": attention is not None, "history_node": attention == "readout", "attention_window": window}
    module = TAVRNNModule(prep.n_features, "graph", h_dim=6, z_dim=3, **options)
    with torch.no_grad():  # away from the identity-like initialisation of the attention
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    names = _OUTPUT_NAMES + (("attention",) if attention else ())
    _assert_kernels_match_torch(module, prep, calls, sample=sample, names=names)


@pytest.mark.parametrize("kind", ["identity", "adjacency"])
def test_cpu_kernels_match_torch_for_other_features_and_edge_weights(kind, monkeypatch):
    calls = _kernel_calls(monkeypatch)
    prep = prepare_sequence(_random_graphs(n=10, t=4, weighted=True), kind, use_edge_weight=True)
    torch.manual_seed(5)
    module = TAVRNNModule(prep.n_features, kind, h_dim=5, z_dim=3)
    _assert_kernels_match_torch(module, prep, calls)


def test_cpu_kernels_continue_a_recurrent_state(monkeypatch):
    # the second chunk of a truncated back-propagation run: attention memory with past windows in it
    calls = _kernel_calls(monkeypatch)
    prep = prepare_sequence(_random_graphs(n=12, t=7, features=True), "graph")
    torch.manual_seed(6)
    module = TAVRNNModule(prep.n_features, "graph", h_dim=6, z_dim=3, attention_window=3)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    module.cpu_kernels = False
    with torch.no_grad():
        first = module(prep.chunk(0, 4), sample=False).state.detach()
    _assert_kernels_match_torch(module, prep.chunk(4, 7), calls, state=first, names=_OUTPUT_NAMES + ("attention",))


@pytest.mark.parametrize("attention", ["readout", "mean", None])
def test_cpu_kernels_on_a_team_match_torch_and_do_not_depend_on_its_size(attention, monkeypatch):
    # 300 nodes: ten row blocks, split 3/3/4 among three threads (the last block partial); sums over nodes are
    # formed per block, so every team size gives the same bits
    from spikeinterface_tavrnn.model import omp_team, sequence

    if omp_team._runtime() is None:
        pytest.skip("no OpenMP runtime of PyTorch here: the kernels run on the calling thread alone")
    calls = _kernel_calls(monkeypatch)
    sizes = record_team_sizes(monkeypatch)
    prep = prepare_sequence(_random_graphs(n=300, t=5, p=0.02, features=True), "graph")
    torch.manual_seed(7)
    options = {"attention": attention is not None, "history_node": attention == "readout", "attention_window": 3}
    module = TAVRNNModule(prep.n_features, "graph", h_dim=6, z_dim=3, **options)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    names = _OUTPUT_NAMES + (("attention",) if attention else ())
    results = {}
    for team in (1, 2, 3):
        monkeypatch.setattr(sequence, "kernel_team_size", lambda n_nodes, team=team: team)
        sizes.clear()
        module.zero_grad()
        out = module(prep, sample=True, generator=torch.Generator().manual_seed(0))
        (reconstruction_loss(out.z, prep, "dense").sum() + (out.mu**3).sum() + (out.prior_mu**2).sum()).backward()
        assert team in sizes  # the kernels ran on a team of this size
        results[team] = ({n: getattr(out, n) for n in names}, {n: p.grad.clone() for n, p in module.named_parameters()})
    for team in (2, 3):
        for name in names:
            assert torch.equal(results[team][0][name], results[1][0][name]), (team, name)
        for name, grad in results[team][1].items():
            assert torch.equal(grad, results[1][1][name]), (team, name)
    _assert_kernels_match_torch(module, prep, calls, names=names)  # (team of 3: the last size set)


def test_cpu_kernels_are_used_only_where_they_apply(monkeypatch):
    calls = _kernel_calls(monkeypatch)
    g = _random_graphs(n=10, t=3, features=True)
    published = TAVRNNModule(5, "graph", h_dim=4, z_dim=2, attention_mode="published", wired_index=10)
    _loss(published, prepare_sequence(g, "graph", wired_history_node=True)).backward()
    _loss(TAVRNNModule(5, "graph", h_dim=4, z_dim=2).double(), _double(prepare_sequence(g, "graph"))).backward()
    assert calls == {"forward": 0, "backward": 0}  # published attention and float64 run the PyTorch steps
    _loss(TAVRNNModule(5, "graph", h_dim=4, z_dim=2), prepare_sequence(g, "graph")).backward()
    assert calls == {"forward": 1, "backward": 1}


@pytest.mark.parametrize("n_threads", [1, 2])
def test_precomputed_pairwise_term_gives_the_pytorch_loss_and_gradients(n_threads):
    """The estimator's training loss with the dense term precomputed by the model (compiled kernel, its first half
    of the windows on a second thread while the recurrence runs the second half) equals the loss with the PyTorch
    dense term, in value and in every parameter gradient."""
    from spikeinterface_tavrnn.training import elbo_loss

    prep = prepare_sequence(_random_graphs(n=23, t=5, features=True), "graph")
    torch.manual_seed(8)
    module = TAVRNNModule(prep.n_features, "graph", h_dim=6, z_dim=3)
    results = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        for compiled in (False, True):
            module.zero_grad()
            out = module(prep, sample=True, generator=torch.Generator().manual_seed(0), precompute_pairwise=compiled)
            assert (out.pairwise is not None) == compiled
            loss = elbo_loss(out, prep, "dense", None, 0.5, compiled=compiled)
            loss.backward()
            results[compiled] = (loss.detach(), {n: p.grad.clone() for n, p in module.named_parameters()})
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(results[True][0], results[False][0], rtol=1e-5, atol=1e-5)
    for name, ref in results[False][1].items():
        torch.testing.assert_close(results[True][1][name], ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()) + 1e-7)
    # not precomputed where the recurrence did not run compiled (it runs when the loss needs it)
    module.cpu_kernels = False
    assert module(prep, precompute_pairwise=True).pairwise is None
    module.cpu_kernels = True
    assert module.double()(_double(prep), precompute_pairwise=True).pairwise is None


def test_compiled_pairwise_kernel_propagates_nan():
    # a diverged embedding must reach the estimator's finite-loss check
    z = torch.randn(2, 10, 4)
    z[1, 3, 2] = float("nan")
    totals = pairwise_softplus_sum(z)
    assert torch.isfinite(totals[0]) and torch.isnan(totals[1])


def test_cpu_kernel_exp_and_log1p_are_float32_accurate():
    from spikeinterface_tavrnn.model.cpu_kernels import _exp_into, _log1p

    x = np.concatenate([np.linspace(-87.0, 88.0, 200_001), [0.0, -1e-30, 1e-30]]).astype(np.float32)
    out = np.empty_like(x)
    _exp_into(x, out)
    reference = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - reference) / reference) < 4 * np.finfo(np.float32).eps

    u = np.concatenate([np.linspace(0.0, 1.0, 100_001), np.geomspace(1e-38, 1e-3, 1_000)]).astype(np.float32)
    got = _map_compiled(_log1p, u).astype(np.float64)
    reference = np.log1p(u.astype(np.float64))
    assert np.all(np.abs(got - reference) <= 4 * np.finfo(np.float32).eps * np.maximum(reference, 1e-45))


def test_cpu_kernels_keep_nan_like_torch(monkeypatch):
    # a diverged parameter must surface as NaN (the estimator then stops with a clear error), not be clamped away
    calls = _kernel_calls(monkeypatch)
    prep = prepare_sequence(_random_graphs(n=10, t=3, features=True), "graph")
    torch.manual_seed(7)
    module = TAVRNNModule(prep.n_features, "graph", h_dim=4, z_dim=2)
    with torch.no_grad():
        module.rnn.cells[0].bias[0] = float("nan")  # the update gate of one state dimension
    nan = {}
    for compiled in (False, True):
        module.cpu_kernels = compiled
        with torch.no_grad():
            out = module(prep, sample=False)
        nan[compiled] = (torch.isnan(out.mu), torch.isnan(out.prior_mu))
    assert calls["forward"] == 1
    assert nan[True][0].any()
    for ours, reference in zip(nan[True], nan[False]):
        assert torch.equal(ours, reference)
