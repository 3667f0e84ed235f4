"""ConnectivitySequence -> GraphSequence: threshold, density, surrogate significance; registry; storage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeinterface_tavrnn.connectivity import (
    ConnectivitySequence,
    available_methods,
    compute_connectivity,
    density_mask,
    jitter_spikes,
    register_estimator,
    threshold_mask,
)
from spikeinterface_tavrnn.graphs import GraphSequence
from spikeinterface_tavrnn.spiketrains import SpikeTrains
from spikeinterface_tavrnn.windows import Windows, sliding_windows


def _sequence(matrices) -> ConnectivitySequence:
    matrices = np.asarray(matrices, dtype=np.float32)
    t = matrices.shape[0]
    return ConnectivitySequence(matrices, Windows(np.arange(t), np.arange(t) + 1.0), np.arange(matrices.shape[1]),
                                "test", {"x": 1})  # fmt: skip


M = np.array(
    [[1.0, 0.7, -0.8, 0.1],
     [0.7, 1.0, 0.6, 0.0],
     [-0.8, 0.6, 1.0, 0.3],
     [0.1, 0.0, 0.3, 1.0]]
)  # fmt: skip


def test_threshold_absolute_and_signed():
    graphs = _sequence([M]).to_graphs(threshold=0.6, verbose=False)
    dense = graphs.to_dense(0)
    expected = (np.abs(M) >= 0.6) & ~np.eye(4, dtype=bool)
    np.testing.assert_array_equal(dense != 0, expected)
    np.testing.assert_allclose(dense[expected], np.abs(M)[expected])  # weights are |value|
    signed = _sequence([M]).to_graphs(threshold=0.6, absolute=False, verbose=False).to_dense(0)
    assert signed[0, 2] == 0 and signed[0, 1] == pytest.approx(0.7)
    unweighted = _sequence([M]).to_graphs(threshold=0.6, weighted=False, verbose=False).to_dense(0)
    assert set(np.unique(unweighted)) == {0.0, 1.0}


def test_threshold_never_keeps_diagonal_or_zero():
    mask = threshold_mask(M[None], 0.0)
    assert not mask[0].diagonal().any()
    assert not mask[0, 1, 3] and mask[0, 0, 3]


def test_density_exact_count_and_ties():
    graphs = _sequence([M]).to_graphs(density=0.5, verbose=False)  # 6 pairs -> 3 edges: 0.8, 0.7, 0.6
    assert graphs.num_edges.tolist() == [3]
    assert set(map(tuple, graphs.edge_index(0).T)) >= {(0, 2), (0, 1), (1, 2)}
    ties = np.full((1, 4, 4), 0.5, dtype=np.float32)
    mask = density_mask(ties, 2 / 6)
    # all pairs tie: the first two pairs in row-major upper-triangle order win
    assert mask[0, 0, 1] and mask[0, 0, 2] and mask.sum() == 4
    assert density_mask(ties, 0.0).sum() == 0 and density_mask(ties, 1.0).sum() == 12


def test_density_does_not_keep_zero_pairs():
    m = np.zeros((1, 4, 4), dtype=np.float32)
    m[0, 0, 1] = m[0, 1, 0] = 0.2
    assert density_mask(m, 1.0).sum() == 2


def test_node_features_are_abs_rows_with_unit_diagonal():
    m = M.copy()
    m[np.diag_indices(4)] = 0.0  # e.g. a silent unit would have 0 on the diagonal
    graphs = _sequence([m]).to_graphs(threshold=0.5, verbose=False)
    expected = np.abs(m).astype(np.float32)
    expected[np.diag_indices(4)] = 1.0
    np.testing.assert_array_equal(graphs.node_features[0], expected)
    assert _sequence([M]).to_graphs(threshold=0.5, node_features=None, verbose=False).node_features is None


def test_exactly_one_criterion():
    seq = _sequence([M])
    with pytest.raises(ValueError, match="exactly one"):
        seq.to_graphs(verbose=False)
    with pytest.raises(ValueError, match="exactly one"):
        seq.to_graphs(threshold=0.5, density=0.1, verbose=False)
    with pytest.raises(ValueError):
        seq.to_graphs(density=1.5, verbose=False)
    with pytest.raises(ValueError):
        seq.to_graphs(threshold=float("nan"), verbose=False)


def _planted(seed=0, duration_s=120.0, fs=10000.0) -> SpikeTrains:
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs)
    shared = np.sort(rng.integers(0, n - 100, 400))
    trains = [
        np.sort(np.concatenate([shared, rng.integers(0, n, 200)])),
        np.sort(np.concatenate([shared + 10, rng.integers(0, n, 200)])),  # 1 ms after unit 0: correlated
        np.sort(rng.integers(0, n, 600)),
        np.sort(rng.integers(0, n, 600)),  # units 2 and 3 independent
    ]
    return SpikeTrains(trains, fs, 0.0, duration_s, np.arange(4))


def test_significance_keeps_planted_pair_drops_independent():
    spikes = _planted()
    conn = compute_connectivity(spikes, sliding_windows(0, 120, 60, 30), method="sttc", dt_ms=5.0, verbose=False)
    graphs = conn.to_graphs(significance=0.05, jitter_ms=20.0, n_surrogates=19, seed=1, verbose=False)
    for t in range(len(graphs)):
        dense = graphs.to_dense(t)
        assert dense[0, 1] > 0.5
        assert dense[2, 3] == 0
    again = conn.to_graphs(significance=0.05, jitter_ms=20.0, n_surrogates=19, seed=1, verbose=False)
    np.testing.assert_array_equal(graphs.to_dense(), again.to_dense())  # seeded: reproducible


def test_significance_needs_spikes_and_enough_surrogates():
    spikes = _planted()
    conn = compute_connectivity(spikes, None, method="pearson", bin_ms=10.0, verbose=False)
    with pytest.raises(ValueError, match="n_surrogates"):
        conn.to_graphs(significance=0.01, n_surrogates=20, verbose=False)
    stored = ConnectivitySequence.from_dict(conn.to_dict())
    with pytest.raises(ValueError, match="spikes"):
        stored.to_graphs(significance=0.05, n_surrogates=19, verbose=False)
    graphs = stored.to_graphs(significance=0.05, n_surrogates=19, spikes=spikes, seed=0, verbose=False)
    assert graphs.to_dense(0)[0, 1] > 0


def test_jitter_keeps_counts_bounds_and_moves_spikes():
    spikes = _planted()
    rng = np.random.default_rng(0)
    jittered = jitter_spikes(spikes, 5.0, rng)
    np.testing.assert_array_equal(jittered.spike_counts, spikes.spike_counts)
    for before, after in zip(spikes.spike_samples, jittered.spike_samples):
        assert after.min() >= 0 and after.max() <= spikes.t_stop_sample
        assert np.all(np.diff(after) >= 0)
        assert not np.array_equal(before, after)
    with pytest.raises(ValueError):
        jitter_spikes(spikes, 0.0, rng)


def test_slicing_and_storage_round_trip():
    spikes = _planted()
    windows = sliding_windows(0, 120, 40, 20)
    conn = compute_connectivity(spikes, windows, method="crosscorr", bin_ms=1.0, max_lag_ms=5.0, verbose=False)
    assert len(conn) == 5 and len(conn[1:3]) == 2 and len(conn[-1]) == 1
    part = conn[1:3]
    np.testing.assert_array_equal(part.matrices, conn.matrices[1:3])
    np.testing.assert_array_equal(part.lags_ms, conn.lags_ms[1:3])
    data = conn.to_dict()
    json.dumps(data["info"])
    assert all(isinstance(v, np.ndarray) for k, v in data.items() if k != "info")
    back = ConnectivitySequence.from_dict(data)
    np.testing.assert_array_equal(back.matrices, conn.matrices)
    np.testing.assert_array_equal(back.lags_ms, conn.lags_ms)
    np.testing.assert_array_equal(back.spike_counts, conn.spike_counts)
    assert back.params == conn.params and back.method == "crosscorr"
    np.testing.assert_array_equal(back.windows.starts, windows.starts)


def test_graph_sequence_carries_ids_labels_windows():
    spikes = _planted()
    spikes = SpikeTrains(spikes.spike_samples, spikes.sampling_frequency, 0.0, 120.0, np.array(["a", "b", "c", "d"]),
                         unit_labels=np.array(["x", "x", "y", "y"]))  # fmt: skip
    conn = compute_connectivity(spikes, sliding_windows(0, 120, 60), verbose=False)
    graphs = conn.to_graphs(threshold=0.2, verbose=False)
    assert isinstance(graphs, GraphSequence)
    assert graphs.node_ids.tolist() == ["a", "b", "c", "d"] and graphs.node_labels.tolist() == ["x", "x", "y", "y"]
    assert len(graphs.windows) == 2
    np.testing.assert_array_equal(conn.unit_labels, ["x", "x", "y", "y"])


# ------------------------------------------------------------------------------------------- registry
def _mean_rate_similarity(spikes, windows, verbose=True, scale=1.0):
    counts = np.array([[np.sum((s >= a * spikes.sampling_frequency) & (s < b * spikes.sampling_frequency))
                        for s in spikes.spike_samples] for a, b in zip(windows.starts, windows.stops)], float)  # fmt: skip
    return scale * np.minimum(counts[:, :, None], counts[:, None, :]) / counts.max()


def test_user_estimator_through_compute_connectivity_and_surrogates():
    register_estimator("rate_similarity", _mean_rate_similarity, overwrite=True)
    assert "rate_similarity" in available_methods() and "rate_similarity" not in available_methods("elephant")
    spikes = _planted()
    conn = compute_connectivity(spikes, sliding_windows(0, 120, 60), method="rate_similarity", scale=2.0,
                                verbose=False)  # fmt: skip
    assert conn.params == {"scale": 2.0, "backend": "fast"} and conn.matrices.dtype == np.float32
    assert conn.to_graphs(density=0.5, verbose=False).num_edges.tolist() == [3, 3]
    # jittering keeps the counts: surrogates equal the observation, so p = 1 and nothing is significant
    graphs = conn.to_graphs(significance=0.1, n_surrogates=9, jitter_ms=1.0, seed=0, verbose=False)
    assert graphs.num_edges.tolist() == [0, 0]
    with pytest.raises(ValueError, match="no Elephant backend"):
        compute_connectivity(spikes, None, method="rate_similarity", backend="elephant", verbose=False)
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("rate_similarity", _mean_rate_similarity)


def test_registry_rejects_bad_estimators_and_outputs():
    with pytest.raises(TypeError):
        register_estimator("bad", lambda x, y: None, overwrite=True)
    with pytest.raises(TypeError):
        register_estimator("bad", lambda spikes, windows: None, overwrite=True)  # no verbose

    def nan_estimator(spikes, windows, verbose=True):
        return np.full((len(windows), spikes.num_units, spikes.num_units), np.nan)

    def asymmetric(spikes, windows, verbose=True):
        return np.arange(len(windows) * spikes.num_units**2, dtype=float).reshape(len(windows), spikes.num_units, -1)

    def wrong_shape(spikes, windows, verbose=True):
        return np.zeros((1, 2, 2))

    spikes = _planted()
    for name, function, match in [("nan_est", nan_estimator, "NaN"), ("asym", asymmetric, "non-symmetric"),
                                  ("shape", wrong_shape, "shape")]:  # fmt: skip
        register_estimator(name, function, overwrite=True)
        with pytest.raises(ValueError, match=match):
            compute_connectivity(spikes, None, method=name, verbose=False)


def test_builtin_methods_listed():
    assert {"sttc", "pearson", "crosscorr"} <= set(available_methods("elephant"))


def test_accepts_spikeinterface_sorting():
    spikes = _planted(duration_s=20.0)
    sorting = spikes.to_sorting()
    conn = compute_connectivity(sorting, sliding_windows(0, 20, 10), method="sttc", verbose=False)
    direct = compute_connectivity(spikes, sliding_windows(0, 20, 10), method="sttc", verbose=False)
    np.testing.assert_array_equal(conn.matrices, direct.matrices)
