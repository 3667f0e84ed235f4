import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.estimator import FORMAT_VERSION, PARITY_PRESET, TAVRNN
from spikeinterface_tavrnn.graphs import GraphSequence

sys.path.insert(0, str(Path(__file__).parent))
from _dynamic_sbm import dynamic_sbm  # noqa: E402


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def small():
    graphs, labels = dynamic_sbm(n_nodes=30, n_windows=5, n_communities=3, change_windows=(3,), seed=0)
    return graphs


def _fast(**kw):
    return TAVRNN(**{"z_dim": 4, "h_dim": 8, "epochs": 5, "seed": 0, "device": "cpu", **kw})


def test_fit_transform_shapes_and_fitted_state(small):
    model = _fast(attention=True)
    assert model.fit(small) is model
    emb = model.transform(small)
    assert emb.shape == (5, 30, 4) and emb.dtype == np.float32
    assert model.loss_history_.shape == (5,) and np.all(np.isfinite(model.loss_history_))
    assert model.n_features_in_ == 30 and model.feature_kind_ == "identity"
    assert model.reconstruction_ == "dense"
    att = model.attention_weights_
    assert att.shape == (5, 5)
    np.testing.assert_allclose(att.sum(1), 1.0, rtol=1e-6)
    assert np.all(np.triu(att, 1) == 0) and att[0, 0] == 1
    # posterior means are deterministic; samples are not, but are seeded
    np.testing.assert_array_equal(emb, model.transform(small))
    s1, s2 = model.transform(small, sample=True, seed=1), model.transform(small, sample=True, seed=1)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, emb)
    np.testing.assert_array_equal(model.fit_transform(small), emb)


def test_attention_window_and_off(small):
    model = _fast(attention=True, attention_window=2).fit(small)
    att = model.attention_weights_
    np.testing.assert_allclose(att.sum(1), 1.0, rtol=1e-6)
    assert np.all(np.tril(att, -2) == 0)
    off = _fast().fit(small)  # the default: no attention (VGRNN)
    assert off.attention_weights_ is None
    assert not any(k.startswith("attention") for k in off.module_.state_dict())


def test_edge_weights_are_used_by_default_and_change_nothing_on_binary_graphs(small):
    from spikeinterface_tavrnn.graphs import GraphSequence

    binary = [_fast(use_edge_weight=w).fit(small).transform(small) for w in (True, False)]
    np.testing.assert_array_equal(binary[0], binary[1])  # weights of 1: the same normalisation, bit for bit
    rng = np.random.default_rng(0)
    strength = rng.uniform(0.05, 1.0, (small.num_nodes, small.num_nodes))
    strength = strength + strength.T  # symmetric: both directions of an edge carry one weight
    weights = [strength[small.edge_index(t)[0], small.edge_index(t)[1]] for t in range(len(small))]
    weighted = GraphSequence([small.edge_index(t) for t in range(len(small))], small.num_nodes, edge_weights=weights)
    default, on, off = (m.fit(weighted).transform(weighted) for m in (_fast(), _fast(use_edge_weight=True),
                                                                       _fast(use_edge_weight=False)))  # fmt: skip
    np.testing.assert_array_equal(default, on)
    assert not np.allclose(default, off)


def test_transform_longer_sequence(small):
    model = _fast(attention=True).fit(small[:3])
    emb = model.transform(small)
    assert emb.shape == (5, 30, 4)
    # the recurrence starts from the first window: the first windows agree with the shorter run
    np.testing.assert_allclose(emb[:3], model.transform(small[:3]), rtol=1e-5, atol=1e-6)
    assert model.attention_weights(small).shape == (5, 5)
    assert model.prior_means(small).shape == (5, 30, 4)


def test_node_feature_options(small):
    n = small.num_nodes
    rng = np.random.default_rng(0)
    adj = _fast(node_features="adjacency").fit(small)
    assert adj.n_features_in_ == n
    static = rng.random((n, 6)).astype(np.float32)
    arr = _fast(node_features=static).fit(small)
    assert arr.n_features_in_ == 6 and arr.transform(small).shape == (5, n, 4)
    per_window = rng.random((5, n, 3)).astype(np.float32)
    arr3 = _fast(node_features=per_window).fit(small)
    with pytest.raises(ValueError, match="pass node_features"):
        arr3.transform(small[:4])
    assert arr3.transform(small[:4], node_features=per_window[:4]).shape == (4, n, 4)
    carried = GraphSequence.from_adjacency(small.to_dense(), node_features=per_window)
    auto = _fast().fit(carried)
    assert auto.feature_kind_ == "graph" and auto.n_features_in_ == 3
    with pytest.raises(ValueError, match="node_features='graph'"):
        _fast(node_features="graph").fit(small)
    with pytest.raises(ValueError, match="node feature array"):
        _fast(node_features=np.ones((n + 1, 2))).fit(small)
    with pytest.raises(ValueError, match="fitted on 30 nodes"):
        _fast().fit(small).transform(GraphSequence.from_adjacency(np.zeros((2, 31, 31))))


def test_options_run(small):
    for kw in (
        dict(use_edge_weight=True),
        dict(reconstruction="sampled", negative_ratio=2.0),
        dict(kl_weight=0.0),
        dict(n_layers=2),
        dict(history_node=False),
        dict(clip_grad_norm=None),
        dict(attention_mode="published"),
        dict(attention_mode="published", history_node=False),
    ):
        model = _fast(**kw).fit(small)
        assert np.all(np.isfinite(model.transform(small))), kw
    auto_big = _fast(reconstruction="auto", dense_max_nodes=10).fit(small)
    assert auto_big.reconstruction_ == "sampled"


def test_score_links_lives_with_the_evaluations(small):
    """``TAVRNN.score_links`` delegates to :func:`spikeinterface_tavrnn.evaluation.score_links`: same scores."""
    from spikeinterface_tavrnn.evaluation import score_links

    model = _fast(epochs=3)
    direct = score_links(model, small, n_prediction_windows=1, seed=0)
    through = model.score_links(small, n_prediction_windows=1, seed=0)
    assert direct.keys() == through.keys()
    for key in direct:
        np.testing.assert_array_equal(direct[key], through[key])


def test_score_links_with_per_window_features(small):
    feats = np.random.default_rng(0).random((5, small.num_nodes, 3)).astype(np.float32)
    scores = _fast(node_features=feats, epochs=3).score_links(small, n_prediction_windows=1, seed=0)
    assert 0 <= scores["detection_auc"] <= 1 and 0 <= scores["prediction_auc"] <= 1
    assert scores["prediction_windows"].tolist() == [4]


def test_kl_weight_changes_the_loss(small):
    a = _fast(kl_weight=1.0, epochs=1).fit(small).loss_history_[0]
    b = _fast(kl_weight=0.0, epochs=1).fit(small).loss_history_[0]
    assert a > b


def test_gradient_clipping_is_applied(small, monkeypatch):
    import spikeinterface_tavrnn.training as est

    calls = []
    original = est.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm):
        parameters = list(parameters)
        calls.append((len(parameters), max_norm))
        return original(parameters, max_norm)

    monkeypatch.setattr(est.nn.utils, "clip_grad_norm_", spy)
    model = _fast(clip_grad_norm=0.5, epochs=3).fit(small)
    assert calls == [(len(list(model.module_.parameters())), 0.5)] * 3
    calls.clear()
    _fast(clip_grad_norm=None, epochs=3).fit(small)
    assert calls == []
    monkeypatch.undo()
    # clipping changes training (Adam's first step is scale-free, later steps are not)
    clipped = _fast(clip_grad_norm=1e-3, epochs=4).fit(small).loss_history_
    free = _fast(clip_grad_norm=None, epochs=4).fit(small).loss_history_
    assert clipped[0] == free[0] and clipped[-1] != free[-1]
    assert TAVRNN().clip_grad_norm == 10.0  # on by default


def test_parity_preset(small):
    model = TAVRNN(preset="parity", epochs=3, seed=0).fit(small)
    cfg = model._config()
    for key, value in PARITY_PRESET.items():
        assert cfg[key] == value
    assert model.reconstruction_ == "dense"
    # the wired history node is in the model, never in the outputs
    assert model.module_.attention.wired_index == -1  # appended after the real nodes, whatever their number
    assert model.transform(small).shape == (5, small.num_nodes, 8)
    with pytest.raises(ValueError, match="preset"):
        TAVRNN(preset="published").fit(small)


def test_untrained_recurrence_stays_at_its_initialisation(small, tmp_path):
    def weights(model):
        return {name: p.detach().clone() for name, p in model.module_.named_parameters()}

    one = weights(_fast(epochs=1, train_recurrence=False, early_stopping=None).fit(small))
    five = weights(_fast(epochs=5, train_recurrence=False, early_stopping=None).fit(small))
    trained = weights(_fast(epochs=5, train_recurrence=True, early_stopping=None).fit(small))
    assert TAVRNN().get_params()["train_recurrence"] is False  # the default, as the published codes
    gru = [name for name in one if name.startswith("rnn.")]
    assert gru and len(gru) < len(one)
    for name in one:
        if name in gru:  # one seed, one initialisation: the fixed GRU is the same after 1 and 5 epochs
            assert torch.equal(one[name], five[name]), name
            assert not torch.equal(five[name], trained[name]), name  # True trains it
        else:
            assert not torch.equal(one[name], five[name]), name  # everything else still learns
    # the option is kept by save / load and works with the parity preset
    model = TAVRNN(preset="parity", train_recurrence=False, epochs=2, seed=0).fit(small)
    assert model._config()["train_recurrence"] is False
    model.save(tmp_path / "fixed.npz")
    assert TAVRNN.load(tmp_path / "fixed.npz").get_params()["train_recurrence"] is False
    with pytest.raises(TavrnnInputError, match="train_recurrence"):
        _fast(train_recurrence="no").fit(small)


def test_distance_decoder_keeps_more_groups_apart_than_the_inner_product(tmp_path):
    """12 planted communities in a 3-d latent space: the inner product has room for at most 4 mutually
    anti-aligned directions, the distance decoder needs only 12 separate regions."""
    aris = {}
    for decoder in ("inner_product", "distance"):
        graphs, labels = dynamic_sbm(
            n_nodes=96, n_windows=4, n_communities=12, change_windows=(2,), p_in=0.8, p_out=0.0, seed=0
        )
        model = TAVRNN(z_dim=3, epochs=200, early_stopping=None, seed=0, decoder=decoder).fit(graphs)
        aris[decoder] = _ari_per_window(model.transform(graphs), labels, 12)
    print("12 communities, z 3: ARI per window", {k: np.round(v, 3) for k, v in aris.items()})
    assert min(aris["distance"]) >= 0.95 and np.mean(aris["inner_product"]) < 0.95, aris
    assert all(d > i for d, i in zip(aris["distance"], aris["inner_product"])), aris
    # the fitted decoder scores links: within a community far above across communities
    mu = model.transform(graphs)[3]
    same = labels[3][:, None] == labels[3][None, :]
    logits = model.link_logits(mu[:, None, :], mu[None, :, :])
    assert logits.shape == (96, 96) and logits[same].mean() > logits[~same].mean() + 5
    np.testing.assert_allclose(
        logits, float(model.module_.decoder_offset) - ((mu[:, None] - mu[None]) ** 2).sum(-1), rtol=1e-5, atol=1e-4
    )
    # kept by save / load (offset included); the parity preset is the published inner product; bad values refused
    model.save(tmp_path / "distance.npz")
    loaded = TAVRNN.load(tmp_path / "distance.npz")
    assert loaded.get_params()["decoder"] == "distance"
    np.testing.assert_array_equal(loaded.link_logits(mu[:5], mu[5:10]), model.link_logits(mu[:5], mu[5:10]))
    assert TAVRNN(preset="parity", decoder="distance")._config()["decoder"] == "inner_product"
    with pytest.raises(TavrnnInputError, match="decoder must be one of"):
        TAVRNN(decoder="cosine").fit(graphs)


def test_two_fits_with_one_seed_are_identical(small):
    a = _fast(epochs=8, reconstruction="sampled").fit(small)
    b = _fast(epochs=8, reconstruction="sampled").fit(small)
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    np.testing.assert_array_equal(a.transform(small), b.transform(small))
    c = TAVRNN(z_dim=4, h_dim=8, epochs=8, seed=1, device="cpu").fit(small)
    assert not np.array_equal(a.transform(small), c.transform(small))
    # the caller's torch random state is not consumed by fit
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    _fast(epochs=1).fit(small)
    assert torch.equal(torch.rand(1), expected)


def test_early_stopping(small):
    model = TAVRNN(z_dim=4, h_dim=8, epochs=400, early_stopping=10, learning_rate=0.05, seed=0).fit(small)
    loss = model.loss_history_
    # training went on while the loss improved, and stopped after 10 epochs without improvement
    assert 10 < model.n_epochs_ < 400
    assert loss[:10].min() < loss[0]
    assert loss[-10:].min() >= loss[:-10].min() * (1 - 1e-4)
    full = _fast(epochs=7, early_stopping=None).fit(small)
    assert full.n_epochs_ == 7


def test_verbose_progress_bar(small, capsys):
    _fast(verbose=False, epochs=2).fit(small)
    assert "TAVRNN" not in capsys.readouterr().err
    _fast(verbose=True, epochs=2, attention=True).fit(small)
    assert "training TAVRNN" in capsys.readouterr().err
    _fast(verbose=True, epochs=2).fit(small)
    assert "training VGRNN" in capsys.readouterr().err


def test_save_load_roundtrip(tmp_path, small):
    rng = np.random.default_rng(0)
    for kw in (dict(), dict(attention_mode="published"), dict(node_features=rng.random((30, 4)), attention=False)):
        model = _fast(**kw).fit(small)
        path = tmp_path / "model.tavrnn"
        model.save(path)
        assert path.exists()
        loaded = TAVRNN.load(path, device="cpu")
        np.testing.assert_array_equal(loaded.transform(small), model.transform(small))
        np.testing.assert_array_equal(loaded.loss_history_, model.loss_history_)
        if model.attention_weights_ is not None:
            np.testing.assert_array_equal(loaded.attention_weights_, model.attention_weights_)
        assert loaded.get_params().keys() == model.get_params().keys()
    # the file is a plain npz readable without pickle, with documented metadata
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["torch_version"] == torch.__version__ and "package_version" in meta


def test_state_roundtrip_and_device_mapping(small):
    model = _fast().fit(small)
    params, arrays = model.get_state()
    json.dumps(params)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    params["params"]["device"] = "cuda"  # as if trained on a GPU: loads on whatever is available
    restored = TAVRNN.from_state(params, arrays)
    np.testing.assert_array_equal(restored.transform(small), model.transform(small))


def test_load_rejects_other_format_versions(tmp_path, small):
    model = _fast(epochs=1).fit(small)
    params, arrays = model.get_state()
    params["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="format version"):
        TAVRNN.from_state(params, arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    with pytest.raises(TavrnnInputError, match="not a TAVRNN model file"):
        TAVRNN.load(bad)
    notnpz = tmp_path / "x.txt"
    notnpz.write_text("hello")
    with pytest.raises(TavrnnInputError, match="not a readable TAVRNN model file"):
        TAVRNN.load(notnpz)


def test_bad_input(small):
    with pytest.raises(TypeError, match="GraphSequence"):
        _fast().fit(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="ties a model to one node set"):
        _fast(node_features="identity").fit([small, small])
    with pytest.raises(TypeError, match="item 1 of the list"):
        _fast().fit([small, np.zeros((3, 4, 4))])
    with pytest.raises(ValueError, match="empty list"):
        _fast().fit([])
    with pytest.raises(TypeError, match="one GraphSequence"):
        _fast().fit(small).score_links([small, small])
    with pytest.raises(ValueError, match="bptt_windows"):
        _fast(bptt_windows=0).fit(small)
    with pytest.raises(ValueError, match="recordings_per_step"):
        _fast(recordings_per_step=1.5).fit(small)
    with pytest.raises(NotFittedError, match="not fitted"):
        TAVRNN().transform(small)
    with pytest.raises(ValueError, match="attention_mode"):
        _fast(attention_mode="softmax").fit(small)
    with pytest.raises(ValueError, match="reconstruction"):
        _fast(reconstruction="full").fit(small)
    with pytest.raises(ValueError, match="attention_window"):
        _fast(attention_window=0).fit(small)
    # windows without edges are fine
    empty = GraphSequence.from_adjacency(np.zeros((3, 10, 10)))
    assert np.all(np.isfinite(_fast().fit(empty).transform(empty)))


def _ari_per_window(emb, labels, k):
    return [
        adjusted_rand_score(labels[t], KMeans(k, n_init=10, random_state=0).fit_predict(emb[t]))
        for t in range(len(labels))
    ]


PLANTED = dict(n_nodes=64, n_windows=8, n_communities=4, change_windows=(4,), p_in=0.6, p_out=0.005)
PLANTED_EPOCHS = 300


@pytest.fixture(scope="module")
def link_scores():
    """score_links of TAVRNN (default attention) and VGRNN (attention=False) on two planted sequences, cached."""
    cache = {}

    def get(seed, attention):
        key = (seed, attention)
        if key not in cache:
            graphs, _ = dynamic_sbm(seed=seed, **PLANTED)
            model = TAVRNN(epochs=PLANTED_EPOCHS, early_stopping=None, seed=seed, attention=attention)
            cache[key] = model.score_links(graphs, n_prediction_windows=2)
        return cache[key]

    return get


def test_planted_communities_and_link_detection(link_scores):
    graphs, labels = dynamic_sbm(seed=0, **PLANTED)
    model = TAVRNN(epochs=PLANTED_EPOCHS, early_stopping=None, seed=0).fit(graphs)
    aris = _ari_per_window(model.transform(graphs), labels, 4)
    print("planted ARI per window", np.round(aris, 3))
    assert min(aris) >= 0.9, aris
    scores = link_scores(0, True)
    print("planted link scores", {k: round(v, 3) for k, v in scores.items() if isinstance(v, float)})
    assert scores["detection_auc"] >= 0.9, scores
    assert scores["detection_auc_per_window"].shape == (6,)
    assert scores["prediction_auc_per_window"].shape == (2,)
    assert scores["prediction_auc"] >= 0.75, scores


def test_fit_on_two_threads_recovers_planted_communities_and_repeats():
    # 320 nodes and two threads: fits must still be repeatable and recover the communities
    graphs, labels = dynamic_sbm(
        n_nodes=320, n_windows=5, n_communities=4, change_windows=(3,), p_in=0.15, p_out=0.002, seed=0
    )
    fits = [TAVRNN(epochs=200, early_stopping=None, seed=0, num_threads=2, device="cpu").fit(graphs) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].loss_history_, fits[1].loss_history_)
    embeddings = fits[0].transform(graphs)
    np.testing.assert_array_equal(embeddings, fits[1].transform(graphs))
    aris = _ari_per_window(embeddings, labels, 4)
    print("planted ARI per window, two threads", np.round(aris, 3))
    assert min(aris) >= 0.9, aris


def test_attention_at_least_as_good_as_vgrnn_on_links(link_scores):
    diffs = []
    for seed in (0, 1):
        with_att, without = link_scores(seed, True), link_scores(seed, False)
        diffs.append(
            (
                with_att["detection_auc"] - without["detection_auc"],
                with_att["prediction_auc"] - without["prediction_auc"],
            )
        )
    print("attention - no attention (detection AUC, prediction AUC) per seed", np.round(diffs, 3))
    mean_det, mean_pred = np.mean(diffs, axis=0)
    assert mean_det >= -0.01 and mean_pred >= -0.02, diffs


def test_thread_policy_is_scoped_and_validated():
    import torch

    from spikeinterface_tavrnn.estimator import SINGLE_THREAD_MAX_NODES

    rng = np.random.default_rng(0)
    mats = []
    for _ in range(3):
        upper = np.triu(rng.random((20, 20)) < 0.2, 1)
        mats.append((upper | upper.T).astype(np.float32))
    graphs = GraphSequence.from_adjacency(mats)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = []
        model = TAVRNN(z_dim=2, h_dim=4, epochs=1, seed=0)
        original = model._run
        model._run = lambda *a, **k: (seen.append(torch.get_num_threads()), original(*a, **k))[1]
        model.fit(graphs).transform(graphs)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
        assert TAVRNN(num_threads=None)._resolve_num_threads(graphs) is None
        big = GraphSequence([np.zeros((2, 0), dtype=np.int64)], num_nodes=SINGLE_THREAD_MAX_NODES + 1)
        assert TAVRNN()._resolve_num_threads(big) is None
        with pytest.raises(ValueError, match="num_threads"):
            TAVRNN(num_threads=0).fit(graphs)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("name", ["gated", "published", "structural", "vgrnn_sampled"])
def test_saved_models_of_earlier_versions_load(name):
    """Models saved by the release before the model rewrite load and give its embeddings (float32 rounding)."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    expected = np.load(data / f"expected_{name}.npz")
    graphs = GraphSequence.from_adjacency(list(expected["adjacency"]))
    model = TAVRNN.load(data / f"model_{name}.npz", device="cpu")
    assert model.get_params()["train_recurrence"] is True  # they were trained before the option existed
    assert model.get_params()["decoder"] == "inner_product"
    assert model.get_params()["edge_dropout"] == 0.0  # nor did they drop edges
    np.testing.assert_allclose(model.transform(graphs), expected["embeddings"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.prior_means(graphs), expected["prior_means"], rtol=1e-5, atol=1e-6)
    attention = model.attention_weights(graphs)
    if expected["attention"].size:
        np.testing.assert_allclose(attention, expected["attention"], rtol=1e-5, atol=1e-6)
    else:
        assert attention is None


def test_scikit_learn_conventions(small):
    import inspect

    from sklearn.base import clone
    from sklearn.utils.validation import check_is_fitted

    signature = inspect.signature(TAVRNN)
    assert TAVRNN().get_params() == {name: p.default for name, p in signature.parameters.items()}
    assert signature.parameters["epochs"].default == 300 and signature.parameters["seed"].default == 0
    model = _fast(z_dim=3)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(zdim=2)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    model.fit(small)
    check_is_fitted(model)
    assert "z_dim=3" in repr(model)


def test_save_is_atomic_and_damaged_files_are_refused_in_one_line(tmp_path, small):
    model = _fast(epochs=2).fit(small)
    path = tmp_path / "model.npz"
    model.save(path)
    good = path.read_bytes()

    class Boom(Exception):
        pass

    def failing_savez(*args, **kwargs):
        raise Boom()

    import spikeinterface_tavrnn.persistence as persistence

    original = persistence.np.savez
    persistence.np.savez = failing_savez
    try:
        with pytest.raises(Boom):
            model.save(path)
    finally:
        persistence.np.savez = original
    assert path.read_bytes() == good  # the old model survives a failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left behind

    def refused(name: str, data: bytes, match: str) -> None:
        target = tmp_path / name
        target.write_bytes(data)
        with pytest.raises(TavrnnInputError, match=match) as info:
            TAVRNN.load(target)
        assert "\n" not in str(info.value)

    refused("truncated.npz", good[: len(good) // 2], "not a readable TAVRNN model file")
    refused("empty.npz", b"", "not a readable TAVRNN model file")
    with pytest.raises(TavrnnInputError, match="does not exist"):
        TAVRNN.load(tmp_path / "missing.npz")

    meta, arrays = model.get_state()

    def write(name: str, meta_text: str, arrays: dict) -> bytes:
        target = tmp_path / name
        np.savez(target, __meta__=np.array(meta_text), **arrays)
        return target.read_bytes()

    refused("badjson.npz", write("x1.npz", "{not json", arrays), "damaged metadata")
    no_fitted = {k: v for k, v in meta.items() if k != "fitted"}
    refused("nofitted.npz", write("x2.npz", json.dumps(no_fitted), arrays), "incomplete or damaged")
    no_history = {k: v for k, v in arrays.items() if k != "loss_history"}
    refused("nohistory.npz", write("x3.npz", json.dumps(meta), no_history), "incomplete or damaged")
    other = dict(meta, format_version=FORMAT_VERSION + 1, package_version="9.9")
    refused("other.npz", write("x4.npz", json.dumps(other), arrays), "format version 2 .written by spikeinterface_tavrnn 9.9")
    nan = dict(arrays)
    key = next(k for k in arrays if k.startswith("state.") and arrays[k].dtype.kind == "f")
    nan[key] = np.full_like(arrays[key], np.nan)
    refused("nan.npz", write("x5.npz", json.dumps(meta), nan), "non-finite weights")
    missing_weight = {k: v for k, v in arrays.items() if k != key}
    refused("noweight.npz", write("x6.npz", json.dumps(meta), missing_weight), "do not match")


def test_one_seed_gives_the_same_fit_in_fresh_processes(tmp_path):
    import subprocess

    script = (
        "import sys, numpy as np\n"
        "from spikeinterface_tavrnn.estimator import TAVRNN\n"
        "from spikeinterface_tavrnn.graphs import GraphSequence\n"
        "rng = np.random.default_rng(0)\n"
        "mats = [np.triu(rng.random((40, 40)) < 0.15, 1) for _ in range(4)]\n"
        "g = GraphSequence.from_adjacency([(m | m.T).astype(np.float32) for m in mats])\n"
        "m = TAVRNN(z_dim=4, h_dim=8, epochs=15, device='cpu').fit(g)\n"
        "np.save(sys.argv[1], m.transform(g))\n"
    )
    import os

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    outputs = []
    for index in range(2):
        out = tmp_path / f"z{index}.npy"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, timeout=300)
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[1])
