"""The benchmark scripts' protocols: DBLP edge split (shared/data/README.md) and the cross-recording well split."""

import importlib.util
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_snapshots(n_nodes: int, n_windows: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_windows):
        upper = np.triu(rng.random((n_nodes, n_nodes)) < 0.1, 1)
        out.append(upper | upper.T)
    return out


def test_dblp_split_follows_the_data_readme_protocol():
    dblp = _script("results_dblp")
    snapshots = _random_snapshots(40, 5, seed=3)
    data = dblp.split(snapshots, seed=0)
    for t, full in enumerate(snapshots):
        edges = {tuple(e) for e in np.argwhere(np.triu(full, 1))}
        positives = {tuple(e) for e in data["test_pos"][t]}
        train = {tuple(e) for e in np.argwhere(np.triu(data["train"][t], 1))}
        assert len(positives) == int(np.floor(0.10 * len(edges)))  # 10 % hidden as test positives
        assert len(train) == len(edges) - len(positives) - int(np.floor(0.05 * len(edges)))  # 5 % validation dropped
        assert positives <= edges and train <= edges and not positives & train
        assert (data["train"][t] == data["train"][t].T).all()
        negatives = data["test_neg"][t]
        assert len(negatives) == len(positives)
        assert not full[negatives[:, 0], negatives[:, 1]].any() and (negatives[:, 0] != negatives[:, 1]).all()
    for t, (pos, neg) in data["prediction"].items():  # one-step prediction: every edge of the last 3 snapshots
        assert t >= len(snapshots) - 3 and len(pos) == len(neg) == int(np.triu(snapshots[t], 1).sum())
        assert not snapshots[t][neg[:, 0], neg[:, 1]].any()
    again = dblp.split(snapshots, seed=0)
    assert all((a == b).all() for a, b in zip(data["test_neg"], again["test_neg"]))  # seeded


def test_dblp_edge_history_scores_a_persistent_graph_perfectly():
    dblp = _script("results_dblp")
    snapshots = [_random_snapshots(40, 1, seed=1)[0]] * 6  # the same graph every year
    scores = dblp.evaluate_edge_history(dblp.split(snapshots, seed=0))
    assert scores["detection_auc"] == 100.0 and scores["prediction_auc"] == 100.0


def test_cross_recording_split_keeps_each_well_on_one_side():
    cross = _script("results_cross_recording")
    wells = np.array(["A1", "A1", "A2", "B3", "B3", "C4", "C5", "D6"])
    splits = cross.well_splits(wells, seed=4)
    first, second = splits.values()
    assert (first == ~second).all()
    for well in np.unique(wells):
        assert len(set(first[wells == well])) == 1
    assert len(np.unique(wells[first])) == len(np.unique(wells)) // 2
