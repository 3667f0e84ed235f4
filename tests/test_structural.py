"""Structural node features against networkx and NumPy definitions, and firing rates carried by the graphs."""

import networkx as nx
import numpy as np
import pytest

import spikeinterface_tavrnn as st
from spikeinterface_tavrnn.graphs import GraphSequence
from spikeinterface_tavrnn.structural import (
    GRAPH_FEATURES,
    PROFILE_FEATURES,
    RATE_FEATURES,
    structural_node_features,
)


def _random_graphs(n_nodes: int, n_windows: int, p: float, seed: int, **kwargs) -> GraphSequence:
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(n_windows):
        upper = np.triu(rng.random((n_nodes, n_nodes)) < p, 1) * rng.uniform(0.1, 1.0, (n_nodes, n_nodes))
        mats.append(upper + upper.T)
    return GraphSequence.from_adjacency(np.array(mats), **kwargs)


def test_graph_features_match_networkx():
    graphs = _random_graphs(40, 3, 0.15, seed=0)
    x, names = structural_node_features(graphs)
    assert names == GRAPH_FEATURES + PROFILE_FEATURES
    assert x.shape == (3, 40, len(names)) and x.dtype == np.float32
    col = {name: i for i, name in enumerate(names)}
    for t in range(3):
        adjacency = graphs.to_dense(t).astype(np.float64)
        g = nx.from_numpy_array(adjacency)
        degree = np.array([g.degree(i) for i in range(40)], dtype=float)
        strength = np.array([g.degree(i, weight="weight") for i in range(40)])
        clustering = nx.clustering(g)  # unweighted
        neighbour = nx.average_neighbor_degree(g)
        np.testing.assert_allclose(x[t, :, col["log_degree"]], np.log1p(degree), rtol=1e-6)
        np.testing.assert_allclose(x[t, :, col["relative_degree"]], degree / 39, rtol=1e-6)
        np.testing.assert_allclose(x[t, :, col["log_strength"]], np.log1p(strength), rtol=1e-5)
        np.testing.assert_allclose(
            x[t, :, col["mean_edge_weight"]], np.where(degree > 0, strength / np.maximum(degree, 1), 0), rtol=1e-5
        )
        np.testing.assert_allclose(x[t, :, col["clustering"]], [clustering[i] for i in range(40)], atol=1e-6)
        np.testing.assert_allclose(
            x[t, :, col["neighbour_degree"]], [neighbour[i] / 39 for i in range(40)], atol=1e-6
        )
        # profile of the weighted adjacency (no connectivity rows carried): off-diagonal row statistics
        off = adjacency[~np.eye(40, dtype=bool)].reshape(40, 39)
        np.testing.assert_allclose(x[t, :, col["profile_mean"]], off.mean(1), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(x[t, :, col["profile_std"]], off.std(1), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(x[t, :, col["profile_max"]], off.max(1), rtol=1e-6)
        np.testing.assert_allclose(x[t, :, col["profile_q90"]], np.quantile(off, 0.9, axis=1), rtol=1e-5, atol=1e-7)


def test_isolated_nodes_and_empty_windows_give_zeros_not_nan():
    a = np.zeros((5, 5))
    a[0, 1] = a[1, 0] = 1.0
    graphs = GraphSequence.from_adjacency([a, np.zeros((5, 5))])
    x, names = structural_node_features(graphs)
    assert np.all(np.isfinite(x))
    assert np.all(x[1] == 0)
    assert np.all(x[0, 2:] == 0)  # isolated nodes
    single = structural_node_features(GraphSequence.from_adjacency([np.zeros((1, 1))]))[0]
    assert single.shape == (1, 1, len(names)) and np.all(single == 0)


def test_profile_uses_connectivity_rows_and_rates_from_spikes():
    rng = np.random.default_rng(3)
    trains = [np.sort(rng.uniform(0, 60, n)) for n in (60, 120, 240, 30, 90, 150)]
    spikes = st.SpikeTrains.from_arrays(trains, t_start=0.0, t_stop=60.0, sampling_frequency=10000.0)
    windows = st.sliding_windows(0.0, 60.0, size_s=20.0, step_s=20.0)
    conn = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=20.0, verbose=False)
    graphs = conn.to_graphs(density=0.4, verbose=False)
    counts = np.array([[np.sum((tr >= a) & (tr < b)) for tr in trains] for a, b in zip(windows.starts, windows.stops)])
    np.testing.assert_allclose(graphs.firing_rates_hz, counts / 20.0)
    np.testing.assert_allclose(graphs[1:].firing_rates_hz, counts[1:] / 20.0)
    x, names = structural_node_features(graphs)
    assert names[-2:] == RATE_FEATURES
    col = {name: i for i, name in enumerate(names)}
    np.testing.assert_allclose(x[..., col["log_rate"]], np.log1p(counts / 20.0), rtol=1e-6)
    ranks = x[..., col["rate_percentile"]]
    for t in range(3):
        order = np.argsort(counts[t], kind="stable")
        assert np.all(np.diff(ranks[t][order]) >= 0) and ranks[t].min() == 0 and ranks[t].max() == 1
    # profile = unthresholded |STTC| off the diagonal, not the thresholded graph
    off = np.abs(conn.matrices[0])[~np.eye(6, dtype=bool)].reshape(6, 5)
    np.testing.assert_allclose(x[0, :, col["profile_mean"]], off.mean(1), rtol=1e-5, atol=1e-7)
    no_features = conn.to_graphs(density=0.4, node_features=None, verbose=False)
    assert not np.allclose(structural_node_features(no_features)[0][0, :, col["profile_mean"]], off.mean(1))


def test_bad_firing_rates_are_refused():
    a = np.ones((3, 3)) - np.eye(3)
    with pytest.raises(ValueError, match="firing_rates_hz must have shape"):
        GraphSequence.from_adjacency([a], firing_rates_hz=np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        GraphSequence.from_adjacency([a], firing_rates_hz=-np.ones((1, 3)))
