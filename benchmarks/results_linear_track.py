"""Rat linear track (shipped dataset): classify track-segment visits, TAVRNN vs every baseline, with a null.

Protocol (TAVRNN paper, rat hippocampus): one window per visit to the first 20 %, middle 60 % or last 20 % of the
track (101 visits: 24 start / 51 middle / 26 end), zero-lag Pearson correlation of 25 ms binned spike counts per
window, graph = the top ``--density`` fraction of pairs by |r|, node features = one-hot identities (as published) or
the unthresholded |r| rows ("graph" features, as published for DishBrain). Each embedding becomes one vector per
window, then a standardised logistic regression classifies the segment with blocked 5-fold cross-validation in time
order (gap of one visit on each side of every test block) and a label-permutation null.

Window readouts: ``mean`` averages node embeddings over nodes (the usual graph-level readout); ``flat`` concatenates
the node embeddings of the window (N x d values). The units are the same in every window, so ``flat`` is a valid
window vector and keeps *which* unit sits where; ``mean`` throws that away.

Controls: ``rates`` (each unit's firing rate in the window, no graph at all: place cells code position by rate, so
this is the "is the graph needed?" control) and ``duration`` (log visit length only: visits to the track ends last
longer, so any feature that tracks window length could classify without knowing position).

Usage::

    python benchmarks/results_linear_track.py                 # 3 seeds, 100 epochs
    python benchmarks/results_linear_track.py --quick         # 1 seed, 20 epochs, 20 permutations
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..n-1)")
    parser.add_argument("--epochs", type=int, default=100, help="TAVRNN/VGRNN epochs (early stopping patience 50)")
    parser.add_argument("--vgae-epochs", type=int, default=50, help="epochs of each per-window VGAE")
    parser.add_argument("--density", type=float, default=0.15, help="fraction of pairs kept as edges")
    parser.add_argument("--permutations", type=int, default=100, help="label permutations per score")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 20 epochs, 20 permutations")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="output folder")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.vgae_epochs, args.permutations = 1, 20, 10, 20
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.baselines import embed
    from spikeinterface_tavrnn.evaluation import classify_windows, mean_ci, window_vectors

    sorting, position = st.load_linear_track()
    windows = st.linear_track_visit_windows(position)
    spikes = st.SpikeTrains.from_sorting(sorting)
    labels = np.asarray(windows.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # partial last 25 ms bin of each visit is not binned
        conn = st.compute_connectivity(spikes, windows, method="pearson", bin_ms=25.0, verbose=False)
    graphs = conn.to_graphs(density=args.density, verbose=False)
    duration = np.asarray(windows.stops) - np.asarray(windows.starts)
    rates = np.zeros((len(windows), spikes.num_units))
    for u in range(spikes.num_units):
        s = spikes.spike_times_s(u)
        rates[:, u] = (np.searchsorted(s, windows.stops) - np.searchsorted(s, windows.starts)) / duration

    seeds = list(range(args.seeds))
    model = dict(epochs=args.epochs, early_stopping=50)
    # (row name, embed method or callable, embed kwargs, readouts, seeded)
    cases = [
        ("rates (no graph)", lambda s: rates, ["window"], False),
        ("duration (control)", lambda s: np.log(duration)[:, None], ["window"], False),
        ("graph_stats", lambda s: embed(graphs, "graph_stats"), ["window"], False),
        ("connectivity_pca", lambda s: embed(graphs, "connectivity_pca", seed=s), ["window"], False),
        ("connectivity_pca (node)", lambda s: embed(graphs, "connectivity_pca", seed=s, level="node"),
         ["mean", "flat"], False),
        ("spectral", lambda s: embed(graphs, "spectral", seed=s), ["mean", "flat"], False),
        ("vgae", lambda s: embed(graphs, "vgae", seed=s, epochs=args.vgae_epochs, num_threads=args.threads),
         ["mean", "flat"], True),
        ("vgrnn (identity)", lambda s: embed(graphs, "vgrnn", seed=s, node_features="identity", **model),
         ["mean", "flat"], True),
        ("tavrnn (identity)", lambda s: embed(graphs, "tavrnn", seed=s, node_features="identity", **model),
         ["mean", "flat"], True),
        ("tavrnn_window w=3 (identity)",
         lambda s: embed(graphs, "tavrnn_window", seed=s, node_features="identity", attention_window=3, **model),
         ["mean", "flat"], True),
        ("vgrnn (abs-r rows)", lambda s: embed(graphs, "vgrnn", seed=s, node_features="graph", **model),
         ["mean", "flat"], True),
        ("tavrnn (abs-r rows)", lambda s: embed(graphs, "tavrnn", seed=s, node_features="graph", **model),
         ["mean", "flat"], True),
    ]
    raw: dict = {}
    for name, fn, readouts, seeded in cases:
        emb_cache = None
        for seed in seeds:
            t0 = time.perf_counter()
            if seeded or emb_cache is None:
                emb_cache = np.asarray(fn(seed), dtype=np.float64)
                fit_s = time.perf_counter() - t0
            for ro in readouts:
                if ro == "flat":
                    x = emb_cache.reshape(emb_cache.shape[0], -1)
                elif ro == "window":
                    x = emb_cache
                else:
                    x = window_vectors(emb_cache, ro)
                res = classify_windows(x, labels, windows=windows, gap=1, n_splits=5,
                                       n_permutations=args.permutations, seed=seed)
                entry = raw.setdefault(f"{name} | {ro}", {"balanced_accuracy": [], "accuracy": [], "f1": [],
                                                           "p_value": [], "null_mean": [], "time_s": []})
                entry["balanced_accuracy"].append(res.balanced_accuracy)
                entry["accuracy"].append(res.accuracy)
                entry["f1"].append(res.f1)
                entry["p_value"].append(res.p_value)
                entry["null_mean"].append(float(np.mean(res.null["balanced_accuracy"])) if args.permutations else
                                          float("nan"))
                entry["time_s"].append(fit_s)
            print(f"  {name}: seed {seed} done ({fit_s:.1f} s)", flush=True)

    lines = [
        f"Linear track, {len(windows)} visits ({', '.join(f'{c} {n}' for c, n in zip(*np.unique(labels, return_counts=True)))}), "
        f"{spikes.num_units} units, Pearson 25 ms, density {args.density}, seeds {seeds}, epochs {args.epochs}, "
        f"{args.permutations} label permutations; chance balanced accuracy 0.333.",
        "",
        "| method | readout | balanced acc. (mean [95% CI]) | accuracy | macro F1 | null mean | p (max over seeds) | embed s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, e in raw.items():
        name, ro = key.split(" | ")
        m, lo, hi = mean_ci(e["balanced_accuracy"])
        ci = f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "(deterministic)" if len(seeds) > 1 else ""
        lines.append(
            f"| {name} | {ro} | {m:.3f} {ci} | {np.mean(e['accuracy']):.3f} | {np.mean(e['f1']):.3f} | "
            f"{np.mean(e['null_mean']):.3f} | {np.max(e['p_value']):.3f} | {np.mean(e['time_s']):.1f} |"
        )
    wall = time.perf_counter() - t_start
    lines += ["", f"Wall time: {wall:.0f} s."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"linear_track{suffix}.md").write_text(table + "\n")
    (out / f"linear_track{suffix}.json").write_text(json.dumps(
        {"args": vars(args), "n_windows": len(windows), "n_units": spikes.num_units, "results": raw,
         "wall_s": wall}, indent=1))


if __name__ == "__main__":
    main()
