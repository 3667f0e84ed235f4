"""hiPSC cultures (50 recordings, 60-electrode MEAs): do recording-level embedding statistics order cultures by DIV?

Different recordings have different electrodes, so node embeddings of separately fitted models are not comparable
(their axes are arbitrary; a mean embedding vector means nothing across models). What *is* comparable is a statistic
of each recording's embedding that is invariant to node order and to rotations of the latent space. For each
recording: the first 298 s (the shortest recording ends at 298.2 s; all recordings get the same 9 windows), electrodes with at
least ``--min-spikes`` spikes in it, 58 s windows with 30 s step, STTC (dt 10 ms), graph = top
``--density`` of pairs by |STTC| (a fixed density, so the graph's edge count carries no activity level), node
features = unthresholded |STTC| rows (they carry the coupling strength). One TAVRNN per recording and seed, then
rotation-invariant statistics of its posterior means z (T, N, d), with ``decoder="inner_product"`` (the statistics
are norms and cosines, which mean link confidence and link partners under that decoder):

* ``emb_norm``: mean ||z|| over windows and nodes (inner-product decoder: large norms = confident links);
* ``emb_cohesion``: mean pairwise cosine similarity of node embeddings within a window (a network that fires as one
  block has aligned embeddings);
* ``emb_stability``: mean cosine similarity of each node's embedding between consecutive windows;
* ``attention_entropy``: mean normalised entropy of the attention rows (1 = uniform over the history).

Simple baselines from the same data: ``log_rate`` (mean log10 firing rate), ``mean_sttc`` (mean STTC over pairs and
windows), ``frac_sttc>0.1`` (fraction of pairs with STTC > 0.1: a fixed-threshold graph density), ``n_active``.

Tests: Spearman rho of each score with DIV across the recordings, two-sided permutation p-value (DIV shuffled); the
partial Spearman given ``log_rate`` (does the score order by DIV beyond what firing rate already does?); and within
cultures recorded on several days, the concordance (fraction of same-culture recording pairs whose score order
agrees with their DIV order) with a null that shuffles DIV within each culture. Seed-averaged scores per recording.

Usage::

    python benchmarks/results_hipsc.py              # 50 recordings, 3 seeds, 60 epochs
    python benchmarks/results_hipsc.py --quick      # 12 recordings, 1 seed, 20 epochs
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hipsc_cultures"


def _rank(x):
    import scipy.stats

    return scipy.stats.rankdata(x)


def spearman(x, y):
    rx, ry = _rank(x), _rank(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def partial_spearman(x, y, control):
    rx, ry, rc = _rank(x), _rank(y), _rank(control)
    design = np.column_stack([np.ones_like(rc), rc])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    return float(np.corrcoef(res_x, res_y)[0, 1])


def concordance(score, div, culture):
    agree = total = 0
    for c in np.unique(culture):
        idx = np.flatnonzero(culture == c)
        for a in range(idx.size):
            for b in range(a + 1, idx.size):
                i, j = idx[a], idx[b]
                if div[i] == div[j]:
                    continue
                total += 1
                agree += np.sign(score[i] - score[j]) == np.sign(div[i] - div[j])
    return agree / total if total else np.nan, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60, help="TAVRNN epochs (small graphs: 9 windows x ~30 nodes)")
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--min-spikes", type=int, default=10)
    parser.add_argument("--permutations", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 recordings, 1 seed, 20 epochs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.permutations = 1, 20, 200
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.evaluation import mean_ci

    with open(Path(args.data) / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    if args.quick:
        rows = rows[:12]
    seeds = list(range(args.seeds))
    scores: dict[str, list] = {}
    per_seed: dict[str, list] = {}
    div, culture = [], []
    for k, row in enumerate(rows):
        spikes = st.SpikeTrains.from_sorting(st.read_sorting(Path(args.data) / row["file"]))
        t0 = spikes.t_start_s
        windows = st.sliding_windows(t0, t0 + 298.0, size_s=58.0, step_s=30.0)  # 9 windows; shortest file ends at 298.18 s
        # active electrodes counted in the analysed 298 s only
        counts = np.array([np.sum((s >= t0) & (s < t0 + 298.0)) for s in
                           (spikes.spike_times_s(u) for u in range(spikes.num_units))])
        spikes = spikes.select_units(np.asarray(spikes.unit_ids)[counts >= args.min_spikes])
        conn = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=10.0, verbose=False)
        m = conn.matrices.astype(np.float64)
        iu = np.triu_indices(spikes.num_units, 1)
        pairs = m[:, iu[0], iu[1]]
        n_spk = np.array([np.sum((s >= t0) & (s < t0 + 298.0)) for s in
                          (spikes.spike_times_s(u) for u in range(spikes.num_units))])
        base = {
            "log_rate": float(np.mean(np.log10(n_spk / 298.0))),
            "mean_sttc": float(np.nanmean(pairs)),
            "frac_sttc>0.1": float(np.nanmean(pairs > 0.1)),
            "n_active": float(spikes.num_units),
        }
        graphs = conn.to_graphs(density=args.density, verbose=False)
        emb_stats = {"emb_norm": [], "emb_cohesion": [], "emb_stability": [], "attention_entropy": []}
        for seed in seeds:
            # the statistics below read norms and cosines, whose meaning is the inner product's
            model = st.TAVRNN(z_dim=8, node_features="graph", epochs=args.epochs, early_stopping=50, seed=seed,
                              decoder="inner_product", verbose=False).fit(graphs)
            z = np.asarray(model.transform(graphs), dtype=np.float64)
            norm = np.linalg.norm(z, axis=2)
            u = z / np.maximum(norm[..., None], 1e-12)
            n = z.shape[1]
            cos = np.einsum("tid,tjd->tij", u, u)
            cohesion = float(np.mean((cos.sum(axis=(1, 2)) - n) / (n * (n - 1))))
            stability = float(np.mean(np.sum(u[1:] * u[:-1], axis=2)))
            att = np.asarray(model.attention_weights_, dtype=np.float64)
            ent = []
            for t in range(1, att.shape[0]):
                p = att[t, : t + 1]
                p = p[p > 0]
                ent.append(float(-(p * np.log(p)).sum() / np.log(t + 1)))
            emb_stats["emb_norm"].append(float(norm.mean()))
            emb_stats["emb_cohesion"].append(cohesion)
            emb_stats["emb_stability"].append(stability)
            emb_stats["attention_entropy"].append(float(np.mean(ent)))
        for key, v in base.items():
            scores.setdefault(key, []).append(v)
        for key, v in emb_stats.items():
            scores.setdefault(key, []).append(float(np.mean(v)))
            per_seed.setdefault(key, []).append(v)
        div.append(float(row["DIV"]))
        culture.append(row["culture"])
        print(f"[{k + 1}/{len(rows)}] {row['file']}: DIV {row['DIV']}, {spikes.num_units} electrodes, "
              f"log_rate {base['log_rate']:.2f}, mean STTC {base['mean_sttc']:.3f}, "
              f"norm {scores['emb_norm'][-1]:.2f}", flush=True)

    div_a, cult_a = np.asarray(div), np.asarray(culture)
    rng = np.random.default_rng(0)
    perms = [rng.permutation(div_a) for _ in range(args.permutations)]
    within = []
    for _ in range(args.permutations):
        d = div_a.copy()
        for c in np.unique(cult_a):
            idx = np.flatnonzero(cult_a == c)
            d[idx] = rng.permutation(d[idx])
        within.append(d)
    log_rate = np.asarray(scores["log_rate"])
    results = {}
    for key, values in scores.items():
        x = np.asarray(values)
        rho = spearman(x, div_a)
        null = np.array([spearman(x, p) for p in perms])
        p = (np.sum(np.abs(null) >= abs(rho)) + 1) / (len(null) + 1)
        prho = partial_spearman(x, div_a, log_rate) if key != "log_rate" else float("nan")
        conc, n_pairs = concordance(x, div_a, cult_a)
        null_c = np.array([concordance(x, d, cult_a)[0] for d in within])
        # two-sided: distance from 0.5
        p_c = (np.sum(np.abs(null_c - 0.5) >= abs(conc - 0.5) - 1e-12) + 1) / (len(null_c) + 1)
        seed_rhos = [spearman(np.asarray(per_seed[key])[:, s], div_a) for s in range(len(seeds))] \
            if key in per_seed else []
        results[key] = {"rho": rho, "p": float(p), "partial_rho_given_rate": prho, "concordance": conc,
                        "n_pairs": n_pairs, "p_concordance": float(p_c), "seed_rhos": seed_rhos, "values": values}

    lines = [f"hiPSC cultures: {len(rows)} recordings ({np.unique(cult_a).size} cultures), first 298 s, 58 s / 30 s "
             f"windows, STTC dt 10 ms, density {args.density}, >= {args.min_spikes} spikes, TAVRNN z 8, |STTC|-row "
             f"features, seeds {seeds}, epochs {args.epochs}, {args.permutations} permutations.", "",
             "| score | kind | Spearman rho vs DIV | p (perm.) | rho over seeds (mean [95% CI]) | partial rho given log_rate "
             "| within-culture concordance | p (within-culture perm.) |",
             "|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        kind = "TAVRNN" if key in per_seed else "baseline"
        if r["seed_rhos"]:
            m, lo, hi = mean_ci(r["seed_rhos"])
            seed_txt = f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{m:.3f}"
        else:
            seed_txt = "(deterministic)"
        prho = "" if not np.isfinite(r["partial_rho_given_rate"]) else f"{r['partial_rho_given_rate']:.3f}"
        lines.append(f"| {key} | {kind} | {r['rho']:.3f} | {r['p']:.4f} | {seed_txt} | {prho} | "
                     f"{r['concordance']:.3f} ({r['n_pairs']} pairs) | {r['p_concordance']:.4f} |")
    wall = time.perf_counter() - t_start
    lines += ["", f"Wall time: {wall:.0f} s."]
    table = "\n".join(lines)
    print(table)
    from _results_files import write_results

    write_results(args.out, "hipsc", args.quick, table,
                  {"args": vars(args), "files": [r["file"] for r in rows], "div": div, "culture": culture,
                   "results": results, "wall_s": wall})  # fmt: skip


if __name__ == "__main__":
    main()
