"""Rat linear track (shipped dataset): classify track-segment visits; does the graph add to firing rates?

Protocol (fixed before tuning, as in ``docs/results.md``; the TAVRNN paper's rat hippocampus task): one window per
visit to the first 20 %, middle 60 % or last 20 % of the track (101 visits: 24 start / 51 middle / 26 end), zero-lag
Pearson correlation of 25 ms binned spike counts per window, graph = the top ``--density`` (0.15) fraction of pairs by
|r|, z 8, TAVRNN / VGRNN 100 epochs with early stopping (patience 50). Each embedding becomes one vector per window,
then a standardised logistic regression classifies the segment with blocked 5-fold cross-validation in time order
(gap of one visit on each side of every test block) and a label-permutation null.

Readouts: ``flat`` concatenates the node embeddings of the window (N x d values; the units are the same in every
window, so this keeps which unit sits where: the recommended readout), ``mean`` averages them over nodes.

Rows, all from the same run:

* Trained models, ``--seeds`` seeds each: TAVRNN at the estimator's defaults with gated attention switched on
  (``node_features="auto"``, i.e. the unthresholded |r| rows), TAVRNN with per-window firing rates as an extra node
  feature column (|r| rows next to each unit's log(1 + rate), z-scored per unit over windows), VGRNN
  (``attention=False``: since docs/results.md section 8, the estimator's defaults) and per-window VGAE; with
  ``--models``, ``vgrnn_weighted`` / ``vgrnn_unweighted`` pin ``use_edge_weight`` (True since section 9) and
  ``vgrnn_dropout`` / ``vgrnn_no_dropout`` pin ``edge_dropout`` (0.2 since section 10); ``vgrnn_rates`` is the
  defaults with the rate column.
* For each TAVRNN-family model, :func:`~spikeinterface_tavrnn.evaluation.decode_against_baselines` on the same splits:
  embeddings alone (flat), firing rates alone (log(1 + rate)), raw connectivity (upper triangle of every window's
  Pearson matrix, 465 features), and embeddings + rates concatenated; its gain null permutes the embeddings' windows.
* Deterministic baselines (one fit; seed only changes the permutations): per-unit rate in Hz, log visit duration,
  graph statistics, PCA of the connectivity (window and node level).

Does the graph add information? Paired test of per-fold balanced accuracy, embeddings + rates minus rates alone,
over fold x seed pairs (:func:`~spikeinterface_tavrnn.evaluation.paired_test`): the corrected resampled t-test
(Nadeau & Bengio; variance x (1 / pairs + n_test / n_train)) is the headline, plain paired t and Wilcoxon over the
same pairs and a t-test over the per-seed pooled differences are given for reference.

Results are rewritten after every model (``docs/results/linear_track.md`` / ``.json``), so a run stopped early keeps
what it finished.

Usage::

    python benchmarks/results_linear_track.py                 # 10 seeds, 100 epochs, 20 permutations
    python benchmarks/results_linear_track.py --quick         # 2 seeds, 5 epochs, 5 permutations (smoke run)
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (0..n-1) of every trained model")
    parser.add_argument("--epochs", type=int, default=100, help="TAVRNN/VGRNN epochs (early stopping patience 50)")
    parser.add_argument("--vgae-epochs", type=int, default=50, help="epochs of each per-window VGAE")
    parser.add_argument("--density", type=float, default=0.15, help="fraction of pairs kept as edges")
    parser.add_argument("--permutations", type=int, default=20, help="label / embedding permutations per score")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--models", nargs="+", default=["tavrnn", "tavrnn_rates", "vgae", "vgrnn"],
                        help="trained models, in the order they run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 5 epochs, 5 permutations")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="output folder")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.vgae_epochs, args.permutations = 2, 5, 5, 5
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.baselines import embed
    from spikeinterface_tavrnn.evaluation import (
        classify_windows,
        decode_against_baselines,
        fold_scores,
        mean_ci,
        paired_test,
        window_splits,
        window_vectors,
    )

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
    log_rates = np.log1p(rates)
    std = log_rates.std(axis=0)
    z_rates = (log_rates - log_rates.mean(axis=0)) / np.where(std > 0, std, 1.0)
    rate_features = np.concatenate([np.asarray(graphs.node_features), z_rates[:, :, None]], axis=2).astype(np.float32)

    n_splits, gap = 5, 1
    order = np.argsort(np.asarray(windows.starts), kind="stable")
    splits = window_splits(len(windows), n_splits, gap, order=order)
    test_train_ratio = float(np.mean([te.size for _, te in splits]) / np.mean([tr.size for tr, _ in splits]))
    seeds = list(range(args.seeds))
    common = dict(labels=labels, windows=windows, gap=gap, n_splits=n_splits, n_permutations=args.permutations)
    model = dict(epochs=args.epochs, early_stopping=50)

    raw: dict = {}
    folds: dict = {}
    gains: dict = {}

    def record(key: str, res, seed: int, fit_s: float) -> None:
        entry = raw.setdefault(key, {"balanced_accuracy": [], "accuracy": [], "f1": [], "p_value": [],
                                     "null_mean": [], "time_s": [], "seeds": []})
        entry["balanced_accuracy"].append(res.balanced_accuracy)
        entry["accuracy"].append(res.accuracy)
        entry["f1"].append(res.f1)
        entry["p_value"].append(res.p_value)
        null = res.null["balanced_accuracy"]
        entry["null_mean"].append(float(np.mean(null)) if null.size else float("nan"))
        entry["time_s"].append(fit_s)
        entry["seeds"].append(seed)
        folds.setdefault(key, []).append(fold_scores(res).tolist())

    def write(final: bool) -> None:
        from _results_files import write_results

        table = render(final)
        write_results(args.out, "linear_track", args.quick, table,
                      {"args": vars(args), "n_windows": len(windows), "n_units": spikes.num_units, "results": raw,
                       "fold_balanced_accuracy": folds, "gain": gains, "test_train_ratio": test_train_ratio,
                       "paired_tests": paired, "finished": final, "wall_s": time.perf_counter() - t_start})
        if final:
            print(table)

    paired: dict = {}

    def render(final: bool) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in zip(*np.unique(labels, return_counts=True)))
        lines = [
            f"Linear track, {len(windows)} visits ({counts}), {spikes.num_units} units, Pearson 25 ms, density "
            f"{args.density}, blocked {n_splits}-fold CV with gap {gap}, seeds {seeds} for trained models, epochs "
            f"{args.epochs} (VGAE {args.vgae_epochs}), {args.permutations} permutations per score (p floor "
            f"{1 / (args.permutations + 1):.3f}); chance balanced accuracy 0.333.",
            "",
            "| method | features | readout | balanced acc. (mean [95% CI]) | seeds | accuracy | macro F1 | null mean | "
            "p (max over seeds) | embed s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, e in raw.items():
            name, feats, ro = key.split(" | ")
            m, lo, hi = mean_ci(e["balanced_accuracy"])
            n = len(e["balanced_accuracy"])
            ci = f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "(deterministic)"
            p = np.max(e["p_value"])
            lines.append(
                f"| {name} | {feats} | {ro} | {m:.3f} {ci} | {n} | {np.mean(e['accuracy']):.3f} | "
                f"{np.mean(e['f1']):.3f} | {np.nanmean(e['null_mean']) if np.isfinite(p) else float('nan'):.3f} | "
                f"{p:.3f} | {np.mean(e['time_s']):.1f} |".replace("| nan |", "| - |")
            )
        if paired:
            lines += [
                "",
                f"Paired tests of per-fold balanced accuracy (A - B), {n_splits} folds x seeds; corrected resampled "
                f"t-test with n_test / n_train = {test_train_ratio:.3f}; two-sided p.",
                "",
                "| model | A | B | pairs | mean diff. [95% CI] | p corrected t | p paired t | p Wilcoxon | "
                "pooled diff. per seed (mean [95% CI]) | p (t over seeds) | gain perm. p (median over seeds) |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for key, t in paired.items():
                mname, a, b = key.split(" | ")
                lines.append(
                    f"| {mname} | {a} | {b} | {t['n_pairs']} | {t['mean_difference']:+.3f} [{t['ci_low']:+.3f}, "
                    f"{t['ci_high']:+.3f}] | {t['corrected_t_p_value']:.4f} | {t['t_p_value']:.4f} | "
                    f"{t['wilcoxon_p_value']:.4f} | {t['seed_mean']:+.3f} "
                    f"[{t['seed_low']:+.3f}, {t['seed_high']:+.3f}] "
                    f"| {t['seed_p']:.4f} | {t['gain_p']} |"
                )
        wall = time.perf_counter() - t_start
        lines += ["", f"Wall time: {wall:.0f} s{'' if final else ' (run still in progress)'}."]
        return "\n".join(lines)

    # ------------------------------------------------------------------ deterministic baselines (one fit)
    deterministic = [
        ("rates (no graph)", "rate Hz", lambda: rates, ["window"]),
        ("duration (control)", "log visit length", lambda: np.log(duration)[:, None], ["window"]),
        ("graph_stats", "thresholded graph", lambda: embed(graphs, "graph_stats"), ["window"]),
        ("connectivity_pca", "thresholded graph", lambda: embed(graphs, "connectivity_pca", seed=0), ["window"]),
        ("connectivity_pca (node)", "thresholded graph",
         lambda: embed(graphs, "connectivity_pca", seed=0, level="node"), ["flat"]),
    ]
    for name, feats, fn, readouts in deterministic:
        t0 = time.perf_counter()
        x = np.asarray(fn(), dtype=np.float64)
        fit_s = time.perf_counter() - t0
        for ro in readouts:
            xr = x.reshape(x.shape[0], -1) if ro in ("flat", "window") else window_vectors(x, ro)
            record(f"{name} | {feats} | {ro}", classify_windows(xr, seed=0, **common), 0, fit_s)
        print(f"  {name} done", flush=True)
    write(False)

    # ------------------------------------------------------------------ trained models, seeds each
    trained = {
        "tavrnn": ("tavrnn (gated attention)", "abs-r rows",
                   lambda s: embed(graphs, "tavrnn", seed=s, **model), True),
        "tavrnn_rates": ("tavrnn (gated attention)", "abs-r rows, rate column",
                         lambda s: embed(graphs, "tavrnn", seed=s, node_features=rate_features, **model), True),
        # variants pin the settings they were measured with, whatever today's defaults
        "tavrnn_fixed_gru": ("tavrnn (train_recurrence=False, inner product)", "abs-r rows",
                             lambda s: embed(graphs, "tavrnn", seed=s, train_recurrence=False,
                                             decoder="inner_product", edge_dropout=0.0, **model), True),
        "tavrnn_distance": ("tavrnn (decoder='distance')", "abs-r rows",
                            lambda s: embed(graphs, "tavrnn", seed=s, decoder="distance", train_recurrence=False,
                                            edge_dropout=0.0, **model), True),
        "vgrnn": ("vgrnn (attention=False, the defaults)", "abs-r rows",
                  lambda s: embed(graphs, "vgrnn", seed=s, **model), True),
        "vgrnn_weighted": ("vgrnn (use_edge_weight=True)", "abs-r rows",
                           lambda s: embed(graphs, "vgrnn", seed=s, use_edge_weight=True, edge_dropout=0.0,
                                                 **model), True),
        "vgrnn_unweighted": ("vgrnn (use_edge_weight=False)", "abs-r rows",
                             lambda s: embed(graphs, "vgrnn", seed=s, use_edge_weight=False, edge_dropout=0.0,
                                                 **model), True),
        "vgrnn_rates": ("vgrnn (attention=False, the defaults)", "abs-r rows, rate column",
                        lambda s: embed(graphs, "vgrnn", seed=s, node_features=rate_features, **model), True),
        "vgrnn_dropout": ("vgrnn (edge_dropout=0.2)", "abs-r rows",
                          lambda s: embed(graphs, "vgrnn", seed=s, edge_dropout=0.2, **model), True),
        "vgrnn_no_dropout": ("vgrnn (edge_dropout=0)", "abs-r rows",
                             lambda s: embed(graphs, "vgrnn", seed=s, edge_dropout=0.0, **model), True),
        "vgae": ("vgae (per window)", "abs-r rows",
                 lambda s: embed(graphs, "vgae", seed=s, epochs=args.vgae_epochs, num_threads=args.threads), False),
    }
    for key in args.models:
        name, feats, fn, with_rates = trained[key]
        per_seed = {"emb_rates": [], "rates": [], "emb": [], "conn": [], "gain": [], "gain_p": []}
        for seed in seeds:
            t0 = time.perf_counter()
            emb = np.asarray(fn(seed), dtype=np.float64)
            fit_s = time.perf_counter() - t0
            record(f"{name} | {feats} | mean", classify_windows(window_vectors(emb, "mean"), seed=seed, **common),
                   seed, fit_s)
            if with_rates:
                dec = decode_against_baselines(emb, rates, conn.matrices, labels, windows=windows, gap=gap,
                                               n_splits=n_splits, n_permutations=args.permutations, seed=seed)
                record(f"{name} | {feats} | flat", dec.results["embeddings"], seed, fit_s)
                record(f"{name} | {feats} | flat + log(1+rate)", dec.results["embeddings+rates"], seed, fit_s)
                if not any(k.startswith("firing rates") for k in raw):
                    record("firing rates (decode_against_baselines) | log(1+rate) | window",
                           dec.results["firing_rates"], seed, 0.0)
                    record("raw connectivity (decode_against_baselines) | Pearson upper triangle | window",
                           dec.results["connectivity"], seed, 0.0)
                per_seed["emb_rates"].append(fold_scores(dec.results["embeddings+rates"]))
                per_seed["rates"].append(fold_scores(dec.results["firing_rates"]))
                per_seed["emb"].append(fold_scores(dec.results["embeddings"]))
                per_seed["conn"].append(fold_scores(dec.results["connectivity"]))
                per_seed["gain"].append(dec.gain)
                per_seed["gain_p"].append(dec.gain_p_value)
            else:
                res = classify_windows(emb.reshape(emb.shape[0], -1), seed=seed, **common)
                record(f"{name} | {feats} | flat", res, seed, fit_s)
            print(f"  {name} [{feats}]: seed {seed} done ({fit_s:.1f} s)", flush=True)
            if with_rates:
                mname = f"{name} [{feats}]"
                gains[mname] = {"gain": per_seed["gain"], "gain_p": per_seed["gain_p"]}
                for a_key, b_key, a_name, b_name in [("emb_rates", "rates", "embeddings + rates", "rates alone"),
                                                     ("emb", "conn", "embeddings (flat)", "raw connectivity"),
                                                     ("emb", "rates", "embeddings (flat)", "rates alone")]:
                    a, b = np.asarray(per_seed[a_key]), np.asarray(per_seed[b_key])
                    t = paired_test(a.ravel(), b.ravel(), test_train_ratio=test_train_ratio)
                    # per-seed pooled balanced accuracy differences (rates / connectivity are the same every seed)
                    pa = raw[_key(name, feats, a_key)]["balanced_accuracy"]
                    pb = raw[_key(name, feats, b_key)]["balanced_accuracy"]
                    pb = pb[-len(pa):] if len(pb) >= len(pa) else [pb[0]] * len(pa)
                    seed_test = paired_test(pa, pb)
                    paired[f"{mname} | {a_name} | {b_name}"] = {
                        **vars(t), "seed_mean": seed_test.mean_difference,
                        "seed_low": seed_test.ci_low, "seed_high": seed_test.ci_high, "seed_p": seed_test.t_p_value,
                        "gain_p": (f"{np.median(per_seed['gain_p']):.3f}" if a_key == "emb_rates" else "-")}
            write(False)
    write(True)


def _key(name: str, feats: str, which: str) -> str:
    """Row key of one feature set of a model's decode_against_baselines results."""
    if which == "emb_rates":
        return f"{name} | {feats} | flat + log(1+rate)"
    if which == "emb":
        return f"{name} | {feats} | flat"
    if which == "rates":
        return "firing rates (decode_against_baselines) | log(1+rate) | window"
    return "raw connectivity (decode_against_baselines) | Pearson upper triangle | window"


if __name__ == "__main__":
    main()
