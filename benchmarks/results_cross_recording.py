"""One model across recordings: do held-out cultures land in the same embedding space?

EPA plate MW1007-53 (Cotterill et al. 2016): each of the 48 wells is an independent culture, recorded at several days
in vitro (DIV). Every well with at least 4 electrodes of >= 20 spikes is one recording: STTC (dt 10 ms) in 120 s
windows, graph = top 30 % of pairs by |STTC|, firing rates carried. For each of two splits (train on the wells of
rows A-C, test on D-F, and the reverse), a single model with ``node_features="structural"`` is trained on the
training wells of both ages (DIV ``--days``), every well is embedded, and a standardised logistic regression on each
recording's embedding summary (mean and standard deviation over units and windows, 2 x z_dim numbers) trained on the
training wells predicts the age of the held-out wells, which the model never saw. Scored by balanced accuracy.

Compared, with the same classifier and splits:

* ``TAVRNN shared``: gated attention (the package default);
* ``VGRNN shared``: the same without attention;
* ``structural features (no model)``: the summary of the standardised input features themselves (mean and std of the
  12 features): what the inputs already tell;
* ``TAVRNN, shuffled labels``: the classifier trained on permuted training ages (a null; should be ~0.5).

Seeds ``0 .. --seeds - 1`` (model initialisation and the shuffles); mean and Student-t 95 % interval over
seeds x splits.

Usage::

    python benchmarks/results_cross_recording.py             # DIV 5 vs 14, 5 seeds, 20 epochs
    python benchmarks/results_cross_recording.py --days 7 12
    python benchmarks/results_cross_recording.py --quick     # 1 seed, 5 epochs (smoke test)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "epa_multiwell_plate53"


def well_recordings(data: Path, days: list[int], min_spikes: int = 20, min_units: int = 4):
    """(graphs, age, well row) of every well with enough active electrodes, for each DIV."""
    import spikeinterface_tavrnn as st

    graphs, ages, rows = [], [], []
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
            rows.append(str(well)[0])
    return graphs, np.array(ages), np.array(rows)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs=2, default=[5, 14])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
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

    graphs, ages, rows = well_recordings(Path(args.data), args.days)
    splits = {"train A-C, test D-F": np.isin(rows, ["A", "B", "C"])}
    splits["train D-F, test A-C"] = ~splits["train A-C, test D-F"]
    info = {
        "recordings": len(graphs),
        "per_age": {int(d): int((ages == d).sum()) for d in args.days},
        "units": [int(g.num_nodes) for g in graphs],
        "windows": [len(g) for g in graphs],
    }
    print(f"{len(graphs)} well recordings ({info['per_age']}), {min(info['units'])}-{max(info['units'])} units, "
          f"{min(info['windows'])}-{max(info['windows'])} windows")
    raw: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for split, train in splits.items():
            fitted = {}
            for name, attention in (("TAVRNN shared", True), ("VGRNN shared", False)):
                model = TAVRNN(node_features="structural", attention=attention, z_dim=8, h_dim=32,
                               epochs=args.epochs, recordings_per_step=4, seed=seed)  # fmt: skip
                model.fit([graphs[i] for i in np.flatnonzero(train)])
                x = np.array([summary(e) for e in model.transform(graphs)])
                raw.setdefault(name, []).append(balanced_accuracy(x, ages, train))
                fitted[name] = (model, x)
            model, x = fitted["TAVRNN shared"]
            raw.setdefault("TAVRNN shared, shuffled training labels", []).append(
                balanced_accuracy(x, ages, train, y_train=rng.permutation(ages[train]))
            )
            features = np.array([summary(model._structural(g)) for g in graphs])
            raw.setdefault("structural features (no model)", []).append(balanced_accuracy(features, ages, train))
            print(f"seed {seed}, {split}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in raw.items()), flush=True)

    lines = [
        f"Held-out wells classified by age (DIV {args.days[0]} vs {args.days[1]}), balanced accuracy, mean and 95 % "
        f"interval over {args.seeds} seeds x 2 splits ({len(graphs)} well recordings: {info['per_age']}).",
        "",
        "| method | balanced accuracy | 95 % interval |",
        "|---|---|---|",
    ]
    for name, values in raw.items():
        mean, low, high = mean_ci(values)
        lines.append(f"| {name} | {mean:.3f} | {low:.3f} - {high:.3f} |")
    wall = time.perf_counter() - t_start
    lines += ["", f"{args.epochs} epochs, h 32, z 8, 4 recordings per step; wall time {wall:.0f} s."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"cross_recording{suffix}.md").write_text(table + "\n")
    (out / f"cross_recording{suffix}.json").write_text(
        json.dumps({"args": vars(args), "info": info, "results": raw, "wall_s": wall}, indent=1)
    )


if __name__ == "__main__":
    main()
