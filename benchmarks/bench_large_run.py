"""A 4,096-unit recording end to end through ``tavrnn run``: wall time and peak memory.

Usage::

    python benchmarks/bench_large_run.py                 # default node features (rows of |STTC|) and structural
    python benchmarks/bench_large_run.py --epochs 50 --features structural

A synthetic sorting of 4,096 units (10 minutes, Poisson spikes at 2 Hz, with 64 assemblies of 64 units that share a
common drive, so that connectivity has structure) is saved as a SpikeInterface sorting folder, then
``tavrnn run`` (STTC with dt 5 ms, 120 s windows every 60 s: 8 windows, density 0.001 = ~8,400 edges per window,
TAVRNN with sampled reconstruction, chosen automatically above 2,048 units, the HTML report) runs in a child
process. Printed: wall time of the whole command and the child's peak resident memory (``ru_maxrss``). Target:
within 8 GB. The same run times the connectivity alone (``compute_connectivity`` in this process) as the reference
for how much of the total is the model and the report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_UNITS = 4096
DURATION_S = 600.0
RATE_HZ = 2.0
FS = 10000.0


def synthetic_sorting(seed: int = 0):
    """4,096 units; each assembly of 64 units shares half its spikes with a common Poisson drive (jittered 2 ms)."""
    from spikeinterface.core import NumpySorting

    rng = np.random.default_rng(seed)
    samples, labels = [], []
    n_groups = N_UNITS // 64
    for group in range(n_groups):
        drive = np.sort(rng.uniform(0, DURATION_S, rng.poisson(RATE_HZ / 2 * DURATION_S)))
        for member in range(64):
            unit = group * 64 + member
            own = rng.uniform(0, DURATION_S, rng.poisson(RATE_HZ / 2 * DURATION_S))
            shared = drive[rng.random(drive.size) < 0.8]
            shared = shared + rng.normal(0, 0.002, size=shared.size)
            times = np.clip(np.concatenate([own, shared]), 0, DURATION_S - 1e-3)
            samples.append(np.unique(np.round(times * FS).astype(np.int64)))
            labels.append(np.full(samples[-1].size, unit))
    order_samples = np.concatenate(samples)
    order_labels = np.concatenate(labels)
    order = np.argsort(order_samples, kind="stable")
    return NumpySorting.from_samples_and_labels(
        [order_samples[order]], [order_labels[order]], sampling_frequency=FS, unit_ids=np.arange(N_UNITS)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--features", choices=["auto", "structural", "adjacency"], action="append")
    args = parser.parse_args(argv)
    features = args.features or ["auto", "structural"]

    import spikeinterface_tavrnn as st

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        sorting = synthetic_sorting()
        sorting.save(folder=tmp / "sorting")
        n_spikes = int(sum(sorting.count_num_spikes_per_unit().values()))
        print(f"synthetic sorting: {N_UNITS} units, {n_spikes:,} spikes, {DURATION_S:.0f} s "
              f"(made in {time.perf_counter() - start:.1f} s)")

        spikes = st.SpikeTrains.from_sorting(sorting)
        windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=120.0, step_s=60.0)
        start = time.perf_counter()
        st.compute_connectivity(spikes, windows, method="sttc", dt_ms=5.0, verbose=False)  # compiles the kernels
        st.compute_connectivity(spikes, windows, method="sttc", dt_ms=5.0, verbose=False)
        conn_s = (time.perf_counter() - start) / 2
        print(f"reference: compute_connectivity alone (sttc, {len(windows)} windows): {conn_s:.1f} s")

        print(f"{'node features':14s} {'wall s':>7s} {'peak MB':>8s} {'x connectivity':>15s}  verdict")
        ok = True
        for kind in features:
            command = [
                sys.executable, "-m", "spikeinterface_tavrnn.cli", "run", str(tmp / "sorting"),
                "-o", str(tmp / f"out_{kind}"), "--method", "sttc", "--dt-ms", "5", "--window-s", "120",
                "--step-s", "60", "--density", "0.001", "--epochs", str(args.epochs), "--node-features", kind,
                "--quiet",
            ]  # fmt: skip
            # each case in its own child: ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so run the
            # measurement through a wrapper that reports its own child's peak
            wrapper = (
                "import resource, subprocess, sys, time; t = time.perf_counter(); "
                "rc = subprocess.run(sys.argv[1:]).returncode; "
                "print('RESULT', rc, time.perf_counter() - t, "
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)"
            )
            proc = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
            if not line:
                print(f"{kind:14s} FAILED\n{proc.stderr[-2000:]}")
                ok = False
                continue
            _, rc, wall, peak = line[-1].split()
            wall_s, peak_mb = float(wall), float(peak)
            verdict = "PASS" if int(rc) == 0 and peak_mb <= 8192 else "FAIL"
            ok &= verdict == "PASS"
            print(f"{kind:14s} {wall_s:7.1f} {peak_mb:8.0f} {wall_s / conn_s:15.1f}  {verdict}", flush=True)
            if int(rc) != 0:
                print(proc.stderr[-2000:])
    print(f"{args.epochs} epochs; peak MB = ru_maxrss of the tavrnn process; wall s includes reading, the analyzer, "
          "connectivity, training, embedding and the report")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
