"""The ``tavrnn`` command: connectivity, TAVRNN embeddings and a report for a sorted recording, in one call.

``tavrnn run INPUT`` reads anything :func:`spikeinterface_tavrnn.io.read_sorting` reads, computes both analyzer
extensions and writes ``OUTPUT/analyzer`` (a SpikeInterface analyzer folder) and ``OUTPUT/report/index.html``.
``tavrnn demo`` does the same on the linear-track recording shipped with the package. ``tavrnn fit INPUTS``
trains one model on many recordings (structural node features) and saves it, for ``tavrnn run --model``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np


class CommandError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _add_analysis_options(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    defaults = defaults or {}
    conn = parser.add_argument_group("connectivity")
    conn.add_argument("--method", default=defaults.get("method", "sttc"), help="sttc | pearson | crosscorr (default: %(default)s)")
    conn.add_argument("--window-s", type=float, default=defaults.get("window_s", 120.0), help="sliding window length in seconds (default: %(default)s)")
    conn.add_argument("--step-s", type=float, default=defaults.get("step_s", 60.0), help="step between windows in seconds (default: %(default)s)")
    conn.add_argument("--intervals", type=Path, default=None, help="CSV of behaviour windows with columns start_s, stop_s[, label]; replaces sliding windows")
    conn.add_argument("--dt-ms", type=float, default=defaults.get("dt_ms"), help="STTC coincidence window in ms (default: 5)")
    conn.add_argument("--bin-ms", type=float, default=defaults.get("bin_ms"), help="bin width of pearson / crosscorr in ms (default: 50 / 1)")
    conn.add_argument("--max-lag-ms", type=float, default=None, help="crosscorr: largest lag in ms (default: 10)")
    edges = conn.add_mutually_exclusive_group()
    edges.add_argument("--threshold", type=float, default=defaults.get("threshold"), help="edge where |value| >= THRESHOLD")
    edges.add_argument("--density", type=float, default=defaults.get("density"), help="keep this fraction of the strongest pairs per window (default when no option given: 0.1)")
    edges.add_argument("--significance", type=float, default=None, help="keep pairs beating jitter surrogates at this alpha")
    model = parser.add_argument_group("model")
    model.add_argument("--z-dim", type=int, default=8, help="embedding size (default: %(default)s)")
    model.add_argument("--h-dim", type=int, default=32, help="recurrent state size (default: %(default)s)")
    model.add_argument("--epochs", type=int, default=defaults.get("epochs", 300), help="training epochs (default: %(default)s)")
    model.add_argument("--attention-window", type=int, default=None, help="attend to the last W windows (default: all)")
    model.add_argument("--no-attention", action="store_true", help="VGRNN: no temporal attention")
    model.add_argument("--node-features", default=defaults.get("node_features", "auto"), choices=["auto", "graph", "adjacency", "identity", "structural"], help="auto = graph: rows of |connectivity|; structural: size-free node statistics (default: %(default)s)")
    model.add_argument("--reconstruction", default="auto", choices=["auto", "dense", "sampled"], help="auto: dense up to 2048 units, sampled above (default: %(default)s)")
    model.add_argument("--bptt-windows", type=int, default=None, help="truncated back-propagation through this many windows, for long sessions (default: all)")
    model.add_argument("--model", type=Path, default=None, help="embed with a model saved by TAVRNN.save (e.g. trained on many recordings) instead of training")
    model.add_argument("--preset", default=None, choices=["parity"], help="the published settings")
    model.add_argument("--score-links", action="store_true", default=defaults.get("score_links", False), help="also measure link detection / prediction")
    model.add_argument("--device", default="auto", help="auto | cpu | cuda (default: %(default)s)")
    model.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", "-o", type=Path, default=defaults.get("output"), help="output folder")
    out.add_argument("--analyzer-format", default="binary_folder", choices=["binary_folder", "zarr"], help="(default: %(default)s)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tavrnn`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tavrnn",
        description="Functional connectivity and TAVRNN embeddings of sorted spikes (spikeinterface_tavrnn).",
    )
    parser.add_argument("--version", action="version", version=f"spikeinterface_tavrnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="analyse one sorted recording")
    run.add_argument("input", type=Path, help="sorting file or folder (sjemea HDF5, Axion CSV, SpikeInterface, phy, NWB, Neo)")
    run.add_argument("--format", default=None, help="input format when it cannot be detected from the content")
    run.add_argument("--sampling-frequency", type=float, default=None, help="Hz, for inputs that do not store it")
    run.add_argument("--segment-index", type=int, default=0, help="segment to analyse (default: %(default)s)")
    _add_analysis_options(run)

    batch = commands.add_parser("batch", help="analyse many recordings on a Dask cluster, one task each")
    batch.add_argument("inputs", nargs="+", help="recordings or glob patterns ('plate/*.h5')")
    batch.add_argument("--format", default=None, help="input format when it cannot be detected from the content")
    batch.add_argument("--sampling-frequency", type=float, default=None, help="Hz, for inputs that do not store it")
    batch.add_argument("--segment-index", type=int, default=0, help="segment to analyse (default: %(default)s)")
    batch.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (default: a LocalCluster)")
    batch.add_argument("--n-workers", type=int, default=None, help="workers of the local cluster")
    _add_analysis_options(batch, defaults=dict(output=Path("tavrnn_batch")))

    fit = commands.add_parser("fit", help="train one model on many recordings and save it (for run --model)")
    fit.add_argument("inputs", nargs="+", help="recordings or glob patterns ('plate/*.h5')")
    fit.add_argument("--format", default=None, help="input format when it cannot be detected from the content")
    fit.add_argument("--sampling-frequency", type=float, default=None, help="Hz, for inputs that do not store it")
    fit.add_argument("--segment-index", type=int, default=0, help="segment to analyse (default: %(default)s)")
    fit.add_argument("--recordings-per-step", type=int, default=1, help="recordings per optimiser step (default: %(default)s)")
    _add_analysis_options(fit, defaults=dict(output=Path("tavrnn_model.npz"), node_features="structural"))

    demo = commands.add_parser("demo", help="run on the linear-track recording shipped with the package")
    _add_analysis_options(
        demo,
        defaults=dict(method="pearson", bin_ms=25.0, threshold=None, density=0.15, node_features="identity",
                      epochs=100, output=Path("tavrnn_demo"), score_links=True),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tavrnn`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            if args.output is None:
                args.output = Path(f"{args.input.stem}_tavrnn")
            sorting = _read_input(args)
            windows = _read_intervals(args.intervals) if args.intervals is not None else None
            folder = run_pipeline(sorting, args, windows=windows, title=f"TAVRNN: {args.input.name}")
        elif args.command == "batch":
            return _run_batch(args)
        elif args.command == "fit":
            return _run_fit(args)
        else:
            folder = run_demo(args)
    except CommandError as error:
        print(f"tavrnn: error: {error}", file=sys.stderr)
        return 2
    print(f"Analyzer: {folder / 'analyzer'}")
    print(f"Report:   {folder / 'report' / 'index.html'}")
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import batch_options_from_args, run_batch

    try:
        rows = run_batch(
            args.inputs,
            args.output,
            options=batch_options_from_args(args),
            scheduler=args.scheduler,
            n_workers=args.n_workers,
            overwrite=args.overwrite,
            verbose=not args.quiet,
        )
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    failed = [row for row in rows if row["status"] == "failed"]
    for row in failed:
        print(f"failed: {row['input']}: {row['error']}", file=sys.stderr)
    counts = {status: sum(row["status"] == status for row in rows) for status in ("done", "skipped", "failed")}
    print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")
    print(f"Table: {Path(args.output) / 'batch_summary.csv'}")
    return 1 if failed else 0


def _model_params(args: argparse.Namespace) -> dict:
    """The TAVRNN parameters set by the model options of the command line."""
    return dict(
        z_dim=args.z_dim,
        h_dim=args.h_dim,
        epochs=args.epochs,
        attention=not args.no_attention,
        attention_window=args.attention_window,
        node_features=args.node_features,
        reconstruction=getattr(args, "reconstruction", "auto"),  # batch options saved before these options existed
        bptt_windows=getattr(args, "bptt_windows", None),
        preset=args.preset,
        device=args.device,
        seed=args.seed,
    )


def _recording_graphs(path: Path, args: argparse.Namespace):
    """The thresholded connectivity graphs of one recording, with the options of ``tavrnn run``."""
    from .connectivity import compute_connectivity
    from .spiketrains import SpikeTrains
    from .windows import sliding_windows

    spikes = SpikeTrains.from_sorting(
        _read_input(argparse.Namespace(**{**vars(args), "input": path})), segment_index=args.segment_index
    )
    windows = sliding_windows(spikes.t_start_s, spikes.t_stop_s, args.window_s, args.step_s)
    method_params = {
        key: value
        for key, value in (("dt_ms", args.dt_ms), ("bin_ms", args.bin_ms), ("max_lag_ms", args.max_lag_ms))
        if value is not None
    }
    connectivity = compute_connectivity(spikes, windows, method=args.method, verbose=False, **method_params)
    density = args.density
    if args.threshold is None and density is None and args.significance is None:
        density = 0.1
    return connectivity.to_graphs(
        threshold=args.threshold, density=density, significance=args.significance, seed=args.seed, verbose=False
    )


def _run_fit(args: argparse.Namespace) -> int:
    """``tavrnn fit``: connectivity of every recording, one model on all of them, saved atomically."""
    import os

    from tqdm.auto import tqdm

    from .batch import expand_inputs
    from .estimator import TAVRNN

    try:
        paths = expand_inputs(args.inputs)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise CommandError(f"{output} exists; pass --overwrite to replace it, or choose another --output")
    graphs = []
    for path in tqdm(paths, desc="connectivity", disable=args.quiet):
        try:
            graphs.append(_recording_graphs(path, args))
        except ValueError as error:
            raise CommandError(f"{path}: {error}") from error
    model = TAVRNN(**_model_params(args), recordings_per_step=args.recordings_per_step, verbose=not args.quiet)
    try:
        model.fit(graphs)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from error
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.parent / f".{output.name}.partial-{int(time.time() * 1000)}"
    try:
        model.save(partial)
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()
    print(f"Trained on {len(graphs)} recordings ({sum(g.num_nodes for g in graphs)} units), "
          f"{model.n_epochs_} epochs, final loss {model.loss_history_[-1]:.4f}")
    print(f"Model: {output}  (embed a recording with: tavrnn run RECORDING --model {output})")
    return 0


def _read_input(args):
    from .io import read_sorting

    kwargs = {}
    if args.sampling_frequency is not None:
        kwargs["sampling_frequency"] = args.sampling_frequency
    try:
        return read_sorting(args.input, format=args.format, **kwargs)
    except (FileNotFoundError, ValueError, KeyError, OSError) as error:
        raise CommandError(f"cannot read {args.input}: {error}") from error


def _read_intervals(path: Path):
    from .windows import windows_from_intervals

    if not path.exists():
        raise CommandError(f"no intervals file {path}")
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf8")
    names = table.dtype.names or ()
    if "start_s" not in names or "stop_s" not in names:
        raise CommandError(f"{path} needs the columns start_s and stop_s (and optionally label); found {list(names)}")
    table = np.atleast_1d(table)
    labels = table["label"].astype(str) if "label" in names else None
    return windows_from_intervals(table["start_s"], table["stop_s"], labels)


def run_pipeline(sorting_or_analyzer, args: argparse.Namespace, windows=None, title: str = "TAVRNN report",
                 extra_tables: dict | None = None) -> Path:
    """Compute both extensions and the report into ``args.output``, written atomically.

    The output is built in a temporary sibling folder and moved into place only when complete, so an existing
    output is never left half-overwritten.
    """
    from .analyzer import create_analyzer_from_spikes
    from .report import write_report

    output = Path(args.output)
    model_path = getattr(args, "model", None)
    if model_path is not None and not Path(model_path).is_file():
        raise CommandError(f"no model file {model_path}; save one with TAVRNN.save(path)")
    if output.exists() and not args.overwrite:
        raise CommandError(f"{output} exists; pass --overwrite to replace it, or choose another --output")
    staging = output.parent / f".{output.name}.partial-{int(time.time() * 1000)}"
    staging.mkdir(parents=True)
    try:
        suffix = ".zarr" if args.analyzer_format == "zarr" else ""
        analyzer_folder = staging / f"analyzer{suffix}"
        if hasattr(sorting_or_analyzer, "get_extension"):
            analyzer = sorting_or_analyzer.save_as(format=args.analyzer_format, folder=analyzer_folder)
        else:
            analyzer = create_analyzer_from_spikes(sorting_or_analyzer, format=args.analyzer_format, folder=analyzer_folder)
        verbose = not args.quiet
        window_params = dict(window_s=args.window_s, step_s=args.step_s)
        if windows is not None:
            window_params = dict(window_starts_s=windows.starts, window_stops_s=windows.stops, window_labels=windows.labels)
        try:
            analyzer.compute(
                "functional_connectivity",
                method=args.method,
                dt_ms=args.dt_ms,
                bin_ms=args.bin_ms,
                max_lag_ms=args.max_lag_ms,
                threshold=args.threshold,
                density=args.density,
                significance=args.significance,
                seed=args.seed,
                segment_index=getattr(args, "segment_index", 0),
                verbose=verbose,
                **window_params,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        analyzer.compute(
            "tavrnn_embeddings",
            **_model_params(args),
            model_path=None if getattr(args, "model", None) is None else str(Path(args.model).resolve()),
            score_links=args.score_links,
            verbose=verbose,
        )
        write_report(analyzer, staging / "report", title=title, extra_tables=extra_tables)
        del analyzer
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output


def run_demo(args: argparse.Namespace) -> Path:
    """``tavrnn demo``: the rat linear-track protocol of the TAVRNN paper on the shipped recording."""
    from .datasets import linear_track_visit_windows, load_linear_track

    start = time.perf_counter()
    sorting, position = load_linear_track()
    windows = linear_track_visit_windows(position)
    folder = run_pipeline(
        sorting,
        args,
        windows=windows,
        title="TAVRNN demo: rat CA1 on a linear track, one window per visit to a track segment",
        extra_tables={"Demo": [{"windows": len(windows), "labels": ", ".join(map(str, np.unique(windows.labels)))}]},
    )
    if not args.quiet:
        print(f"Demo finished in {time.perf_counter() - start:.1f} s")
    return folder


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
