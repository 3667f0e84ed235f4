"""One model across recordings: do held-out cultures land in the same embedding space?

EPA plate MW1007-53 (Cotterill et al. 2016): each of the 48 wells is an independent culture, recorded at several days
in vitro (DIV). Every well with at least 4 electrodes of >= 20 spikes is one recording: STTC (dt 10 ms) in 120 s
windows, graph = top 30 % of pairs by |STTC|, firing rates carried. Protocol (fixed before any tuning): for each seed
``s`` the 48 wells are split at random into two halves with ``np.random.default_rng(s)`` (a well's recordings at both
ages stay on one side), and each half is used once for training and once held out. A single model with
``node_features="structural"`` is trained on the training wells of both ages (DIV ``--days``), every well is
embedded, and a standardised logistic regression on each recording's summary (mean and standard deviation over units
and windows) trained on the training wells predicts the age of the held-out wells, which the model never saw. Scored
by balanced accuracy; ``--seeds`` seeds x 2 directions, mean and Student-t 95 % interval.

Compared in the same run, with the same classifier and splits:

* ``TAVRNN shared``: the package defaults with ``--epochs`` (gated attention until docs/results.md section 8; since
  then attention is off, so it equals ``VGRNN shared``);
* ``VGRNN shared``: the same without attention (``attention=False`` pinned);
* ``TAVRNN shared, gated attention`` (only with ``--models``): the defaults with ``attention=True`` (the gated
  attention the first rows of ``TAVRNN shared`` were measured with);
* ``VGRNN shared, edge weights`` / ``VGRNN shared, no edge weights`` (only with ``--models``): ``VGRNN shared``
  with ``use_edge_weight`` pinned (True: the defaults since docs/results.md section 9; False: those of sections 7-8);
* ``VGRNN shared, edge dropout`` / ``VGRNN shared, no edge dropout`` (only with ``--models``): ``VGRNN shared``
  with ``edge_dropout`` pinned (0.2: the defaults since docs/results.md section 10; 0: those of sections 7-9);
* ``input features (no model)``: the summary of the model's own input, its 12 structural features (degree,
  clustering, |STTC| profile, firing rate): what the inputs already tell;
* ``TAVRNN shared + input features``: both summaries side by side (do the embeddings add anything to their input?);
* ``TAVRNN shared, 1 epoch``: the same model after one epoch, nearly untrained (what training adds);
* ``TAVRNN shared, GRU untrained`` (only with ``--models``): ``train_recurrence=False`` with the inner-product
  decoder (as measured in docs/results.md section 6), the graph GRU kept at its
  random initialisation as in the published codes;
* ``TAVRNN shared, distance decoder`` (only with ``--models``): ``decoder="distance"``;
* ``TAVRNN shared, shuffled training labels``: the classifier trained on permuted training ages (a null, ~0.5).

Paired over the same splits: each model against the input features (paired t-test and Wilcoxon signed-rank test).

Usage::

    python benchmarks/results_cross_recording.py             # DIV 5 vs 14, 10 seeds, 20 epochs
    python benchmarks/results_cross_recording.py --days 7 12
    python benchmarks/results_cross_recording.py --quick     # 1 seed, 5 epochs (smoke test)
    python benchmarks/results_cross_recording.py --models "TAVRNN shared" "TAVRNN shared, GRU untrained"
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TAVRNN_SHARED_DATA", ROOT.parent / "shared" / "data")) / "epa_multiwell_plate53"


#: Trained models: name -> TAVRNN parameters beyond the common ones ("TAVRNN shared" always runs).
MODELS = {
    "TAVRNN shared": {},
    "VGRNN shared": {"attention": False},
    "TAVRNN shared, gated attention": {"attention": True},
    "VGRNN shared, edge weights": {"attention": False, "use_edge_weight": True, "edge_dropout": 0.0},
    "VGRNN shared, no edge weights": {"attention": False, "use_edge_weight": False, "edge_dropout": 0.0},
    "VGRNN shared, edge dropout": {"attention": False, "edge_dropout": 0.2},
    "VGRNN shared, no edge dropout": {"attention": False, "edge_dropout": 0.0},
    "TAVRNN shared, 1 epoch": {},
    # variants pin the settings they were measured with, whatever today's defaults
    "TAVRNN shared, GRU untrained": {"attention": True, "train_recurrence": False, "decoder": "inner_product",
                                     "edge_dropout": 0.0},
    "TAVRNN shared, distance decoder": {"attention": True, "decoder": "distance", "train_recurrence": False,
                                        "edge_dropout": 0.0},
}


def well_recordings(data: Path, days: list[int], min_spikes: int = 20, min_units: int = 4):
    """(graphs, age, well name) of every well with enough active electrodes, for each DIV."""
    import spikeinterface_tavrnn as st

    graphs, ages, wells = [], [], []
    for day in days:
        path = next(data.glob(f"*DIV{day:02d}*.h5"))
        spikes = st.SpikeTrains.from_sorting(st.read_sorting(path), label_property="well")
        for well in np.unique(spikes.unit_labels):
            sub = spikes.select_units(spikes.unit_ids[spikes.unit_labels == well])
            if (sub.spike_counts >= min_spikes).sum() < min_units:
                continue
            sub = sub.active_units(min_spikes=min_spikes)
            windows = st.sliding_windows(sub.t_start_s, sub.t_stop_s, size_s=120.0, step_s=120.0)
            connectivity = st.compute_connectivity(sub, windows, method="sttc", dt_ms=10.0, verbose=False)
            graphs.append(connectivity.to_graphs(density=0.3, verbose=False))
            ages.append(day)
            wells.append(str(well))
    return graphs, np.array(ages), np.array(wells)


def summary(x: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over windows and units of a (T, N, F) array."""
    return np.concatenate([x.mean(axis=(0, 1)), x.std(axis=(0, 1))])


def balanced_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, y_train: np.ndarray | None = None) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = y[train] if y_train is None else y_train
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[train], labels)
    return float(balanced_accuracy_score(y[~train], classifier.predict(x[~train])))


def well_splits(wells: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The seed's two training masks: a random half of the wells, then the other half."""
    names = np.unique(wells)
    first = np.random.default_rng(seed).permutation(names)[: len(names) // 2]
    train = np.isin(wells, first)
    return {"half 1 trains": train, "half 2 trains": ~train}


def paired_tests(raw: dict[str, list[float]], baseline: str) -> list[dict]:
    """Each method against ``baseline`` over the same splits: mean difference, t-interval, t-test and Wilcoxon p."""
    from scipy import stats

    from spikeinterface_tavrnn.evaluation import mean_ci

    out = []
    for name, values in raw.items():
        if name == baseline or len(values) < 2:
            continue
        diff = np.asarray(values) - np.asarray(raw[baseline][: len(values)])
        mean, low, high = mean_ci(diff)
        t_p = float(stats.ttest_rel(values, raw[baseline][: len(values)]).pvalue) if np.any(diff != 0) else 1.0
        w_p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
        out.append({"method": name, "baseline": baseline, "n": len(diff), "mean_diff": mean, "low": low,
                    "high": high, "t_p": t_p, "wilcoxon_p": w_p, "wins": int((diff > 0).sum()),
                    "losses": int((diff < 0).sum())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs=2, default=[5, 14])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", nargs="+", default=["TAVRNN shared", "VGRNN shared", "TAVRNN shared, 1 epoch"],
                        choices=list(MODELS), help="trained models (TAVRNN shared always runs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 5 epochs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = 1, 5
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    from spikeinterface_tavrnn.estimator import TAVRNN
    from spikeinterface_tavrnn.evaluation import mean_ci
    from spikeinterface_tavrnn.structural import structural_node_features

    graphs, ages, wells = well_recordings(Path(args.data), args.days)
    info = {
        "recordings": len(graphs),
        "wells": int(len(np.unique(wells))),
        "per_age": {int(d): int((ages == d).sum()) for d in args.days},
        "units": [int(g.num_nodes) for g in graphs],
        "windows": [len(g) for g in graphs],
    }
    print(f"{len(graphs)} well recordings of {info['wells']} wells ({info['per_age']}), "
          f"{min(info['units'])}-{max(info['units'])} units, {min(info['windows'])}-{max(info['windows'])} windows")
    # the model's own input: its structural features (the estimator standardises them, an affine map per feature that
    # the classifier's scaler undoes on the summaries)
    features = np.array([summary(structural_node_features(g)[0]) for g in graphs])
    trained = ["TAVRNN shared"] + [m for m in args.models if m != "TAVRNN shared"]
    names = trained + ["input features (no model)", "TAVRNN shared + input features",
                       "TAVRNN shared, shuffled training labels"]
    raw: dict[str, list[float]] = {name: [] for name in names}
    epochs_run: dict[str, list[int]] = {name: [] for name in trained if name != "TAVRNN shared, 1 epoch"}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed + 1000)
        for split, train in well_splits(wells, seed).items():
            embedded = {}
            for name in trained:
                epochs = 1 if name == "TAVRNN shared, 1 epoch" else args.epochs
                model = TAVRNN(node_features="structural", z_dim=8, h_dim=32, epochs=epochs, recordings_per_step=4,
                               seed=seed, **MODELS[name])  # fmt: skip
                model.fit([graphs[i] for i in np.flatnonzero(train)])
                if name in epochs_run:
                    epochs_run[name].append(int(model.n_epochs_))
                embedded[name] = np.array([summary(e) for e in model.transform(graphs)])
                raw[name].append(balanced_accuracy(embedded[name], ages, train))
            raw["input features (no model)"].append(balanced_accuracy(features, ages, train))
            raw["TAVRNN shared + input features"].append(
                balanced_accuracy(np.hstack([embedded["TAVRNN shared"], features]), ages, train)
            )
            raw["TAVRNN shared, shuffled training labels"].append(
                balanced_accuracy(embedded["TAVRNN shared"], ages, train, y_train=rng.permutation(ages[train]))
            )
            print(f"seed {seed}, {split}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in raw.items()), flush=True)

    n = len(raw["TAVRNN shared"])
    lines = [
        f"Held-out wells classified by age (DIV {args.days[0]} vs {args.days[1]}), balanced accuracy, mean and 95 % "
        f"t-interval over {args.seeds} seeds x 2 directions = {n} random half-splits of the {info['wells']} wells "
        f"({len(graphs)} well recordings: {info['per_age']}).",
        "",
        "| method | balanced accuracy | 95 % interval |",
        "|---|---|---|",
    ]
    for name, values in raw.items():
        mean, low, high = mean_ci(values)
        lines.append(f"| {name} | {mean:.3f} | {low:.3f} - {high:.3f} |")
    tests = paired_tests(raw, "input features (no model)")
    lines += ["", "Paired against the input features over the same splits (difference, 95 % t-interval, paired t-test p, "
              "Wilcoxon signed-rank p, splits better / worse):", "",
              "| method | minus input features | t-test p | Wilcoxon p | better / worse |", "|---|---|---|---|---|"]
    for r in tests:
        lines.append(f"| {r['method']} | {r['mean_diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] | {r['t_p']:.3g} "
                     f"| {r['wilcoxon_p']:.3g} | {r['wins']} / {r['losses']} |")
    wall = time.perf_counter() - t_start
    mean_epochs = {k: float(np.mean(v)) for k, v in epochs_run.items() if v}
    lines += ["", f"At most {args.epochs} epochs (early stopping as the defaults; mean epochs run: "
              + ", ".join(f"{k} {v:.0f}" for k, v in mean_epochs.items())
              + f"), h 32, z 8, 4 recordings per step; wall time {wall:.0f} s."]
    table = "\n".join(lines)
    print(table)
    from _results_files import write_results

    write_results(args.out, "cross_recording", args.quick, table,
                  {"args": vars(args), "info": info, "results": raw, "paired": tests, "epochs_run": epochs_run,
                   "wall_s": wall})  # fmt: skip


if __name__ == "__main__":
    main()
