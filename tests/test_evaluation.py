import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats

from spikeinterface_tavrnn.evaluation import (
    ScoreTable,
    centroid_cosine_distance,
    classify_windows,
    cluster_nodes,
    compare_methods,
    energy_distance,
    link_scores,
    mean_ci,
    permutation_p_value,
    region_alignment,
    window_splits,
    window_vectors,
)
from spikeinterface_tavrnn.graphs import GraphSequence
from spikeinterface_tavrnn.windows import Windows, sliding_windows


pytestmark = pytest.mark.usefixtures("single_thread")


# ------------------------------------------------------------------ statistics helpers
@pytest.mark.parametrize("values", [[0.8, 0.85, 0.9], [1.0, 2.0, 4.0, 8.0, 3.0], [0.5, 0.7]])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_mean_ci_matches_scipy_t_interval(values, confidence):
    mean, lo, hi = mean_ci(values, confidence)
    ref = scipy.stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (lo, hi) == pytest.approx(ref)


def test_mean_ci_degenerate_cases():
    mean, lo, hi = mean_ci([0.7])
    assert mean == 0.7 and np.isnan(lo) and np.isnan(hi)
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    assert mean_ci([0.2, np.nan, 0.4])[0] == pytest.approx(0.3)
    assert all(np.isnan(mean_ci([])))


def test_permutation_p_value_counts_ties_and_never_zero():
    null = [0.1, 0.5, 0.9, 0.9]
    assert permutation_p_value(0.9, null) == pytest.approx(3 / 5)
    assert permutation_p_value(2.0, null) == pytest.approx(1 / 5)
    assert permutation_p_value(0.1, null, "less") == pytest.approx(2 / 5)
    assert permutation_p_value(-0.9, [0.95, -0.2, 0.3], "two-sided") == pytest.approx(2 / 4)
    assert np.isnan(permutation_p_value(np.nan, null))
    with pytest.raises(ValueError):
        permutation_p_value(0.1, null, "bigger")


# ------------------------------------------------------------------ window vectors and splits
def test_window_vectors_readouts():
    z = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    np.testing.assert_allclose(window_vectors(z, "mean"), z.mean(axis=1))
    np.testing.assert_allclose(window_vectors(z, "max"), z[:, -1])
    mv = window_vectors(z, "mean+std")
    assert mv.shape == (2, 4)
    np.testing.assert_allclose(mv[:, 2:], z.std(axis=1))
    np.testing.assert_array_equal(window_vectors(z[:, 0]), z[:, 0])
    with pytest.raises(ValueError):
        window_vectors(z, "median")


def test_window_vectors_auto_keeps_units_apart_for_one_node_axis_and_averages_own_node_sets():
    from spikeinterface_tavrnn.errors import TavrnnInputError

    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 3, 2))
    np.testing.assert_array_equal(window_vectors(z), z.reshape(4, 6))  # default "auto" = "flat" for (T, N, d)
    np.testing.assert_array_equal(window_vectors(z, "auto"), window_vectors(z, "flat"))
    ragged = [rng.normal(size=(n, 2)) for n in (3, 5, 4)]
    np.testing.assert_allclose(window_vectors(ragged), [w.mean(axis=0) for w in ragged])
    np.testing.assert_allclose(window_vectors(ragged, "max"), [w.max(axis=0) for w in ragged])
    np.testing.assert_allclose(window_vectors(ragged, "mean+std")[:, 2:], [w.std(axis=0) for w in ragged])
    np.testing.assert_array_equal(window_vectors(list(z), "flat"), z.reshape(4, 6))
    with pytest.raises(TavrnnInputError, match="different node counts"):
        window_vectors(ragged, "flat")
    # classify_windows reads its default from window_vectors: a signal in one unit, cancelled in the node mean.
    labels = np.tile(np.repeat([0, 1], 4), 5)
    x = rng.normal(scale=0.3, size=(40, 6, 1))
    x[:, 0, 0] += 2.0 * labels
    x[:, 1, 0] -= 2.0 * labels
    assert classify_windows(x, labels, n_permutations=0).balanced_accuracy > 0.9
    assert classify_windows(x, labels, readout="mean", n_permutations=0).balanced_accuracy < 0.75


@pytest.mark.parametrize("gap", [0, 1, 3])
def test_blocked_splits_never_train_next_to_test(gap):
    n = 23
    splits = window_splits(n, n_splits=5, gap=gap)
    tested = np.concatenate([te for _, te in splits])
    np.testing.assert_array_equal(np.sort(tested), np.arange(n))  # every window tested exactly once
    for train, test in splits:
        assert np.all(np.diff(test) == 1)  # contiguous blocks, no shuffling
        assert np.abs(train[:, None] - test[None, :]).min() > gap
        # Everything outside the gap is used for training.
        expected = [i for i in range(n) if np.abs(i - test).min() > gap]
        np.testing.assert_array_equal(train, expected)


def test_gap_respects_time_order_and_groups():
    order = np.array([3, 0, 4, 1, 5, 2])  # window 3 is first in time, etc.
    for train, test in window_splits(6, n_splits=3, gap=1, order=order):
        pos = np.argsort(order)
        assert np.abs(pos[train][:, None] - pos[test][None, :]).min() > 1
    groups = np.repeat(np.arange(6), 4)
    labels = np.tile([0, 0, 1, 1], 6)
    for train, test in window_splits(24, n_splits=3, gap=2, groups=groups, labels=labels):
        assert not set(groups[train]) & set(groups[test])
        assert np.abs(train[:, None] - test[None, :]).min() > 2


@pytest.mark.parametrize("size, step, expected", [(120.0, 60.0, 1), (120.0, 30.0, 3), (60.0, 60.0, 0), (50.0, 60.0, 0)])
def test_auto_gap_from_overlapping_windows(size, step, expected):
    windows = sliding_windows(0.0, 1200.0, size, step)
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], len(windows) // 2 + 1)[: len(windows)]
    res = classify_windows(rng.normal(size=(len(windows), 3)), labels, windows=windows, n_permutations=0)
    assert res.gap == expected


def test_overlapping_windows_never_straddle_a_split():
    windows = sliding_windows(0.0, 1200.0, 120.0, 60.0)
    n = len(windows)
    for train, test in window_splits(n, n_splits=4, gap=1):
        for i in train:
            overlaps = (windows.starts[i] < windows.stops[test]) & (windows.starts[test] < windows.stops[i])
            assert not overlaps.any()


# ------------------------------------------------------------------ window classification
def _planted_windows(n_windows=40, n_nodes=12, d=3, signal=3.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat([0, 1], 4), n_windows // 8 + 1)[:n_windows]  # blocks of 4: both classes per fold
    z = rng.normal(size=(n_windows, n_nodes, d))
    z[:, :, 0] += signal * labels[:, None]
    return z, labels


def test_classification_planted_labels_are_found():
    z, labels = _planted_windows()
    res = classify_windows(z, labels, n_permutations=59, seed=0)
    assert res.scores["accuracy"] >= 0.95
    assert res.balanced_accuracy >= 0.95 and res.f1 >= 0.95
    assert res.p_value == pytest.approx(1 / 60)
    assert res.null["balanced_accuracy"].shape == (59,)
    assert res.null["balanced_accuracy"].mean() == pytest.approx(0.5, abs=0.1)
    assert res.chance == 0.5 and res.gap == 1
    assert set(res.fold) == set(range(5))
    np.testing.assert_array_equal(res.y_true, labels)


def test_classification_shuffled_labels_are_at_chance():
    accs, ps = [], []
    for seed in range(4):
        z, labels = _planted_windows(signal=0.0, seed=seed)
        res = classify_windows(z, labels, n_permutations=29, seed=seed)
        accs.append(res.balanced_accuracy)
        ps.append(res.p_value)
    assert np.mean(accs) == pytest.approx(0.5, abs=0.12)
    assert min(ps) > 0.05


def test_classification_three_classes_string_labels_and_chance():
    rng = np.random.default_rng(1)
    labels = np.array(["left", "right", "stop"] * 12)
    x = rng.normal(size=(36, 4))
    res = classify_windows(x, labels, n_splits=4, n_permutations=49)
    assert res.chance == pytest.approx(1 / 3)
    assert res.balanced_accuracy == pytest.approx(1 / 3, abs=0.2)
    assert set(res.y_pred) <= {"left", "right", "stop"}
    x[:, 1] += 4.0 * (labels == "right")
    x[:, 2] += 4.0 * (labels == "stop")
    res = classify_windows(x, labels, n_splits=4, n_permutations=49)
    assert res.accuracy > 0.9 and res.p_value < 0.05


def test_classification_with_groups_and_labels_from_windows():
    z, labels = _planted_windows(n_windows=32)
    windows = Windows(np.arange(32.0), np.arange(32.0) + 1.0, labels=labels)
    # Groups of 2 windows inside label blocks of 4; 16 groups leave enough distinct group-level permutations.
    groups = np.repeat(np.arange(16), 2)
    res = classify_windows(z, groups=groups, windows=windows, n_splits=4, n_permutations=49)
    assert res.gap == 0
    assert res.accuracy > 0.9 and res.p_value < 0.05
    res0 = classify_windows(z[:, :, 1:], groups=groups, windows=windows, n_splits=4, n_permutations=49)
    assert res0.p_value > 0.05


def test_classification_circular_null_and_reproducible():
    z, labels = _planted_windows(n_windows=24)
    res = classify_windows(z, labels, permutation="circular", n_permutations=1000, n_splits=4)
    assert res.null["accuracy"].shape == (23,)  # every non-zero shift once
    again = classify_windows(z, labels, permutation="circular", n_permutations=1000, n_splits=4)
    np.testing.assert_array_equal(res.null["accuracy"], again.null["accuracy"])
    a = classify_windows(z, labels, n_permutations=20, seed=3)
    b = classify_windows(z, labels, n_permutations=20, seed=3)
    np.testing.assert_array_equal(a.null["f1"], b.null["f1"])


def test_classification_input_errors():
    z, labels = _planted_windows(n_windows=16)
    with pytest.raises(ValueError, match="labels"):
        classify_windows(z)
    with pytest.raises(ValueError, match="single class"):
        classify_windows(z, np.zeros(16))
    with pytest.raises(ValueError, match="training window"):
        classify_windows(z, labels, n_splits=2, gap=8, n_permutations=0)


# ------------------------------------------------------------------ node clustering
def test_cluster_nodes_planted_groups():
    rng = np.random.default_rng(0)
    node_labels = np.array(["sensory"] * 15 + ["motor"] * 10)
    z = rng.normal(scale=0.3, size=(3, 25, 4))
    z[:, :15, 0] += 3.0
    res = cluster_nodes(z, node_labels, n_permutations=49, seed=0)
    np.testing.assert_allclose(res.scores["ari"], 1.0)
    np.testing.assert_allclose(res.scores["nmi"], 1.0)
    assert np.all(res.scores["silhouette"] > 0.7)
    np.testing.assert_allclose(res.p_values["ari"], 1 / 50)
    assert res.mean_p_values["silhouette"] == pytest.approx(1 / 50)
    assert res.null["ari"].shape == (49, 3) and res.n_clusters == 2
    assert res.cluster_labels.shape == (3, 25)


def test_cluster_nodes_shuffled_is_at_chance():
    rng = np.random.default_rng(1)
    node_labels = np.repeat([0, 1, 2], 10)
    z = rng.normal(size=(6, 30, 4))
    res = cluster_nodes(z, node_labels, n_permutations=49, seed=0)
    assert abs(res.mean_scores["ari"]) < 0.1
    assert res.mean_p_values["ari"] > 0.05 and res.mean_p_values["silhouette"] > 0.05
    assert np.all(np.abs(res.null["ari"]).mean(axis=0) < 0.1)


def test_cluster_nodes_excludes_unlabelled_and_handles_flat_windows():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=0.2, size=(2, 12, 2))
    z[:, :5, 0] += 3.0
    z[1] = 0.0  # a window whose embedding carries nothing
    labels = np.array([0] * 5 + [1] * 5 + [None, None], dtype=object)
    res = cluster_nodes(z, labels, n_permutations=10)
    assert res.scores["ari"][0] == 1.0 and np.isnan(res.scores["ari"][1])
    assert np.all(res.cluster_labels[:, 10:] == -1)
    assert res.mean_scores["ari"] == 1.0


def test_cluster_nodes_normalize_matches_sklearn_kmeans_on_unit_vectors():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import normalize

    # Three groups that are directions (as under an inner-product decoder), each node with its own norm (0.2 to 5).
    rng = np.random.default_rng(3)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    labels = np.repeat([0, 1, 2], 20)
    z = (directions[labels] + rng.normal(scale=0.1, size=(60, 3))) * rng.uniform(0.2, 5.0, size=(60, 1))
    raw = cluster_nodes(z, labels, n_permutations=0, seed=4, n_init=3)
    unit = cluster_nodes(z, labels, n_permutations=0, seed=4, n_init=3, normalize=True)
    reference = KMeans(n_clusters=3, n_init=3, random_state=4).fit_predict(normalize(z))
    np.testing.assert_array_equal(unit.cluster_labels[0], reference)
    assert unit.scores["ari"][0] == pytest.approx(adjusted_rand_score(labels, reference)) == pytest.approx(1.0)
    assert unit.scores["silhouette"][0] == pytest.approx(silhouette_score(normalize(z), labels))
    assert raw.scores["ari"][0] < 0.8  # Euclidean k-means on the raw vectors splits groups by norm


# ------------------------------------------------------------------ region alignment
def test_energy_distance_matches_scipy_in_1d_and_is_zero_for_equal_samples():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(1.0, 2.0, size=20)
    assert energy_distance(x, y) == pytest.approx(scipy.stats.energy_distance(x, y))
    pts = rng.normal(size=(10, 3))
    assert energy_distance(pts, pts) == pytest.approx(0.0, abs=1e-7)
    assert energy_distance(pts, pts + 5.0) > 1.0


def test_centroid_cosine_distance():
    assert centroid_cosine_distance([[1.0, 0.0], [1.0, 0.2], [1.0, -0.2]], [[2.0, 0.0]]) == pytest.approx(0.0)
    assert centroid_cosine_distance([[1.0, 1.0]], [[-1.0, -1.0]]) == pytest.approx(2.0)
    assert np.isnan(centroid_cosine_distance([[1.0, 1.0], [-1.0, -1.0]], [[1.0, 0.0]]))


def _alignment_data(n_windows=30, seed=0, coupled=True):
    rng = np.random.default_rng(seed)
    behaviour = rng.random(n_windows)
    separation = behaviour if coupled else rng.random(n_windows)
    z = rng.normal(scale=0.5, size=(n_windows, 24, 3))
    z[:, :12, 0] += 4.0 * separation[:, None]
    z[:, :, 1] += 2.0  # keeps centroids away from the origin
    labels = np.array(["sensory"] * 12 + ["motor_1"] * 6 + ["motor_2"] * 6)
    return z, labels, behaviour


def test_region_alignment_planted_correlation():
    z, labels, behaviour = _alignment_data()
    res = region_alignment(z, labels, "sensory", ["motor_1", "motor_2"], behaviour=behaviour, n_node_permutations=49)
    for name in ("energy", "cosine"):
        c = res.correlation[name]
        assert c["rho"] > 0.8 and c["p_value"] == pytest.approx(1 / 30)  # exhaustive: 29 shifts
        assert c["partial_rho"] > 0.8 and c["n_shifts"] == 29
        assert res.distances[name].shape == (30,)
    strong = behaviour > 0.5
    assert np.all(res.distance_p_values["energy"][strong] <= 0.05)
    assert res.null["energy"]["rho"].shape == (29,)


def test_region_alignment_unrelated_behaviour_is_not_significant():
    ps = []
    for seed in range(3):
        z, labels, behaviour = _alignment_data(seed=seed, coupled=False)
        res = region_alignment(z, labels, "sensory", ["motor_1", "motor_2"], behaviour=behaviour, n_node_permutations=0)
        ps.append(res.correlation["energy"]["p_value"])
        assert np.all(np.isnan(res.distance_p_values["energy"]))
    assert min(ps) > 0.05


def test_region_alignment_time_control_removes_shared_trend():
    rng = np.random.default_rng(3)
    n = 40
    trend = np.linspace(0.0, 1.0, n)
    behaviour = trend + rng.normal(scale=0.05, size=n)  # both drift over the session, independently otherwise
    z = rng.normal(scale=0.3, size=(n, 20, 2))
    z[:, :10, 0] += 3.0 * (trend + rng.normal(scale=0.05, size=n))[:, None]
    res = region_alignment(z, np.repeat([0, 1], 10), 0, 1, behaviour=behaviour, n_node_permutations=0)
    c = res.correlation["energy"]
    assert c["rho"] > 0.8
    assert abs(c["partial_rho"]) < 0.4 and c["partial_p_value"] > 0.05


def test_region_alignment_same_distribution_groups_are_not_separated():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(20, 40, 3))
    res = region_alignment(z, np.repeat(["a", "b"], 20), "a", "b", n_node_permutations=99)
    assert res.correlation == {}
    for name in ("energy", "cosine"):
        p = res.distance_p_values[name]
        assert np.mean(p < 0.05) <= 0.2 and np.median(p) > 0.2  # roughly uniform under the null
    with pytest.raises(ValueError, match="disjoint"):
        region_alignment(z, np.repeat(["a", "b"], 20), "a", ["a", "b"])


# ------------------------------------------------------------------ repeated runs and comparisons
def _labelled_graphs(n_windows=16, n_nodes=20, seed=0):
    """Windows alternate in blocks of 2 between a two-community graph (label 1) and a random graph (label 0)."""
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 0, 1, 1], n_windows // 4 + 1)[:n_windows]
    blocks = np.repeat([0, 1], n_nodes // 2)
    mats = []
    for lab in labels:
        p = np.where(blocks[:, None] == blocks[None], 0.6, 0.05) if lab else np.full((n_nodes, n_nodes), 0.3)
        a = np.triu(rng.random((n_nodes, n_nodes)) < p, 1).astype(float)
        mats.append(a + a.T)
    windows = Windows(np.arange(n_windows) * 10.0, np.arange(n_windows) * 10.0 + 10.0, labels=labels)
    return GraphSequence.from_adjacency(mats, windows=windows, node_labels=blocks)


def test_compare_methods_windows_table():
    graphs = _labelled_graphs()
    table = compare_methods(graphs, methods=["connectivity_pca", "graph_stats"], seeds=[0, 1, 2], n_splits=4, dim=4)
    assert isinstance(table, ScoreTable)
    row = table.get("graph_stats", "balanced_accuracy")
    assert row["mean"] > 0.8 and row["n_seeds"] == 3 and row["time_s"] >= 0
    for r in table.rows:
        values = table.raw[(r["method"], r["metric"])]
        mean, lo, hi = mean_ci(values)
        assert (r["mean"], r["ci_low"], r["ci_high"]) == (mean, lo, hi) or np.isnan(lo)
    md = table.to_markdown()
    assert md.splitlines()[0] == "| method | metric | mean | 95% CI | n_seeds | time_s |"
    assert len(md.splitlines()) == 2 + 2 * 5
    assert table.to_dicts()[0]["method"] == "connectivity_pca"


def test_compare_methods_passes_normalize_to_cluster_nodes():
    graphs = _labelled_graphs(n_windows=2)
    labels = np.asarray(graphs.node_labels)

    def directional_embed(graphs, method, seed, dim):
        # a group is a direction; norms differ a hundredfold inside each group
        rng = np.random.default_rng(seed)
        norms = np.resize([0.1, 10.0], len(labels))
        z = np.where((labels == 1)[:, None], [1.0, 0.0], [0.0, 1.0]) * norms[:, None]
        z = z + rng.normal(scale=0.01, size=z.shape)
        return np.repeat(z[None], len(graphs), axis=0)

    def ari(**kw):
        table = compare_methods(graphs, methods=["directions"], seeds=[0], task="nodes", embed_fn=directional_embed, **kw)
        return table.get("directions", "ari")["mean"]

    emb = directional_embed(graphs, "directions", 0, 2)
    assert ari(normalize=True) == pytest.approx(cluster_nodes(emb, labels, n_permutations=0, normalize=True).mean_scores["ari"])
    assert ari(normalize=True) == pytest.approx(1.0)
    assert ari() == pytest.approx(cluster_nodes(emb, labels, n_permutations=0).mean_scores["ari"]) and ari() < 1.0


def test_compare_methods_nodes_with_custom_embedding_and_ci():
    graphs = _labelled_graphs(n_windows=4)

    def noisy_embed(graphs, method, seed, dim, scale=1.0):
        rng = np.random.default_rng(seed)
        z = rng.normal(scale=scale, size=(len(graphs), graphs.num_nodes, dim))
        z[:, graphs.node_labels == 1, 0] += 3.0
        return z

    table = compare_methods(
        graphs,
        methods=["noisy"],
        seeds=[0, 1, 2, 3],
        task="nodes",
        dim=3,
        method_params={"noisy": {"scale": 1.0}},
        n_permutations=19,
        embed_fn=noisy_embed,
    )
    ari = table.raw[("noisy", "ari")]
    assert len(ari) == 4 and np.std(ari) > 0
    row = table.get("noisy", "ari")
    ref = scipy.stats.t.interval(0.95, 3, loc=np.mean(ari), scale=scipy.stats.sem(ari))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(ref)
    assert table.get("noisy", "p_ari")["mean"] == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match="window vectors"):
        compare_methods(graphs, methods=["graph_stats"], seeds=[0], task="nodes")


class _FakeEstimator:
    """Stands in for TAVRNN: parameters in, a dict of link scores out."""

    def __init__(self, z_dim=8, seed=0, verbose=False):
        self.z_dim, self.seed, self.verbose = z_dim, seed, verbose

    def get_params(self):
        return {"z_dim": self.z_dim, "seed": self.seed, "verbose": self.verbose}

    def score_links(self, graphs, fraction=0.15):
        return {"detection_auc": 0.9 + 0.01 * self.seed, "prediction_ap": 0.8, "n_windows": len(graphs), "tag": "x"}


def test_link_scores_aggregates_over_seeds():
    graphs = _labelled_graphs(n_windows=4)
    table = link_scores(_FakeEstimator(z_dim=4), graphs, seeds=[0, 1, 2], fraction=0.1)
    assert table.raw[("tavrnn", "detection_auc")] == pytest.approx([0.9, 0.91, 0.92])
    assert table.get("tavrnn", "detection_auc")["mean"] == pytest.approx(0.91)
    assert table.get("tavrnn", "prediction_ap")["ci_low"] == pytest.approx(0.8)
    assert {r["metric"] for r in table.rows} == {"detection_auc", "prediction_ap", "n_windows"}


def test_link_scores_with_the_real_estimator():
    estimator = pytest.importorskip("spikeinterface_tavrnn.estimator", exc_type=ImportError)
    graphs = _labelled_graphs(n_windows=5, n_nodes=12)
    model = estimator.TAVRNN(z_dim=2, h_dim=8, epochs=3)
    table = link_scores(model, graphs, seeds=[0, 1])
    assert table.rows and all(r["n_seeds"] == 2 for r in table.rows)
    assert any("auc" in r["metric"].lower() for r in table.rows)


def test_vectorised_silhouette_matches_sklearn():
    from sklearn.metrics import silhouette_score

    from spikeinterface_tavrnn.evaluation.nodes import _silhouettes

    rng = np.random.default_rng(5)
    pts = rng.normal(size=(30, 3))
    dist = scipy.spatial.distance.cdist(pts, pts)
    labelings = np.array([rng.integers(0, 4, size=30) for _ in range(5)] + [np.r_[0, np.ones(29, int)]])
    expected = [silhouette_score(dist, lab, metric="precomputed") for lab in labelings]
    np.testing.assert_allclose(_silhouettes(dist, labelings, 4), expected, atol=1e-12)
    assert np.isnan(_silhouettes(dist, np.zeros((1, 30), int), 4)[0])


def test_classification_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_recall_fscore_support

    from spikeinterface_tavrnn.evaluation.decoding import _classification_scores

    rng = np.random.default_rng(6)
    for n_classes in (2, 3, 4):
        y = rng.integers(0, n_classes, size=40)
        pred = np.where(rng.random(40) < 0.5, y, rng.integers(0, n_classes, size=40))
        pred[pred == n_classes - 1] = 0  # a class never predicted: zero_division paths
        got = _classification_scores(y, pred, n_classes)
        p, r, f, _ = precision_recall_fscore_support(
            y, pred, labels=np.arange(n_classes), average="macro", zero_division=0
        )
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f))


def test_flat_readout_keeps_each_node_in_place():
    z = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    flat = window_vectors(z, "flat")
    assert flat.shape == (2, 12)
    np.testing.assert_array_equal(flat[1, 4:8], z[1, 1])


def test_window_similarity_and_role_change_against_direct_formulas():
    from spikeinterface_tavrnn.evaluation import role_change, window_similarity

    rng = np.random.default_rng(3)
    z = rng.normal(size=(6, 5, 3))
    z[:, 2] += np.arange(6)[:, None] * 2.0  # unit 2 drifts: the largest role change
    d = z - z.mean(axis=0)
    states = d.reshape(6, -1)
    expected = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in states] for a in states])
    np.testing.assert_allclose(window_similarity(z), expected, atol=1e-12)
    change = role_change(z)
    rms = np.sqrt((np.linalg.norm(d, axis=2) ** 2).mean(axis=0))
    np.testing.assert_allclose(change.score, rms / np.median(rms))
    assert change.order[0] == 2


def test_decode_against_baselines_finds_information_beyond_rates():
    from spikeinterface_tavrnn.evaluation import decode_against_baselines

    rng = np.random.default_rng(0)
    labels = np.tile(np.repeat(["a", "b"], 3), 6)
    t = labels.size
    rates = rng.gamma(2.0, 2.0, (t, 4))  # rates carry nothing
    embeddings = rng.normal(size=(t, 4, 2)) + 2.0 * (labels == "a")[:, None, None]
    matrices = np.tile(np.eye(4), (t, 1, 1))
    result = decode_against_baselines(embeddings, rates, matrices, labels, n_permutations=19, seed=0)
    assert result.results["embeddings"].balanced_accuracy > 0.9
    assert result.results["firing_rates"].balanced_accuracy < 0.75
    assert result.gain > 0.2 and result.gain_p_value <= 0.1 and result.adds_information
    assert result.paired_p_value < 0.01
    assert result.chance == 0.5
    # embeddings that are the rates themselves decode the same windows: no gain, nothing added
    same = decode_against_baselines(np.log1p(rates)[:, :, None], rates, matrices, labels, n_permutations=5, seed=0)
    assert same.paired_p_value > 0.05 and not same.adds_information


def test_mcnemar_p_value_is_the_exact_binomial_test_of_discordant_items():
    from math import comb

    from spikeinterface_tavrnn.evaluation import mcnemar_p_value

    y = np.array(list("aabbabab" * 3))
    pred_a = y.copy()
    pred_b = y.copy()
    pred_b[:7] = np.where(y[:7] == "a", "b", "a")  # b misses 7 items that a gets right
    pred_a[10] = "b" if y[10] == "a" else "a"  # a misses 1 that b gets right
    # two-sided exact binomial: 2 * P(X <= 1), X ~ Bin(8, 1/2)
    expected = 2 * sum(comb(8, k) for k in (0, 1)) / 2**8
    assert mcnemar_p_value(y, pred_a, pred_b) == pytest.approx(expected)
    assert mcnemar_p_value(y, pred_b, pred_a) == pytest.approx(expected)
    assert mcnemar_p_value(y, y, y) == 1.0


def test_paired_test_matches_scipy_and_the_corrected_formula():
    from spikeinterface_tavrnn.evaluation import paired_test

    rng = np.random.default_rng(3)
    b = rng.uniform(0.6, 0.9, 50)
    a = b + rng.normal(0.02, 0.05, 50)
    res = paired_test(a, b, test_train_ratio=0.25)
    d = a - b
    assert res.n_pairs == 50 and res.mean_difference == pytest.approx(d.mean())
    assert res.t_p_value == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue)
    assert res.wilcoxon_p_value == pytest.approx(scipy.stats.wilcoxon(a, b).pvalue)
    t_corr = d.mean() / np.sqrt((1 / 50 + 0.25) * d.var(ddof=1))
    assert res.corrected_t_p_value == pytest.approx(2 * scipy.stats.t.sf(abs(t_corr), 49))
    assert res.corrected_t_p_value > res.t_p_value  # the correction is conservative
    lo, hi = scipy.stats.t.interval(0.95, 49, loc=d.mean(), scale=scipy.stats.sem(d))
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi))
    assert np.isnan(paired_test(a, b).corrected_t_p_value)
    with pytest.raises(ValueError, match="same number"):
        paired_test(a, b[:-1])


def test_fold_scores_are_each_folds_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score

    from spikeinterface_tavrnn.evaluation import fold_scores

    rng = np.random.default_rng(1)
    labels = np.tile(np.repeat(["x", "y", "z"], 2), 6)
    x = (labels == "x")[:, None] * 1.0 + rng.normal(size=(labels.size, 3))
    res = classify_windows(x, labels, n_splits=4, n_permutations=0)
    scores = fold_scores(res)
    expected = [balanced_accuracy_score(res.y_true[res.fold == k], res.y_pred[res.fold == k]) for k in range(4)]
    assert scores == pytest.approx(expected)
    assert fold_scores(res, "accuracy") == pytest.approx(
        [np.mean(res.y_true[res.fold == k] == res.y_pred[res.fold == k]) for k in range(4)])
