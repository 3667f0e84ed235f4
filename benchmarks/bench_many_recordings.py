"""One model on many recordings: memory and time per epoch as the number of recordings grows.

Usage::

    python benchmarks/bench_many_recordings.py            # 8, 32 and 128 recordings
    python benchmarks/bench_many_recordings.py --counts 8 64

Synthetic recordings of 100-400 nodes (random graphs, ~3 edges per node) and 20 windows, with firing rates;
``TAVRNN(node_features="structural", recordings_per_step=4)``, dense reconstruction, gated attention
(``attention=True``, the default when measured). Each case runs in a fresh process. Printed per case: the resident
memory once the recordings are prepared ("data"), the peak during two epochs minus that ("training": the
activations, which must not grow with the number of recordings, since recordings are run one at a time) and the
epoch time per recording.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def synthetic_recordings(count: int, n_windows: int = 20, seed: int = 0) -> list:
    from spikeinterface_tavrnn.graphs import GraphSequence

    rng = np.random.default_rng(seed)
    recordings = []
    for _ in range(count):
        n = int(rng.integers(100, 401))
        edges = []
        for _ in range(n_windows):
            i, j = rng.integers(0, n, 6 * n), rng.integers(0, n, 6 * n)
            keys = np.unique(np.minimum(i, j)[i != j] * n + np.maximum(i, j)[i != j])[: 3 * n]
            pairs = np.stack([keys // n, keys % n])
            edges.append(np.concatenate([pairs, pairs[::-1]], axis=1))
        recordings.append(GraphSequence(edges, n, firing_rates_hz=rng.gamma(2.0, 2.0, (n_windows, n))))
    return recordings


def run_case(count: int) -> dict:
    import torch

    from spikeinterface_tavrnn.estimator import TAVRNN
    from spikeinterface_tavrnn.training import Trainer

    recordings = synthetic_recordings(count)
    est = TAVRNN(node_features="structural", recordings_per_step=4, reconstruction="dense", attention=True, seed=0,
                 device="cpu")  # attention: as measured in docs/scale.md (the default until docs/results.md section 8)
    with torch.random.fork_rng(devices=[]):
        trainer = Trainer(recordings, est._config(), torch.device("cpu"), 0, as_list=True)
        data_mb = _rss_mb()
        times = []
        for _ in range(2):
            start = time.perf_counter()
            trainer.step()
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "recordings": count,
        "nodes": int(sum(g.num_nodes for g in recordings)),
        "data_mb": data_mb,
        "training_mb": peak_mb - data_mb,
        "peak_mb": peak_mb,
        "epoch_s_per_recording": min(times) / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child)))
        return 0
    print(f"{'recordings':>10s} {'nodes':>7s} {'data MB':>8s} {'training MB':>11s} {'peak MB':>8s} {'s/recording':>12s}")
    results = []
    for count in args.counts:
        proc = subprocess.run([sys.executable, __file__, "--child", str(count)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{count:10d} FAILED\n{proc.stderr[-2000:]}")
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['recordings']:10d} {r['nodes']:7d} {r['data_mb']:8.0f} {r['training_mb']:11.0f} {r['peak_mb']:8.0f} "
            f"{r['epoch_s_per_recording']:12.3f}",
            flush=True,
        )
    if len(results) > 1:
        ratio = results[-1]["training_mb"] / max(results[0]["training_mb"], 1.0)
        print(f"training memory, {results[-1]['recordings']} / {results[0]['recordings']} recordings: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
