import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from spikeinterface_tavrnn import baselines
from spikeinterface_tavrnn.baselines import METHODS, align_embeddings, embed, graph_stats, spectral_embedding_window
from spikeinterface_tavrnn.evaluation import classify_windows
from spikeinterface_tavrnn.graphs import GraphSequence


pytestmark = pytest.mark.usefixtures("single_thread")


def _sbm_graphs(n_windows=4, n_nodes=40, p_in=0.5, p_out=0.05, seed=0):
    rng = np.random.default_rng(seed)
    blocks = np.repeat([0, 1], n_nodes // 2)
    p = np.where(blocks[:, None] == blocks[None], p_in, p_out)
    mats = []
    for _ in range(n_windows):
        a = np.triu(rng.random((n_nodes, n_nodes)) < p, 1).astype(np.float32)
        mats.append(a + a.T)
    return GraphSequence.from_adjacency(mats, node_labels=blocks), blocks


def _ari(z, blocks):
    return adjusted_rand_score(blocks, KMeans(2, n_init=10, random_state=0).fit_predict(z))


# ------------------------------------------------------------------ spectral
@pytest.mark.parametrize("dim", [2, 8])
def test_spectral_recovers_planted_sbm_blocks(dim):
    graphs, blocks = _sbm_graphs()
    z = embed(graphs, "spectral", dim=dim)
    assert z.shape == (4, 40, dim) and z.dtype == np.float32
    for t in range(len(graphs)):
        assert _ari(z[t], blocks) == 1.0


def test_spectral_windows_are_aligned_across_sign_flips():
    graphs, blocks = _sbm_graphs(n_windows=1)
    g = GraphSequence.from_adjacency([graphs.to_dense(0)] * 3)
    unaligned = embed(g, "spectral", dim=3, align=False)
    aligned = embed(g, "spectral", dim=3)
    np.testing.assert_allclose(aligned[1], aligned[0], atol=1e-5)
    np.testing.assert_allclose(aligned[2], aligned[0], atol=1e-5)
    np.testing.assert_allclose(np.abs(unaligned[1]), np.abs(unaligned[0]), atol=1e-5)  # same up to signs


def test_spectral_sparse_solver_matches_dense(monkeypatch):
    graphs, blocks = _sbm_graphs(n_windows=1, n_nodes=60)
    a = graphs.to_scipy(0)
    dense = spectral_embedding_window(a, 3)
    monkeypatch.setattr(baselines, "_DENSE_EIG_MAX_NODES", 10)
    sparse = spectral_embedding_window(a, 3, seed=1)
    # Same subspace (eigenvectors up to sign): compare after Procrustes alignment.
    aligned = align_embeddings(np.stack([dense, sparse]))
    np.testing.assert_allclose(aligned[1], dense, atol=1e-6)
    assert _ari(sparse, blocks) == 1.0


def test_spectral_isolated_nodes_empty_window_and_signed_weights():
    a = np.zeros((5, 5))
    a[0, 1] = a[1, 0] = -0.5  # a negative weight enters as |w|
    a[1, 2] = a[2, 1] = 1.0
    z = spectral_embedding_window(a, 2, scaling="none")
    assert np.all(z[3:] == 0.0)  # isolated nodes
    assert np.all(np.isfinite(z)) and np.any(z[:3] != 0)
    assert np.all(spectral_embedding_window(np.zeros((4, 4)), 2) == 0.0)
    with pytest.raises(ValueError, match="scaling"):
        spectral_embedding_window(a, 2, scaling="heat")


def test_align_embeddings_undoes_rotations():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 4))
    rotations = [np.linalg.qr(rng.normal(size=(4, 4)))[0] for _ in range(3)]
    seq = np.stack([z] + [z @ q for q in rotations])
    aligned = align_embeddings(seq)
    for t in range(4):
        np.testing.assert_allclose(aligned[t], z, atol=1e-10)
    with pytest.raises(ValueError):
        align_embeddings(z)


# ------------------------------------------------------------------ raw connectivity and graph statistics
def test_connectivity_pca_window_and_node_levels():
    rng = np.random.default_rng(0)
    n = 12
    labels = np.tile([0, 1], 10)
    mats = []
    for lab in labels:
        p = 0.6 if lab else 0.2  # the label changes the connectivity pattern
        a = np.triu(rng.random((n, n)) < p, 1).astype(float) * rng.random((n, n))
        mats.append(a + a.T)
    graphs = GraphSequence.from_adjacency(mats, node_features=np.stack(mats))
    x = embed(graphs, "connectivity_pca", dim=4)
    assert x.shape == (20, 4)
    assert classify_windows(x, labels, n_splits=4, n_permutations=0).accuracy > 0.9
    assert embed(graphs, "connectivity_pca", dim=50).shape == (20, 20)  # capped by the number of windows
    assert embed(graphs, "connectivity_pca", dim=3, level="node").shape == (20, n, 3)
    np.testing.assert_allclose(embed(graphs, "connectivity_pca", source="features"), embed(graphs, "connectivity_pca"))
    with pytest.raises(ValueError, match="node_features"):
        embed(GraphSequence.from_adjacency(mats), "connectivity_pca", source="features")
    with pytest.raises(ValueError, match="level"):
        embed(graphs, "connectivity_pca", level="edge")


def test_graph_stats_known_graph():
    a = np.zeros((5, 5))
    for i, j in [(0, 1), (1, 2), (0, 2), (2, 3)]:  # a triangle with a tail, node 4 isolated
        a[i, j] = a[j, i] = 2.0
    stats = graph_stats(GraphSequence.from_adjacency([a, np.zeros((5, 5))]))
    deg = np.array([2, 2, 3, 1, 0])
    np.testing.assert_allclose(stats[0], [4 / 10, deg.mean(), deg.std(), 2.0, 0.0, 3 * 1 / 5])
    np.testing.assert_allclose(stats[1], 0.0)
    assert embed(GraphSequence.from_adjacency([a]), "graph_stats").shape == (1, 6)


# ------------------------------------------------------------------ VGAE
def test_vgae_shape_seed_and_blocks():
    graphs, blocks = _sbm_graphs(n_windows=3, n_nodes=30, p_in=0.6, p_out=0.02)
    z = embed(graphs, "vgae", seed=0, dim=4, epochs=60, num_threads=1)
    assert z.shape == (3, 30, 4) and z.dtype == np.float32 and np.all(np.isfinite(z))
    assert np.mean([_ari(z[t], blocks) for t in range(3)]) > 0.8
    short = embed(graphs[:1], "vgae", seed=0, dim=4, epochs=5)
    np.testing.assert_array_equal(short, embed(graphs[:1], "vgae", seed=0, dim=4, epochs=5))
    assert not np.allclose(short, embed(graphs[:1], "vgae", seed=1, dim=4, epochs=5))


def test_vgae_empty_window_features_and_rng_untouched():
    import torch

    graphs, _ = _sbm_graphs(n_windows=1, n_nodes=10)
    mats = [graphs.to_dense(0), np.zeros((10, 10), np.float32)]
    feats = np.random.default_rng(0).random((2, 10, 3)).astype(np.float32)
    g = GraphSequence.from_adjacency(mats, node_features=feats)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    z = embed(g, "vgae", dim=2, epochs=5, weighted=True, align=False, num_threads=1)
    assert torch.rand(1) == expected  # the caller's torch random stream is not consumed
    assert z.shape == (2, 10, 2) and np.all(z[1] == 0.0)


def test_unknown_method():
    graphs, _ = _sbm_graphs(n_windows=1, n_nodes=6)
    with pytest.raises(ValueError, match="Unknown method"):
        embed(graphs, "node2vec")
    with pytest.raises(TypeError):
        embed(graphs, "graph_stats", weighted=True)
    assert set(METHODS) >= {"connectivity_pca", "spectral", "vgae", "vgrnn", "tavrnn", "tavrnn_window"}


# ------------------------------------------------------------------ TAVRNN family (needs estimator.py)
@pytest.mark.parametrize("method", ["vgrnn", "tavrnn", "tavrnn_window"])
def test_tavrnn_family_through_embed(method):
    pytest.importorskip("spikeinterface_tavrnn.estimator", exc_type=ImportError)
    graphs, _ = _sbm_graphs(n_windows=4, n_nodes=12)
    kwargs = {"epochs": 3, "h_dim": 8}
    if method == "tavrnn_window":
        kwargs["attention_window"] = 2
    z = embed(graphs, method, seed=0, dim=3, **kwargs)
    assert z.shape == (4, 12, 3) and np.all(np.isfinite(z))


def test_tavrnn_window_needs_a_finite_window():
    pytest.importorskip("spikeinterface_tavrnn.estimator", exc_type=ImportError)
    graphs, _ = _sbm_graphs(n_windows=2, n_nodes=6)
    with pytest.raises(ValueError, match="finite"):
        embed(graphs, "tavrnn_window", attention_window=None, epochs=1)
