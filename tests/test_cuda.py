"""The model and the estimator on a CUDA device, checked against the CPU.

Skipped where torch sees no CUDA device (CI has none). On a GPU machine: ``python -m pytest -q tests/test_cuda.py``.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from spikeinterface_tavrnn.estimator import TAVRNN
from spikeinterface_tavrnn.model import (
    NegativeSampler,
    TAVRNNModule,
    kl_normal,
    pairwise_softplus_sum,
    prepare_sequence,
    reconstruction_loss,
)

sys.path.insert(0, str(Path(__file__).parent))
from _dynamic_sbm import dynamic_sbm  # noqa: E402
from _prepared import as_double, moved  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _graphs(n=14, t=5, seed=0, p=0.3):
    from spikeinterface_tavrnn.graphs import GraphSequence

    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(t):
        upper = np.triu(rng.random((n, n)) < p, 1) * rng.random((n, n))
        mats.append((upper + upper.T).astype(np.float32))
    return GraphSequence.from_adjacency(mats, node_features=rng.random((t, n, 5)).astype(np.float32))


def _outputs_and_grads(module, prep, device):
    """Posterior means (no sampling, so CPU and CUDA see the same numbers), the dense loss and every gradient."""
    module.zero_grad()
    out = module(prep, sample=False, generator=torch.Generator(device=device).manual_seed(0))
    loss = (
        reconstruction_loss(out.z, prep, "dense") + kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma)
    ).sum() + (out.mu**3).sum()
    loss.backward()
    outputs = {name: getattr(out, name).detach().cpu() for name in ("mu", "sigma", "prior_mu", "prior_sigma")}
    return outputs, {n: p.grad.detach().cpu().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("attention", ["gated", "published", None])
def test_module_on_cuda_matches_cpu(attention):
    graphs = _graphs()
    wired = attention == "published"
    options = {"attention": attention is not None}
    if attention is not None:
        options["attention_mode"] = attention
    torch.manual_seed(0)
    module = TAVRNNModule(
        5, "graph", h_dim=6, z_dim=3, wired_index=graphs.num_nodes if wired else None, **options
    ).double()
    with torch.no_grad():  # away from the identity-like initialisation of the attention
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))
    # prepared once, so both devices see the same float64 inputs (float32 normalisation rounds differently on each)
    prep = as_double(prepare_sequence(graphs, "graph", wired_history_node=wired))
    results = {}
    for device in ("cpu", "cuda"):
        module.to(device)
        results[device] = _outputs_and_grads(module, moved(prep, device), device)
    for name, value in results["cpu"][0].items():
        torch.testing.assert_close(results["cuda"][0][name], value, msg=lambda m, name=name: f"{name}: {m}")
    for name, grad in results["cpu"][1].items():
        torch.testing.assert_close(results["cuda"][1][name], grad, msg=lambda m, name=name: f"{name}: {m}")


def test_pairwise_softplus_sum_on_cuda_matches_brute_force():
    torch.manual_seed(0)
    for scale in (1.0, 6.0):  # 6: logits far past the float range of sigmoid(-x)
        z = (torch.randn(3, 300, 4, dtype=torch.float64, device=CUDA) * scale).requires_grad_()
        ref_z = z.detach().clone().requires_grad_()
        ref = torch.nn.functional.softplus(ref_z @ ref_z.transpose(1, 2)).sum(dim=(1, 2))
        weights = torch.randn(3, dtype=torch.float64, device=CUDA)
        ours = pairwise_softplus_sum(z)
        torch.testing.assert_close(ours, ref)
        (ours * weights).sum().backward()
        (ref * weights).sum().backward()
        torch.testing.assert_close(z.grad, ref_z.grad)


def test_sampled_reconstruction_on_cuda_estimates_dense():
    prep = prepare_sequence(_graphs(n=40, t=2, p=0.1), "identity", device=CUDA)
    z = torch.randn(2, 40, 3, device=CUDA) * 0.7
    dense = reconstruction_loss(z, prep, "dense")
    sampler = NegativeSampler(prep.edge_index_with_loops, 40, ratio=20.0, seed=1)
    draws = []
    for _ in range(20):
        negatives = sampler.sample()
        assert all(t.device.type == "cuda" for t in negatives)
        draws.append(reconstruction_loss(z, prep, "sampled", negatives))
    torch.testing.assert_close(torch.stack(draws).mean(dim=0), dense, rtol=0.03, atol=0.0)


def _ari_per_window(emb, labels, k):
    return [
        adjusted_rand_score(labels[t], KMeans(k, n_init=10, random_state=0).fit_predict(emb[t]))
        for t in range(len(labels))
    ]


def test_fit_on_cuda_recovers_planted_communities_and_loads_on_cpu(tmp_path):
    graphs, labels = dynamic_sbm(
        n_nodes=64, n_windows=8, n_communities=4, change_windows=(4,), p_in=0.6, p_out=0.005, seed=0
    )
    model = TAVRNN(epochs=300, early_stopping=None, seed=0, device="cuda").fit(graphs)
    assert model.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.module_.parameters())
    embeddings = model.transform(graphs)
    assert isinstance(embeddings, np.ndarray) and embeddings.shape == (8, 64, 8)
    aris = _ari_per_window(embeddings, labels, 4)
    print("CUDA planted ARI per window", np.round(aris, 3))
    assert min(aris) >= 0.9, aris
    np.testing.assert_allclose(model.attention_weights_.sum(axis=1), 1.0, atol=1e-5)

    path = tmp_path / "model"
    model.save(path)
    on_cpu = TAVRNN.load(path, device="cpu")
    assert all(p.device.type == "cpu" for p in on_cpu.module_.parameters())
    np.testing.assert_allclose(on_cpu.transform(graphs), embeddings, rtol=1e-4, atol=1e-4)
    again = TAVRNN.load(path)  # device "auto": back on the GPU
    assert again.device_.type == "cuda"
    np.testing.assert_allclose(again.transform(graphs), embeddings, rtol=1e-6, atol=1e-6)


def test_cuda_fits_with_one_seed_agree():
    graphs = _graphs(n=30, t=5)
    a = TAVRNN(z_dim=4, h_dim=8, epochs=20, seed=3, device="cuda").fit(graphs)
    b = TAVRNN(z_dim=4, h_dim=8, epochs=20, seed=3, device="cuda").fit(graphs)
    # CUDA sparse products may add in any order: equal to rounding, not necessarily bit for bit
    np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=1e-4)
    np.testing.assert_allclose(a.transform(graphs), b.transform(graphs), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "options",
    [
        {"reconstruction": "sampled"},
        {"preset": "parity"},
        {"attention": False},
        {"attention_window": 2, "node_features": "adjacency", "use_edge_weight": True},
        {"n_layers": 2},
        {"bptt_windows": 2},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_estimator_options_on_cuda(options):
    graphs = _graphs(n=20, t=5)
    params = {"z_dim": 4, "h_dim": 8, "epochs": 5, "seed": 0, "device": "cuda", **options}
    model = TAVRNN(**params).fit(graphs)
    emb = model.transform(graphs)
    assert emb.shape[:2] == (5, 20) and np.all(np.isfinite(emb))  # the parity preset sets its own z_dim
    assert np.all(np.isfinite(model.loss_history_))


def test_many_recordings_and_score_links_on_cuda():
    recordings = [_graphs(n=12 + 4 * i, t=4 + i, seed=i) for i in range(3)]
    model = TAVRNN(z_dim=4, h_dim=8, epochs=5, seed=0, device="cuda", node_features="structural").fit(recordings)
    for graphs in recordings:
        assert np.all(np.isfinite(model.transform(graphs)))
    graphs, _ = dynamic_sbm(n_nodes=40, n_windows=6, n_communities=2, change_windows=(3,), seed=1)
    scores = TAVRNN(z_dim=4, h_dim=8, epochs=30, seed=0, device="cuda").score_links(graphs, n_prediction_windows=1)
    assert 0.0 <= scores["detection_auc"] <= 1.0 and 0.0 <= scores["prediction_auc"] <= 1.0


def test_analyzer_extension_on_cuda(tmp_path):
    import spikeinterface.core as sc

    from spikeinterface_tavrnn.analyzer import create_analyzer_from_spikes, load_sorting_analyzer

    sorting = sc.generate_sorting(num_units=8, durations=[60.0], firing_rates=8.0, seed=0)
    analyzer = create_analyzer_from_spikes(sorting, format="binary_folder", folder=tmp_path / "analyzer")
    analyzer.compute("functional_connectivity", method="sttc", window_s=20.0, step_s=10.0, dt_ms=5.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", z_dim=4, h_dim=8, epochs=3, seed=0, device="cuda")
    embeddings = analyzer.get_extension("tavrnn_embeddings").get_data()
    assert embeddings.shape[1:] == (8, 4) and np.all(np.isfinite(embeddings))
    reloaded = load_sorting_analyzer(analyzer.folder)
    np.testing.assert_array_equal(reloaded.get_extension("tavrnn_embeddings").get_data(), embeddings)
