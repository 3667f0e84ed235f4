"""Speed and memory of the connectivity estimators, against the targets of the issue and against Elephant.

Each case runs in a fresh Python subprocess so that its peak resident memory (``ru_maxrss``) is its own. Times are
wall-clock seconds on this machine in this run; Elephant is timed in the same subprocess on a sample of pairs (or
one window) and projected to the whole task, so the speed-ups are same-run ratios.

Cases
-----
* ``compile``: first call of each numba estimator on a tiny input with an empty numba cache (cold compile).
* ``sttc_1024``: Poisson 5 Hz, 1,024 units, 20 min, 19 windows of 120 s every 60 s, dt 5 ms:
  target <= 5 s and <= 1 GB; projected speed-up over Elephant's pairwise STTC (expect >= 1000x).
* ``pearson_1024``: same spikes, 50 ms bins: target <= 1 s; projected speed-up over Elephant's
  ``correlation_coefficient`` (one call per window).
* ``sttc_4096``: Poisson 2 Hz, 4,096 units, 10 min, windows of 120 s every 60 s: target <= 30 s and <= 2 GB.
* ``crosscorr_1024``: same spikes as ``sttc_1024``, 1 ms bins, lags up to 10 ms (no target; informative).

Run: ``python benchmarks/bench_connectivity.py`` (all cases, about 2-3 minutes on 2 cores), or
``--case NAME`` for one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

FS = 30000.0
TARGETS = {  # case: (max seconds, max peak RSS in MiB)
    "sttc_1024": (5.0, 1024.0),
    "pearson_1024": (1.0, None),
    "sttc_4096": (30.0, 2048.0),
}


def _poisson_spikes(n_units: int, rate_hz: float, duration_s: float, seed: int = 0):
    from spikeinterface_tavrnn import SpikeTrains

    rng = np.random.default_rng(seed)
    n_samples = int(duration_s * FS)
    trains = [np.sort(rng.integers(0, n_samples, rng.poisson(rate_hz * duration_s))) for _ in range(n_units)]
    return SpikeTrains(trains, FS, 0.0, duration_s, np.arange(n_units))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _warm_up():
    """First call on a tiny input: loads the numba cache (or compiles) so that timed calls measure the work."""
    from spikeinterface_tavrnn import compute_connectivity, sliding_windows

    tiny = _poisson_spikes(4, 5.0, 4.0, seed=1)
    start = time.perf_counter()
    for method, params in [("sttc", {}), ("pearson", {"bin_ms": 50.0}), ("crosscorr", {})]:
        compute_connectivity(tiny, sliding_windows(0, 4, 2, 1), method=method, verbose=False, **params)
    return time.perf_counter() - start


def case_compile() -> dict:
    import numba  # noqa: F401  (imported before the timer: not part of compile time)
    import spikeinterface_tavrnn  # noqa: F401

    return {"compile_s": _warm_up(), "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR")}


def _elephant_sttc_per_pair(spikes, window, n_pairs: int, seed: int = 0) -> float:
    import neo
    import quantities as pq
    from elephant.spike_train_correlation import spike_time_tiling_coefficient

    rng = np.random.default_rng(seed)
    fs = spikes.sampling_frequency
    w0, w1 = int(window[0] * fs), int(window[1] * fs)
    pairs = [tuple(rng.choice(spikes.num_units, 2, replace=False)) for _ in range(n_pairs)]
    trains = {}
    for unit in {u for pair in pairs for u in pair}:
        s = spikes.spike_samples[unit]
        s = s[(s >= w0) & (s < w1)]
        trains[unit] = neo.SpikeTrain(s / fs * pq.s, t_start=window[0] * pq.s, t_stop=window[1] * pq.s)
    dt = 0.005 * pq.s
    start = time.perf_counter()
    for a, b in pairs:
        spike_time_tiling_coefficient(trains[a], trains[b], dt=dt)
    return (time.perf_counter() - start) / n_pairs


def _elephant_cch_per_pair(spikes, window, n_pairs: int, seed: int = 0) -> float:
    import neo
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import cross_correlation_histogram

    from spikeinterface_tavrnn.connectivity.binning import quiet_elephant

    rng = np.random.default_rng(seed)
    fs = spikes.sampling_frequency
    w0, w1 = int(window[0] * fs), int(window[1] * fs)
    pairs = [tuple(rng.choice(spikes.num_units, 2, replace=False)) for _ in range(n_pairs)]
    start = time.perf_counter()
    with quiet_elephant():
        for a, b in pairs:  # binning included: the elephant backend bins every unit of every window
            binned = []
            for unit in (a, b):
                s = spikes.spike_samples[unit]
                s = s[(s >= w0) & (s < w1)]
                train = neo.SpikeTrain(s / fs * pq.s, t_start=window[0] * pq.s, t_stop=window[1] * pq.s)
                binned.append(BinnedSpikeTrain(train, bin_size=1 * pq.ms).binarize())
            cross_correlation_histogram(binned[0], binned[1], window=[-10, 10], binary=True,
                                        cross_correlation_coefficient=True)  # fmt: skip
    return (time.perf_counter() - start) / n_pairs


def _timed(spikes, windows, method, **params):
    from spikeinterface_tavrnn import compute_connectivity

    import numba

    rss_before = _current_rss_mib()
    load = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    conn = compute_connectivity(spikes, windows, method=method, verbose=False, **params)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return conn, {
        "time_s": elapsed,
        "cpu_s": cpu,
        "load_average": load,
        "threading_layer": numba.threading_layer(),
        "rss_before_mib": rss_before,
        "peak_rss_mib": _peak_rss_mib(),
    }


def case_sttc_1024() -> dict:
    from spikeinterface_tavrnn import sliding_windows

    spikes = _poisson_spikes(1024, 5.0, 1200.0)
    windows = sliding_windows(0.0, 1200.0, 120.0, 60.0)
    warm = _warm_up()
    conn, result = _timed(spikes, windows, "sttc", dt_ms=5.0)
    per_pair = _elephant_sttc_per_pair(spikes, (0.0, 120.0), n_pairs=40)
    n_pairs = 1024 * 1023 // 2
    projected = per_pair * n_pairs * len(windows)
    result.update(
        warm_up_s=warm,
        n_spikes=int(spikes.spike_counts.sum()),
        n_windows=len(windows),
        elephant_s_per_pair=per_pair,
        elephant_projected_s=projected,
        speedup=projected / result["time_s"],
    )
    return result


def case_pearson_1024() -> dict:
    from spikeinterface_tavrnn import sliding_windows
    from spikeinterface_tavrnn.connectivity.pearson import pearson_matrices_elephant

    spikes = _poisson_spikes(1024, 5.0, 1200.0)
    windows = sliding_windows(0.0, 1200.0, 120.0, 60.0)
    warm = _warm_up()
    conn, result = _timed(spikes, windows, "pearson", bin_ms=50.0)
    start = time.perf_counter()
    reference, _ = pearson_matrices_elephant(spikes, windows[0], bin_ms=50.0, verbose=False)
    per_window = time.perf_counter() - start
    projected = per_window * len(windows)
    result.update(
        warm_up_s=warm,
        elephant_s_per_window=per_window,
        elephant_projected_s=projected,
        speedup=projected / result["time_s"],
        max_abs_diff_vs_elephant_window0=float(np.abs(reference[0] - conn.matrices[0]).max()),
    )
    return result


def case_sttc_4096() -> dict:
    from spikeinterface_tavrnn import sliding_windows

    spikes = _poisson_spikes(4096, 2.0, 600.0)
    windows = sliding_windows(0.0, 600.0, 120.0, 60.0)
    warm = _warm_up()
    conn, result = _timed(spikes, windows, "sttc", dt_ms=5.0)
    per_pair = _elephant_sttc_per_pair(spikes, (0.0, 120.0), n_pairs=40)
    projected = per_pair * (4096 * 4095 // 2) * len(windows)
    result.update(
        warm_up_s=warm,
        n_spikes=int(spikes.spike_counts.sum()),
        n_windows=len(windows),
        elephant_s_per_pair=per_pair,
        elephant_projected_s=projected,
        speedup=projected / result["time_s"],
    )
    return result


def case_crosscorr_1024() -> dict:
    from spikeinterface_tavrnn import sliding_windows

    spikes = _poisson_spikes(1024, 5.0, 1200.0)
    windows = sliding_windows(0.0, 1200.0, 120.0, 60.0)
    warm = _warm_up()
    conn, result = _timed(spikes, windows, "crosscorr", bin_ms=1.0, max_lag_ms=10.0)
    per_pair = _elephant_cch_per_pair(spikes, (0.0, 120.0), n_pairs=10)
    projected = per_pair * (1024 * 1023 // 2) * len(windows)
    result.update(
        warm_up_s=warm,
        elephant_s_per_pair=per_pair,
        elephant_projected_s=projected,
        speedup=projected / result["time_s"],
    )
    return result


CASES = {
    "compile": case_compile,
    "sttc_1024": case_sttc_1024,
    "pearson_1024": case_pearson_1024,
    "sttc_4096": case_sttc_4096,
    "crosscorr_1024": case_crosscorr_1024,
}


def _run_in_subprocess(name: str) -> dict:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if name == "compile":
            env["NUMBA_CACHE_DIR"] = cache  # empty cache: a cold compile
        proc = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _verdict(name: str, result: dict) -> str:
    if name not in TARGETS or "error" in result:
        return ""
    max_s, max_mib = TARGETS[name]
    ok = result["time_s"] <= max_s and (max_mib is None or result["peak_rss_mib"] <= max_mib)
    limits = f"<= {max_s:g} s" + (f", <= {max_mib:g} MiB" if max_mib else "")
    return f"{'PASS' if ok else 'FAIL'} (target {limits})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process and print JSON")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="cases to run, each in a subprocess")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return 0
    print(f"bench_connectivity: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    failed = False
    for name in args.cases:
        result = _run_in_subprocess(name)
        verdict = _verdict(name, result)
        failed |= verdict.startswith("FAIL") or "error" in result
        print(f"\n[{name}] {verdict}")
        if "error" in result:
            print(f"  error: {result['error']}")
            continue
        if name == "compile":
            print(f"  cold numba compile of sttc + pearson + crosscorr (empty cache): {result['compile_s']:.2f} s")
            continue
        print(f"  time for all windows: {result['time_s']:.3f} s   "
              f"(warm-up / numba cache load: {result['warm_up_s']:.2f} s)")  # fmt: skip
        print(f"  CPU time (all threads): {result['cpu_s']:.2f} s; load average when started: "
              f"{result['load_average']:.2f}; numba threading layer: {result['threading_layer']}")  # fmt: skip
        print(f"  peak RSS of the process: {result['peak_rss_mib']:.0f} MiB   "
              f"(before computing: {result['rss_before_mib']:.0f} MiB)")  # fmt: skip
        if "elephant_s_per_pair" in result:
            projected = result["elephant_projected_s"]
            print(f"  Elephant: {result['elephant_s_per_pair'] * 1000:.2f} ms per pair per window, projected "
                  f"{projected:.0f} s ({projected / 3600:.1f} h) for the task")  # fmt: skip
        if "elephant_s_per_window" in result:
            print(f"  Elephant: {result['elephant_s_per_window']:.3f} s per window, projected "
                  f"{result['elephant_projected_s']:.2f} s for the task; max |diff| window 0: "
                  f"{result['max_abs_diff_vs_elephant_window0']:.2e}")  # fmt: skip
        print(f"  speed-up over Elephant (same run, projected): {result['speedup']:,.0f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
