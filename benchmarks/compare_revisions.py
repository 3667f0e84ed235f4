"""Training-epoch time of this checkout against another git revision, in one process, epochs alternating.

On a shared machine the run-to-run spread of ``bench_model.py`` (10-20 %) can hide a real change. Here the other
revision's package is exported with ``git archive``, renamed (so both import side by side) and both train the same
case; their epochs alternate, so load from other processes hits both alike. Prints both epoch times and the median of
the per-pair ratios (this checkout / the other revision).

Usage::

    python benchmarks/compare_revisions.py 39b494a                       # dishbrain_2700, 30 pairs
    python benchmarks/compare_revisions.py 39b494a --case parity_2700 --pairs 20
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import CASES, estimator_params, synthetic_graphs  # noqa: E402

PACKAGE = "spikeinterface_tavrnn"
ALIAS = "tavrnn_other_revision"


def export_revision(revision: str, into: Path) -> None:
    """Write ``revision``'s package under ``into/ALIAS`` with its imports renamed; its ``__init__`` is left empty (so
    importing it registers no analyzer extension twice)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, PACKAGE], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    source = into / PACKAGE
    for path in source.rglob("*.py"):
        path.write_text(re.sub(rf"\b{PACKAGE}\b", ALIAS, path.read_text()))
    (source / "__init__.py").write_text("")
    source.rename(into / ALIAS)


def trainer(package: str, case: dict, graphs_arrays: tuple):
    """A trainer of ``package`` on the case, warmed up by one epoch (``training.Trainer``, or the estimator's
    ``_Trainer`` in revisions before the estimator was split)."""
    import torch

    estimator = importlib.import_module(f"{package}.estimator")
    graphs_module = importlib.import_module(f"{package}.graphs")
    edge_indices, n_nodes, features = graphs_arrays
    graphs = graphs_module.GraphSequence(edge_indices, n_nodes, node_features=features)
    est = estimator.TAVRNN(**estimator_params(case))
    if hasattr(estimator, "_Trainer"):
        run = estimator._Trainer(est, graphs, est._config(), torch.device("cpu"), 0)
    else:
        training = importlib.import_module(f"{package}.training")
        run = training.Trainer(graphs, est._config(), torch.device("cpu"), 0)
    run.step()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="git revision to compare with (e.g. a commit hash)")
    parser.add_argument("--case", default="dishbrain_2700", choices=sorted(CASES))
    parser.add_argument("--pairs", type=int, default=30, help="alternating epoch pairs (default: 30)")
    args = parser.parse_args(argv)

    import torch

    case = CASES[args.case]
    graphs = synthetic_graphs(case["n_nodes"], case["n_windows"], case["n_edges"], case["features"])
    arrays = ([graphs.edge_index(t) for t in range(len(graphs))], graphs.num_nodes, graphs.node_features)
    with tempfile.TemporaryDirectory() as tmp:
        export_revision(args.revision, Path(tmp))
        sys.path.insert(0, tmp)
        with torch.random.fork_rng(devices=[]):
            runs = {"this checkout": trainer(PACKAGE, case, arrays), args.revision: trainer(ALIAS, case, arrays)}
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.pairs):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run.step()
                    times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name:>16s}: epoch median {statistics.median(values) * 1e3:7.1f} ms, min {min(values) * 1e3:7.1f} ms")
    ratios = np.array(times["this checkout"]) / np.array(times[args.revision])
    print(
        f"{args.case}, {args.pairs} pairs, torch threads {torch.get_num_threads()}: this checkout / {args.revision} = "
        f"{np.median(ratios):.3f} (median of per-pair ratios; quartiles {np.quantile(ratios, 0.25):.3f}-"
        f"{np.quantile(ratios, 0.75):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
