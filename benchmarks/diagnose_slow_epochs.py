"""Are slow training epochs the model's or the machine's? (diagnostic, not a protocol)

On the 2-core development machine the ~2,700-edge epoch of ``bench_model.py`` ran at two speeds, by period, with the
code unchanged (docs/performance.md). This script trains the ``dishbrain_2700`` case in one process and prints, for
every epoch, its time next to two references measured right after it:

* ``matmul``: the float32 2048^3 matrix product of ``bench_model.py`` (the targets' yardstick);
* ``probe``: a fixed mix of the kinds of operation an epoch is made of, with no package code: the 17,100 x 900 by
  900 x 32 product of the feature projection, 150 small (900, 96) products with element-wise operations (the
  recurrence), and 20 softplus sums over a (19, 150, 150) block (the dense reconstruction term);

and what the process did during the epoch: the time Python's garbage collector ran (``gc.callbacks``), minor and
major page faults, and involuntary context switches (``getrusage``). If an epoch is slow while the matrix product and
the probe are not, the machine is not uniformly slow at that moment; if page faults, context switches or the garbage
collector rise with the slow epochs, they are the likely cause.

Usage::

    python benchmarks/diagnose_slow_epochs.py                 # 60 epochs
    python benchmarks/diagnose_slow_epochs.py --epochs 200 --threads 2
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import CASES, estimator_params, matmul_seconds, synthetic_graphs  # noqa: E402


class GarbageCollectorClock:
    """Seconds spent in Python's garbage collector since the last :meth:`lap` (through ``gc.callbacks``)."""

    def __init__(self):
        self.total_s = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._started

    def lap(self) -> float:
        spent, self.total_s = self.total_s, 0.0
        return spent


def make_probe(seed: int = 0):
    """A fixed workload of the epoch's kinds of operation (module docstring), as a function of no argument."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(17_100, 900, generator=generator)
    weight = torch.randn(900, 32, generator=generator)
    state = torch.randn(900, 96, generator=generator)
    state_weight = torch.randn(96, 96, generator=generator)
    logits = torch.randn(19, 150, 150, generator=generator)

    def probe() -> None:
        features @ weight
        for _ in range(150):
            torch.sigmoid(state @ state_weight) * state + state
        for _ in range(20):
            F.softplus(logits).sum()

    return probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from spikeinterface_tavrnn.estimator import TAVRNN
    from spikeinterface_tavrnn.training import Trainer

    torch.set_num_threads(args.threads)
    spec = CASES["dishbrain_2700"]
    graphs = synthetic_graphs(spec["n_nodes"], spec["n_windows"], spec["n_edges"], spec["features"])
    trainer = Trainer(graphs, TAVRNN(**estimator_params(spec))._config(), torch.device("cpu"), 0)
    trainer.step()  # warm-up
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    probe = make_probe()
    probe()
    clock = GarbageCollectorClock()
    print(f"{'time':8s} {'epoch s':>8s} {'matmul s':>9s} {'probe s':>8s} {'ratio':>6s} {'gc ms':>6s} {'minflt':>7s} "
          f"{'majflt':>7s} {'invol.cs':>8s}")  # fmt: skip
    epochs, matmuls, probes = [], [], []
    for _ in range(args.epochs):
        clock.lap()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        trainer.step()
        epoch_s = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        gc_ms = clock.lap() * 1e3
        matmul_s = matmul_seconds(a, b)
        start = time.perf_counter()
        probe()
        probe_s = time.perf_counter() - start
        epochs.append(epoch_s)
        matmuls.append(matmul_s)
        probes.append(probe_s)
        print(
            f"{time.strftime('%H:%M:%S')} {epoch_s:8.3f} {matmul_s:9.3f} {probe_s:8.3f} {epoch_s / matmul_s:6.2f} "
            f"{gc_ms:6.2f} {after.ru_minflt - before.ru_minflt:7d} {after.ru_majflt - before.ru_majflt:7d} "
            f"{after.ru_nivcsw - before.ru_nivcsw:8d}",
            flush=True,
        )
    print(
        f"medians: epoch {statistics.median(epochs):.3f} s, matmul {statistics.median(matmuls):.3f} s, probe "
        f"{statistics.median(probes):.3f} s; epoch range {min(epochs):.3f}-{max(epochs):.3f} s, probe range "
        f"{min(probes):.3f}-{max(probes):.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
