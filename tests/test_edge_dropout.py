"""Edge dropout while training: the thinned graphs against a dense brute-force normalisation, its rate, its seed,
and what the estimator does with it."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeinterface_tavrnn.edge_dropout import EdgeDropout
from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.estimator import PARITY_PRESET, TAVRNN
from spikeinterface_tavrnn.graphs import GraphSequence
from spikeinterface_tavrnn.model.graph_conv import normalized_adjacency

sys.path.insert(0, str(Path(__file__).parent))
from _dynamic_sbm import dynamic_sbm  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _random_graph(n_nodes: int, density: float, weighted: bool, seed: int):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n_nodes, n_nodes)) < density, 1)
    weights = np.where(upper, rng.uniform(0.1, 2.0, upper.shape) if weighted else 1.0, 0.0)
    dense = weights + weights.T
    i, j = np.nonzero(dense)
    edge_index = torch.from_numpy(np.stack([i, j]))
    values = torch.from_numpy(dense[i, j]).float() if weighted else None
    return dense, normalized_adjacency(edge_index, n_nodes, values)


def _brute_force_gcn(dense_kept: np.ndarray) -> np.ndarray:
    """D^-1/2 (A + I) D^-1/2 of a dense weighted adjacency, by its definition."""
    s = dense_kept + np.eye(len(dense_kept))
    d = s.sum(axis=1)
    return s / np.sqrt(np.outer(d, d))


@pytest.mark.parametrize("weighted", [False, True])
def test_thinned_graphs_are_symmetric_renormalised_subgraphs(weighted):
    windows = [_random_graph(40, density, weighted, seed=seed) for seed, density in ((1, 0.2), (2, 0.05), (3, 0.4))]
    dropout = EdgeDropout([adjacency for _, adjacency in windows], p=0.3, seed=0)
    for _ in range(5):
        for (dense, _), thinned in zip(windows, dropout.sample()):
            matrix = thinned.to_dense().double().numpy()
            np.testing.assert_array_equal(matrix, matrix.T)  # exactly: entry (i, j) is v_ij (s_i s_j)
            kept = (matrix > 0) & ~np.eye(40, dtype=bool)
            assert np.all(dense[kept] > 0), "only existing edges may be kept"
            assert 0 < kept.sum() < (dense > 0).sum(), "some edges are dropped, not all"
            # the same normalisation as the whole graph's (PyG's gcn_norm) applied to the kept edges
            np.testing.assert_allclose(matrix, _brute_force_gcn(np.where(kept, dense, 0.0)), rtol=1e-5, atol=1e-7)
    for dense, adjacency in windows:  # the originals are untouched
        np.testing.assert_allclose(adjacency.to_dense().double().numpy(), _brute_force_gcn(dense), rtol=1e-5, atol=1e-7)


def test_dropout_rate_and_seed():
    dense, adjacency = _random_graph(60, 0.3, False, seed=2)
    n_edges = int(np.triu(dense > 0, 1).sum())
    dropout = EdgeDropout([adjacency], p=0.2, seed=5)
    dropped = [n_edges - int(np.triu(s.to_dense().numpy() > 0, 1).sum()) for s in (dropout.sample()[0] for _ in range(50))]
    rate = np.sum(dropped) / (50 * n_edges)
    assert abs(rate - 0.2) < 4 * np.sqrt(0.2 * 0.8 / (50 * n_edges))  # binomial, 4 standard errors
    again = EdgeDropout([adjacency], p=0.2, seed=5).sample()[0].to_dense()
    other = EdgeDropout([adjacency], p=0.2, seed=6).sample()[0].to_dense()
    first = EdgeDropout([adjacency], p=0.2, seed=5).sample()[0].to_dense()
    assert torch.equal(again, first) and not torch.equal(first, other)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        EdgeDropout([adjacency], p=1.0, seed=0)


@pytest.fixture(scope="module")
def planted():
    return dynamic_sbm(n_nodes=30, n_windows=5, n_communities=3, change_windows=(3,), seed=0)[0]


def _fast(**kw):
    return TAVRNN(**{"z_dim": 4, "h_dim": 8, "epochs": 5, "seed": 0, "device": "cpu", **kw})


def test_estimator_drops_edges_by_default_only_while_training(planted):
    assert TAVRNN().get_params()["edge_dropout"] == 0.2 and PARITY_PRESET["edge_dropout"] == 0.0
    default = _fast().fit(planted)
    whole = _fast(edge_dropout=0.0).fit(planted)
    assert not np.array_equal(default.loss_history_, whole.loss_history_)
    # a fit is repeatable, and embedding is deterministic (the whole graph, no dropout draws)
    np.testing.assert_array_equal(_fast().fit(planted).transform(planted), default.transform(planted))
    np.testing.assert_array_equal(default.transform(planted), default.transform(planted))
    # with truncated back-propagation every chunk draws its own dropout and the fit still runs
    assert np.all(np.isfinite(_fast(bptt_windows=2).fit(planted).transform(planted)))
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(TavrnnInputError, match="edge_dropout"):
            _fast(edge_dropout=bad).fit(planted)


def test_edge_dropout_survives_save_and_load(tmp_path, planted):
    model = _fast(edge_dropout=0.35).fit(planted)
    model.save(tmp_path / "m.npz")
    loaded = TAVRNN.load(tmp_path / "m.npz")
    assert loaded.get_params()["edge_dropout"] == 0.35
    np.testing.assert_array_equal(loaded.transform(planted), model.transform(planted))


def test_empty_windows_are_kept_as_they_are():
    graphs = GraphSequence([np.zeros((2, 0), dtype=np.int64)] * 3, num_nodes=6)
    assert np.all(np.isfinite(_fast(epochs=2).fit(graphs).transform(graphs)))


def test_the_wired_history_node_keeps_its_edges(planted):
    dense, adjacency = _random_graph(20, 0.3, False, seed=4)
    hub = 19
    dense[hub, :hub] = dense[:hub, hub] = 1.0  # the published history node, wired to every node
    i, j = np.nonzero(dense)
    adjacency = normalized_adjacency(torch.from_numpy(np.stack([i, j])), 20)
    dropout = EdgeDropout([adjacency], p=0.5, seed=0, keep_node=hub)
    for _ in range(5):
        matrix = dropout.sample()[0].to_dense().numpy()
        assert np.all(matrix[hub, :hub] > 0) and np.all(matrix[:hub, hub] > 0)
        assert (matrix[:hub, :hub] > 0).sum() - hub < (dense[:hub, :hub] > 0).sum()  # other edges are dropped
    from spikeinterface_tavrnn.training import Trainer

    estimator = _fast(attention=True, attention_mode="published", edge_dropout=0.3)
    trainer = Trainer(planted, estimator._config(), torch.device("cpu"), 0)
    for thinned in trainer.dropouts[0][0].sample():  # the model appends the wired node last
        matrix = thinned.to_dense().numpy()
        assert matrix.shape == (31, 31) and np.all(matrix[30, :30] > 0) and np.all(matrix[:30, 30] > 0)
    assert np.all(np.isfinite(estimator.fit(planted).transform(planted)))
