"""48-well MEA plate (EPA plate MW1007-53): do electrode embeddings cluster by well, and how does that change with DIV?

Each well is an independent culture, so one graph over all active electrodes of the plate has (up to) 48 groups whose
members can only be functionally connected to each other. For every day in vitro: electrodes with at least
``--min-spikes`` spikes, sliding windows of 300 s with 150 s step, spike time tiling coefficient (dt 10 ms), graph =
the top ``--density`` fraction of pairs by |STTC|. The default density 0.02 is the fraction of pairs that lie within
a well (16 electrodes per well, 48 wells: ~1/48 of all pairs): it is the sparsity a perfect well-separated graph
would have, fixed *a priori* rather than tuned on the scores, and it transfers to any plate through the number of
electrodes per well. Then k-means (k = number of wells present) on each window's node embeddings, scored against the
wells by ARI and NMI, averaged over windows; the label-permutation null (same permutation in every window) gives a
p-value for the mean. All methods embed in the same dimension (``--dim``, 8 as published).

Also reported: ``within-well edge precision``, the fraction of graph edges that join two electrodes of the same
well (how much well structure the thresholded graph itself carries).

Usage::

    python benchmarks/results_multiwell.py                  # DIV 5, 7, 9, 12, 14; 3 seeds; 100 epochs
    python benchmarks/results_multiwell.py --quick          # DIV 7 and 14, 1 seed, 20 epochs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "epa_multiwell_plate53"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100, help="TAVRNN/VGRNN epochs (early stopping patience 50)")
    parser.add_argument("--vgae-epochs", type=int, default=50)
    parser.add_argument("--days", type=int, nargs="+", default=[2, 5, 7, 9, 12, 14])
    parser.add_argument("--density", type=float, default=0.02)
    parser.add_argument("--min-spikes", type=int, default=50)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--permutations", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--quick", action="store_true", help="smoke run: DIV 7 and 14, 1 seed, 20 epochs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.vgae_epochs, args.days, args.permutations = 1, 20, 10, [7, 14], 10
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.baselines import embed
    from spikeinterface_tavrnn.evaluation import cluster_nodes, mean_ci

    seeds = list(range(args.seeds))
    model = dict(epochs=args.epochs, early_stopping=50)
    cases = [
        ("connectivity_pca (node)", "connectivity_pca", {"level": "node"}, False),
        ("spectral", "spectral", {}, False),
        ("vgae", "vgae", {"epochs": args.vgae_epochs, "num_threads": args.threads}, True),
        ("vgrnn (adjacency)", "vgrnn", {"node_features": "adjacency", **model}, True),
        ("tavrnn (identity)", "tavrnn", {"node_features": "identity", **model}, True),
        ("tavrnn (adjacency)", "tavrnn", {"node_features": "adjacency", **model}, True),
        ("tavrnn (abs-STTC rows)", "tavrnn", {"node_features": "graph", **model}, True),
    ]
    raw: dict = {}
    info: dict = {}
    for day in args.days:
        path = next(Path(args.data).glob(f"*DIV{day:02d}*.h5"))
        all_spikes = st.SpikeTrains.from_sorting(st.read_sorting(path), label_property="well")
        spikes = all_spikes.active_units(min_spikes=args.min_spikes)
        wells = np.asarray(spikes.unit_labels)
        n_wells = int(np.unique(wells).size) if spikes.num_units else 0
        info[day] = {"electrodes_total": all_spikes.num_units, "electrodes_active": spikes.num_units,
                     "wells": n_wells}
        if spikes.num_units < 20 or n_wells < 2:
            print(f"DIV {day}: {spikes.num_units} active electrodes in {n_wells} wells: skipped (nearly silent)")
            continue
        windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=300.0, step_s=150.0)
        conn = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=10.0, verbose=False)
        graphs = conn.to_graphs(density=args.density, verbose=False)
        same = wells[:, None] == wells[None, :]
        prec = [float((same & (graphs.to_dense(t) != 0)).sum() / max((graphs.to_dense(t) != 0).sum(), 1))
                for t in range(len(graphs))]
        info[day].update(windows=len(windows), edge_precision=float(np.mean(prec)),
                         within_pair_fraction=float((same.sum() - len(wells)) / (len(wells) * (len(wells) - 1))))
        print(f"DIV {day}: {spikes.num_units} electrodes, {n_wells} wells, {len(windows)} windows, "
              f"within-well edge precision {np.mean(prec):.3f}", flush=True)
        for name, method, kw, seeded in cases:
            emb = None
            for seed in seeds:
                t0 = time.perf_counter()
                if seeded or emb is None:
                    emb = embed(graphs, method, seed=seed, dim=args.dim, **kw)
                    fit_s = time.perf_counter() - t0
                res = cluster_nodes(emb, wells, n_permutations=args.permutations, seed=seed)
                e = raw.setdefault(str(day), {}).setdefault(name, {"ari": [], "nmi": [], "silhouette": [],
                                                                   "p_ari": [], "time_s": []})
                for m in ("ari", "nmi", "silhouette"):
                    e[m].append(res.mean_scores[m])
                e["p_ari"].append(res.mean_p_values["ari"])
                e["time_s"].append(fit_s)
            print(f"  {name}: ARI {np.mean(e['ari']):.3f} NMI {np.mean(e['nmi']):.3f} ({fit_s:.1f} s)", flush=True)

    def fmt(values):
        m, lo, hi = mean_ci(values)
        return f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{m:.3f}"

    lines = [f"EPA plate MW1007-53, STTC dt 10 ms, 300 s windows / 150 s step, density {args.density}, "
             f">= {args.min_spikes} spikes, dim {args.dim}, seeds {seeds}, epochs {args.epochs}, "
             f"{args.permutations} node-label permutations.", "",
             "| DIV | active electrodes | wells | windows | within-well pair fraction | within-well edge precision |",
             "|---|---|---|---|---|---|"]
    for day in args.days:
        i = info[day]
        if "windows" in i:
            lines.append(f"| {day} | {i['electrodes_active']} / {i['electrodes_total']} | {i['wells']} | {i['windows']} | "
                         f"{i['within_pair_fraction']:.3f} | {i['edge_precision']:.3f} |")
        else:
            lines.append(f"| {day} | {i['electrodes_active']} / {i['electrodes_total']} | {i['wells']} | skipped (nearly silent) | | |")
    lines += ["", "| DIV | method | ARI (mean [95% CI]) | NMI | silhouette | p (ARI, max over seeds) | embed s |",
              "|---|---|---|---|---|---|---|"]
    for day, methods in raw.items():
        for name, e in methods.items():
            lines.append(f"| {day} | {name} | {fmt(e['ari'])} | {np.mean(e['nmi']):.3f} | "
                         f"{np.mean(e['silhouette']):.3f} | {np.max(e['p_ari']):.3f} | {np.mean(e['time_s']):.1f} |")
    wall = time.perf_counter() - t_start
    lines += ["", f"Wall time: {wall:.0f} s."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"multiwell{suffix}.md").write_text(table + "\n")
    (out / f"multiwell{suffix}.json").write_text(json.dumps({"args": vars(args), "info": info, "results": raw,
                                                            "wall_s": wall}, indent=1))


if __name__ == "__main__":
    main()
