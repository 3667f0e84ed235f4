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
)


sys.path.insert(0, str(Path(__file__).parent))
from _prepared import as_double as _double  # noqa: E402

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
    torch.testing.assert_close(cell(x, adj, h), s * h + (1 - s) * c, rtol=1e-5, atol=1e-5)


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
    # float32, the dtype used in training
    z32 = torch.randn(4, 500, 8) * 0.5
    torch.testing.assert_close(
        pairwise_softplus_sum(z32), torch.nn.functional.softplus(z32 @ z32.transpose(1, 2)).sum(dim=(1, 2))
    )


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


def _brute_logits(a, b, decoder, offset):
    """Link logits by their definition, pair by pair (rows of a with rows of b)."""
    if decoder == "inner_product":
        return (a * b).sum(-1)
    return offset - ((a - b) ** 2).sum(-1)


@pytest.mark.parametrize("decoder", ["inner_product", "distance"])
@pytest.mark.parametrize("recompute", [False, True])
def test_dense_reconstruction_over_blocks_equals_weighted_bce(monkeypatch, recompute, decoder):
    """Several node blocks (positives read from the blocks' logits), kept or recomputed in the backward pass, a
    wired history node (N' = N + 1, N' not a multiple of the block size): loss and gradients (latents and the distance
    decoder's offset) against the published weighted BCE over the dense target with the logits computed pair by
    pair, in float64."""
    from spikeinterface_tavrnn.model import losses

    monkeypatch.setattr(losses, "_BLOCK_ELEMENTS", 2 * 32 * 32)  # blocks of at most 32 nodes
    if recompute:
        monkeypatch.setattr(losses, "_KEPT_ELEMENTS", 1)
    torch.manual_seed(0)
    g = _random_graphs(n=74, t=2, p=0.08)
    prep = prepare_sequence(g, "identity", wired_history_node=True)
    n = prep.n_total
    z = (torch.randn(2, n, 3, dtype=torch.float64) * 0.8).requires_grad_()
    offset = torch.tensor(2.5, dtype=torch.float64, requires_grad=True) if decoder == "distance" else None
    inputs = (z,) if offset is None else (z, offset)
    ours = reconstruction_loss(z, prep, "dense", decoder=decoder, offset=offset)
    ref = []
    for t in range(2):
        target = torch.zeros(n, n, dtype=torch.float64)
        target[tuple(prep.edge_index_with_loops[t])] = 1.0
        assert torch.equal(target, target.t()) and bool((target.diagonal() == 1).all())
        pos = target.sum()
        logits = _brute_logits(z[t][:, None, :], z[t][None, :, :], decoder, offset)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=(n * n - pos) / pos)
        ref.append(n * n / (2 * (n * n - pos)) * bce)
    ref = torch.stack(ref)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    w = torch.tensor([0.7, 1.3], dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * w).sum(), inputs)
    g_ref = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # the sampled mode reads the same positives (i <= j, weighted) by gathering rows
    sampler = NegativeSampler(prep.edge_index_with_loops, n, ratio=1.0, seed=0)
    negatives = sampler.sample()
    sampled = reconstruction_loss(z, prep, "sampled", negatives, decoder=decoder, offset=offset)
    x = z.reshape(-1, 3)
    pos_logits = _brute_logits(x[prep.pos_src], x[prep.pos_dst], decoder, offset)
    pos_ref = torch.stack(
        [
            torch.nn.functional.softplus(-pos_logits)[(prep.pos_src // n) == t].sum() / prep.pos_counts[t]
            for t in range(2)
        ]
    )
    neg_src, neg_dst, neg_window, neg_counts = negatives
    neg = torch.nn.functional.softplus(_brute_logits(x[neg_src], x[neg_dst], decoder, offset))
    neg_ref = torch.stack([neg[neg_window == t].sum() / neg_counts[t] for t in range(2)])
    torch.testing.assert_close(sampled, 0.5 * (pos_ref + neg_ref), rtol=1e-10, atol=1e-12)


def test_decoders_logits_factors_and_gradcheck():
    """The distance decoder's factors give r - ||z_i - z_j||^2 as a bilinear form; its dense term passes gradcheck
    (latents and offset); a bad decoder or a missing offset is refused."""
    from spikeinterface_tavrnn.model.losses import decoder_factors, decoder_logits

    torch.manual_seed(1)
    z = torch.randn(2, 9, 4, dtype=torch.float64, requires_grad=True)
    offset = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    left, right = decoder_factors(z, "distance", offset)
    ref = offset - torch.cdist(z, z).pow(2)
    torch.testing.assert_close(left @ right.transpose(1, 2), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(decoder_logits(z[:, :, None], z[:, None, :], "distance", offset), ref)
    assert decoder_factors(z)[0] is z and decoder_factors(z)[1] is z
    assert torch.autograd.gradcheck(lambda a, r: pairwise_softplus_sum(a, "distance", r), (z, offset))
    with pytest.raises(ValueError, match="decoder must be one of"):
        decoder_logits(z, z, "cosine")
    with pytest.raises(ValueError, match="offset"):
        decoder_factors(z, "distance")


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
        pos_keys = set((prep.pos_src * 1000 + prep.pos_dst).tolist())
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
    torch.testing.assert_close(kl_normal(mq, sq, mp, sp), ref.sum(2).mean(1) / 5, rtol=1e-4, atol=1e-5)


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
    memory = att.initial_state()
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


# ---------------------------------------------------------------- gradients and the one implementation
def test_symmetric_adjacency_product_matches_dense_and_gradcheck():
    """The sparse product (PyG's EdgeIndex, whose backward reuses the matrix for an undirected graph) is the only
    piece whose gradient is not a composition of PyTorch's own derivatives: checked in float64."""
    g = _random_graphs(n=10, t=1, weighted=True)
    adj = normalized_adjacency(torch.from_numpy(g.edge_index(0)), 10, torch.from_numpy(g.edge_weight(0)))
    dense = adj.to_dense().double()
    torch.testing.assert_close(dense, dense.t())
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(adj @ x, dense @ x)
    assert torch.autograd.gradcheck(lambda v: adj @ v, (x,))


def test_unweighted_adjacency_product_and_gradient_match_dense():
    """A binary graph's normalised adjacency is kept as unit entries and a D^-1/2 scaling (PyG's unweighted product,
    float32): its product and its gradient equal those of the dense gcn_norm matrix."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    g = _random_graphs(n=12, t=1)
    ei = torch.from_numpy(g.edge_index(0))
    adj = normalized_adjacency(ei, 12)
    assert adj.values is None
    idx, w = gcn_norm(ei, None, 12)
    dense = torch.zeros(12, 12).index_put_((idx[0], idx[1]), w, accumulate=True)
    torch.testing.assert_close(adj.to_dense(), dense)
    x = torch.randn(12, 5, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    weights = torch.randn(12, 5)
    out, ref = adj @ x, dense @ x_ref
    torch.testing.assert_close(out, ref)
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_weighted_history_gradcheck():
    """The history sum over segments of consecutive steps (single steps and stacked segments) equals the weighted
    sum of the stacked history, and its gradient passes gradcheck."""
    from spikeinterface_tavrnn.model.attention import weighted_history

    w = torch.softmax(torch.randn(6, dtype=torch.float64), 0).requires_grad_()
    segments = [torch.randn(m, 5, 3, dtype=torch.float64, requires_grad=True) for m in (3, 1, 2)]
    ref = torch.tensordot(w, torch.cat(segments), dims=1)
    torch.testing.assert_close(weighted_history(w, segments), ref)
    assert torch.autograd.gradcheck(lambda w, *h: weighted_history(w, list(h)), (w, *segments))


@pytest.mark.parametrize("mode, window", [("gated", None), ("gated", 20), ("published", None), ("gated", 5)])
def test_attention_over_segmented_history_matches_the_plain_sum(monkeypatch, mode, window):
    """Past 16 windows the history is stacked into segments; outputs, attention weights and input gradients equal
    those of the same attention summing the past states one by one (segments never formed)."""
    from spikeinterface_tavrnn.model import attention as attention_module

    n_steps = 2 * attention_module.SEGMENT_WINDOWS + 5
    inputs = [[torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)] for _ in range(n_steps)]

    def run(segment_windows):
        monkeypatch.setattr(attention_module, "SEGMENT_WINDOWS", segment_windows)
        torch.manual_seed(0)
        att = TemporalAttention(4, n_layers=2, mode=mode, window=window, history_node=False)
        if mode == "gated":
            with torch.no_grad():
                for gate in att.gates:
                    gate.bias.fill_(0.0)  # mix in a visible share of the history
        memory, outs, weights = att.initial_state(), [], []
        for h_tilde in inputs:
            out, w = att(h_tilde, memory)
            outs.extend(out)
            weights.append(w)
        grads = torch.autograd.grad(sum((o * o).sum() for o in outs), [x for step in inputs for x in step])
        return outs, weights, grads, memory

    segment_windows = attention_module.SEGMENT_WINDOWS
    outs, weights, grads, memory = run(segment_windows)
    ref_outs, ref_weights, ref_grads, _ = run(10**9)
    if window is None:
        assert any(segment.shape[0] == segment_windows for segment in memory["segments"][0])
    assert sum(segment.shape[0] for segment in memory["segments"][0]) == len(memory["summaries"])
    for ours, ref in zip(outs + weights + list(grads), ref_outs + ref_weights + list(ref_grads)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode, layers", [("gated", 1), ("published", 1), ("gated", 2)])
def test_whole_model_loss_gradcheck_in_float64(mode, layers):
    """The ELBO of the whole model, differentiated by autograd, against finite differences (float64)."""
    torch.manual_seed(0)
    g = _random_graphs(n=6, t=3, features=True)
    wired = mode == "published"
    prep = _double(prepare_sequence(g, "graph", wired_history_node=wired))
    module = TAVRNNModule(
        prep.n_features, "graph", h_dim=3, z_dim=2, n_layers=layers, attention_mode=mode,
        wired_index=6 if wired else None,
    ).double()
    params = [p for p in module.parameters()]

    def loss(*values):
        for p, v in zip(params, values):
            p.data = v.detach()
        funcs = dict(zip([id(p) for p in params], values))
        out = torch.func.functional_call(
            module, {n: funcs[id(p)] for n, p in module.named_parameters()}, (prep,),
            {"sample": True, "generator": torch.Generator().manual_seed(0)},
        )
        rec = reconstruction_loss(out.z, prep, "dense")
        return (rec + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)).sum()

    inputs = tuple(p.detach().clone().requires_grad_() for p in params)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_truncated_state_continues_the_sequence():
    """Running windows [0, 3) then [3, 6) from the carried state gives the outputs of one pass over [0, 6)."""
    torch.manual_seed(0)
    g = _random_graphs(n=9, t=6)
    prep = prepare_sequence(g, "identity")
    module = TAVRNNModule(prep.n_features, "identity", h_dim=6, z_dim=3, attention_window=4)
    whole = module(prep, sample=False)
    first = module(prep.chunk(0, 3), sample=False)
    second = module(prep.chunk(3, 6), sample=False, state=first.state.detach())
    torch.testing.assert_close(torch.cat([first.mu, second.mu]), whole.mu)
    torch.testing.assert_close(torch.cat([first.prior_mu, second.prior_mu]), whole.prior_mu)
    torch.testing.assert_close(second.attention[:, -3:], whole.attention[3:, 3:])


def test_model_package_is_plain_pytorch():
    """One implementation: no compiled kernels, no hand-written gradients, and a small code base."""
    import spikeinterface_tavrnn.model as model

    root = Path(model.__file__).parent
    total = 0
    for path in root.glob("*.py"):
        text = path.read_text()
        total += text.count("\n")
        for banned in ("numba", "llvmlite", "ctypes", "autograd.Function"):
            assert banned not in text, (path.name, banned)
    assert total <= 1500
