"""Long sessions: training memory with truncated back-propagation (``bptt_windows``) vs full back-propagation.

Usage::

    python benchmarks/bench_long_session.py           # all cases, each in a fresh subprocess
    python benchmarks/bench_long_session.py --quick   # one timed epoch per case

Synthetic graphs of 1,024 nodes with ~4,096 undirected edges per window (random, re-drawn every window), identity
node features, dense (exact) reconstruction, h 32, z 8, gated attention over the whole history (``attention=True``;
the default model until docs/results.md section 8).
Cases: full back-propagation over 100 and 200 windows (the reference, in the same run), ``bptt_windows=20`` over
100, 200 and 400 windows, and the same with ``attention_window=20`` (attention over the whole history keeps the
attended states, N x h_dim floats per window, so only a bounded attention window makes memory flat). Target: 1,024
nodes x 200 windows within 4 GB peak, and memory that does not grow with the number of windows. Peak memory is
``ru_maxrss`` of the case's own process (interpreter, torch and data included); "training" is the peak minus the
resident memory just before the first epoch.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

N_NODES = 1024
EDGES = 4096
CASES = {  # (windows, bptt_windows, attention_window)
    "full_100": (100, None, None),
    "full_200": (200, None, None),
    "bptt20_100": (100, 20, None),
    "bptt20_200": (200, 20, None),
    "bptt20_400": (400, 20, None),
    "bptt20_aw20_100": (100, 20, 20),
    "bptt20_aw20_400": (400, 20, 20),
}
TARGET_PEAK_MB = {"bptt20_200": 4096, "full_200": 4096}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def synthetic_graphs(n_windows: int, seed: int = 0):
    from spikeinterface_tavrnn.graphs import GraphSequence

    rng = np.random.default_rng(seed)
    edges = []
    for _ in range(n_windows):
        i = rng.integers(0, N_NODES, 3 * EDGES)
        j = rng.integers(0, N_NODES, 3 * EDGES)
        keys = np.unique(np.minimum(i, j)[i != j] * N_NODES + np.maximum(i, j)[i != j])[:EDGES]
        pairs = np.stack([keys // N_NODES, keys % N_NODES])
        edges.append(np.concatenate([pairs, pairs[::-1]], axis=1))
    return GraphSequence(edges, N_NODES)


def run_case(name: str, repeats: int) -> dict:
    import torch

    from spikeinterface_tavrnn.estimator import TAVRNN
    from spikeinterface_tavrnn.training import Trainer

    n_windows, bptt, attention_window = CASES[name]
    graphs = synthetic_graphs(n_windows)
    est = TAVRNN(
        node_features="identity",
        reconstruction="dense",
        attention=True,  # what this benchmark measures (the default until attention was switched off)
        bptt_windows=bptt,
        attention_window=attention_window,
        seed=0,
        device="cpu",
    )
    cfg = est._config()
    with torch.random.fork_rng(devices=[]):
        trainer = Trainer(graphs, cfg, torch.device("cpu"), 0)
        before_mb = _rss_mb()
        times = []
        # one more epoch than timed: the first also loads the compiled CPU kernels (numba's cache) and allocates the
        # reused buffers, so it is counted in the memory but not in the epoch time
        for _ in range(repeats + 1):
            start = time.perf_counter()
            trainer.step()
            times.append(time.perf_counter() - start)
        times = times[1:]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "case": name,
        "n_windows": n_windows,
        "bptt_windows": bptt,
        "attention_window": attention_window,
        "epoch_s": statistics.median(times),
        "peak_mb": peak_mb,
        "training_mb": peak_mb - before_mb,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="run only these cases")
    parser.add_argument("--quick", action="store_true", help="one timed epoch per case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child, args.repeats)))
        return 0
    repeats = args.repeats or (1 if args.quick else 2)
    print(
        f"{'case':16s} {'windows':>7s} {'bptt':>5s} {'att.win':>7s} {'epoch s':>8s} {'peak MB':>8s} "
        f"{'training MB':>11s}  verdict"
    )
    results, ok = {}, True
    for name in args.case or list(CASES):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, "--repeats", str(repeats)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            print(f"{name:16s} FAILED\n{proc.stderr[-2000:]}")
            ok = False
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[name] = r
        verdict = "-"
        if name in TARGET_PEAK_MB:
            verdict = "PASS" if r["peak_mb"] <= TARGET_PEAK_MB[name] else "FAIL"
            ok &= verdict == "PASS"
        print(
            f"{name:16s} {r['n_windows']:7d} {str(r['bptt_windows']):>5s} {str(r['attention_window']):>7s} "
            f"{r['epoch_s']:8.2f} {r['peak_mb']:8.0f} "
            f"{r['training_mb']:11.0f}  {verdict}",
            flush=True,
        )
    if {"full_200", "bptt20_200"} <= results.keys():
        ratio = results["bptt20_200"]["training_mb"] / max(results["full_200"]["training_mb"], 1.0)
        print(f"training memory, bptt 20 / full back-propagation at 200 windows: {ratio:.2f}")
    if {"bptt20_100", "bptt20_400"} <= results.keys():
        growth = results["bptt20_400"]["training_mb"] / max(results["bptt20_100"]["training_mb"], 1.0)
        print(f"training memory with bptt 20, 400 windows / 100 windows: {growth:.2f} (full back-propagation grows "
              "~linearly)")
    if {"bptt20_aw20_100", "bptt20_aw20_400"} <= results.keys():
        growth = results["bptt20_aw20_400"]["training_mb"] / max(results["bptt20_aw20_100"]["training_mb"], 1.0)
        print(f"training memory with bptt 20 and attention window 20, 400 windows / 100 windows: {growth:.2f}")
    print(f"1,024 nodes, ~{EDGES} edges per window, identity features, dense reconstruction, torch threads: "
          f"{next(iter(results.values()))['threads'] if results else '?'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
