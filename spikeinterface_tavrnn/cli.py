"""The ``tavrnn`` command: connectivity, TAVRNN embeddings and a report for a sorted recording, in one call.

``tavrnn run INPUT`` reads anything :func:`spikeinterface_tavrnn.io.read_sorting` reads and runs
:func:`spikeinterface_tavrnn.pipeline.run_pipeline`, writing ``OUTPUT/analyzer`` (a SpikeInterface analyzer folder)
and ``OUTPUT/report/index.html``. ``tavrnn demo`` does the same on the linear-track recording shipped with the
package. ``tavrnn batch INPUTS`` runs many recordings on a Dask cluster. ``tavrnn fit INPUTS`` trains one model
on many recordings (structural node features) and saves it, for ``tavrnn run --model``.

The command only parses: every argument is checked (values, ``--model`` loaded, ``--intervals`` read, the
output folder, the segment and the windows against the recording) before any computation. A mistake is reported
as one line naming the flag, with exit status 2; a traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import TavrnnInputError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2)."""

    def error(self, message: str):  # noqa: D102  (argparse's hook)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least_1(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], got {text}")
    return value


def _dropout(text: str) -> float:
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), got {text}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    from .io import SUPPORTED_FORMATS

    parser.add_argument("--format", default=None, choices=list(SUPPORTED_FORMATS),
                        help="input format when it cannot be detected from the content")  # fmt: skip
    parser.add_argument("--sampling-frequency", type=_positive_float, default=None, help="Hz, for inputs that do not store it")
    parser.add_argument("--segment-index", type=_int, default=None,
                        help="segment of a multi-segment recording to analyse (default: the package's, segment 0)")  # fmt: skip
    parser.add_argument("--no-spike-time-checks", dest="check_spike_times", action="store_false",
                        help="do not refuse implausible spike times (far-off spikes, times that look like milliseconds)")  # fmt: skip


def _add_analysis_options(parser: argparse.ArgumentParser, output_help: str) -> None:
    """The options of a pipeline run; their defaults are set from PipelineOptions by :func:`_set_defaults`."""
    from .connectivity import available_methods

    conn = parser.add_argument_group("connectivity")
    conn.add_argument("--method", choices=available_methods(), help="connectivity measure (default: %(default)s)")
    conn.add_argument("--window-s", type=_positive_float, help="sliding window length in seconds (default: %(default)s)")
    conn.add_argument("--step-s", type=_positive_float, help="step between windows in seconds (default: %(default)s)")
    conn.add_argument("--intervals", type=Path, default=None,
                      help="CSV of behaviour windows with the columns start_s, stop_s[, label]; replaces sliding windows")  # fmt: skip
    conn.add_argument("--dt-ms", type=_positive_float, help="sttc coincidence window in ms (default: the method's, 5)")
    conn.add_argument("--bin-ms", type=_positive_float, help="pearson / crosscorr bin width in ms (default: the method's, 50 / 1)")
    conn.add_argument("--max-lag-ms", type=_positive_float, help="crosscorr: largest lag in ms (default: the method's, 10)")
    edges = conn.add_mutually_exclusive_group()
    edges.add_argument("--threshold", type=_finite_float, help="edge where |value| >= THRESHOLD")
    edges.add_argument("--density", type=_fraction,
                       help="keep this fraction of the strongest pairs per window (default: %(default)s, used when "
                            "neither --threshold nor --significance is given)")  # fmt: skip
    edges.add_argument("--significance", type=_fraction, help="keep pairs beating jitter surrogates at this alpha")
    model = parser.add_argument_group("model")
    model.add_argument("--z-dim", type=_int_at_least_1, help="embedding size (default: %(default)s)")
    model.add_argument("--h-dim", type=_int_at_least_1, help="recurrent state size (default: %(default)s)")
    model.add_argument("--epochs", type=_int_at_least_1, help="training epochs (default: %(default)s)")
    model.add_argument("--attention-window", type=_int_at_least_1, help="attend to the last W windows (default: all)")
    model.add_argument("--attention", action=argparse.BooleanOptionalAction,
                       help="temporal attention over past windows, as in TAVRNN (default: %(default)s, i.e. VGRNN; "
                            "docs/results.md section 8)")  # fmt: skip
    model.add_argument("--edge-weight", dest="use_edge_weight", action=argparse.BooleanOptionalAction,
                       help="weigh edges by |connectivity| in the GCN (default: %(default)s; --no-edge-weight: binary "
                            "graphs, as published; docs/results.md section 9)")  # fmt: skip
    model.add_argument("--edge-dropout", type=_dropout,
                       help="while training, leave each edge out of the propagated graph with this probability "
                            "(default: %(default)s; 0: whole graphs, as published; docs/results.md section 10)")  # fmt: skip
    model.add_argument("--train-recurrence", action="store_true",
                       help="also train the graph GRU's weights (default: kept at their random initialisation, as in "
                            "the published code; docs/results.md section 6)")  # fmt: skip
    model.add_argument("--decoder", choices=["inner_product", "distance"],
                       help="link decoder: sigmoid(z_i . z_j) as published, or sigmoid(r - |z_i - z_j|^2) "
                            "(default: %(default)s)")  # fmt: skip
    model.add_argument("--node-features", choices=["auto", "graph", "adjacency", "identity", "structural"],
                       help="auto = graph: rows of |connectivity|; structural: size-free node statistics (default: %(default)s)")  # fmt: skip
    model.add_argument("--reconstruction", choices=["auto", "dense", "sampled"],
                       help="auto: dense up to 2048 units, sampled above (default: %(default)s)")  # fmt: skip
    model.add_argument("--bptt-windows", type=_int_at_least_1,
                       help="truncated back-propagation through this many windows, for long sessions (default: all)")  # fmt: skip
    model.add_argument("--model", dest="model_path", type=Path,
                       help="embed with a model saved by TAVRNN.save or tavrnn fit instead of training")  # fmt: skip
    model.add_argument("--preset", choices=["parity"], help="the published settings")
    model.add_argument("--score-links", action="store_true", help="also measure link detection / prediction")
    model.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    model.add_argument("--seed", type=_int, help="random seed (default: %(default)s)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", "-o", dest="folder", type=Path, help=output_help)
    out.add_argument("--analyzer-format", choices=["binary_folder", "zarr"], help="(default: %(default)s)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing output folder that this package wrote (never another folder)")  # fmt: skip
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bars or stage lines")
    out.add_argument("--debug", action="store_true", help="print the traceback of an error")


def _set_defaults(parser: argparse.ArgumentParser, **overrides: Any) -> None:
    """Parser defaults = PipelineOptions defaults (one source), then the command's own (the demo's settings)."""
    from .pipeline import PipelineOptions

    defaults = PipelineOptions().flat()
    known = {action.dest for action in parser._actions}
    parser.set_defaults(**{key: value for key, value in defaults.items() if key in known and key != "segment_index"})
    parser.set_defaults(**overrides)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tavrnn`` command."""
    from . import __version__

    parser = _Parser(prog="tavrnn", description="Functional connectivity and TAVRNN embeddings of sorted spikes (spikeinterface_tavrnn).")
    parser.add_argument("--version", action="version", version=f"spikeinterface_tavrnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="analyse one sorted recording")
    run.add_argument("input", type=Path, help="sorting file or folder (sjemea HDF5, Axion CSV, SpikeInterface, phy, NWB, Neo)")
    _add_input_options(run)
    _add_analysis_options(run, "output folder (default: INPUT_NAME_tavrnn in the current folder)")
    _set_defaults(run)

    batch = commands.add_parser("batch", help="analyse many recordings on a Dask cluster, one task each")
    batch.add_argument("inputs", nargs="+", help="recordings or glob patterns ('plate/*.h5')")
    _add_input_options(batch)
    batch.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (default: a LocalCluster)")
    batch.add_argument("--n-workers", type=_int_at_least_1, default=None, help="workers of the local cluster")
    _add_analysis_options(batch, "output folder, one subfolder per recording (default: %(default)s)")
    _set_defaults(batch, folder=Path("tavrnn_batch"))

    fit = commands.add_parser("fit", help="train one model on many recordings and save it (for run --model)")
    fit.add_argument("inputs", nargs="+", help="recordings or glob patterns ('plate/*.h5')")
    _add_input_options(fit)
    fit.add_argument("--recordings-per-step", type=_int_at_least_1, default=1, help="recordings per optimiser step (default: %(default)s)")
    _add_analysis_options(fit, "model file to write (default: %(default)s)")
    _set_defaults(fit, folder=Path("tavrnn_model.npz"), node_features="structural")

    demo = commands.add_parser("demo", help="run on the linear-track recording shipped with the package")
    _add_analysis_options(demo, "output folder (default: %(default)s)")
    _set_defaults(demo, **DEMO_SETTINGS)
    return parser


#: What ``tavrnn demo`` changes from the package defaults (the rat linear-track protocol of the TAVRNN paper).
DEMO_SETTINGS = dict(method="pearson", bin_ms=25.0, density=0.15, node_features="identity", epochs=100,
                     folder=Path("tavrnn_demo"), score_links=True)  # fmt: skip


def flag_names(parser: argparse.ArgumentParser | None = None) -> dict[str, str]:
    """How messages name each option: its long flag (``window_s`` -> ``--window-s``)."""
    parser = parser or build_parser()
    names: dict[str, str] = {"windows": "--intervals / --window-s", "folder": "--output", "model_path": "--model"}
    for sub in parser._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            longs = [flag for flag in action.option_strings if flag.startswith("--")]
            if longs and action.dest not in names:
                names[action.dest] = longs[0]
    return names


_PYTHON_ADVICE = [
    (re.compile(r"\bpass read_sorting\(path, format=\.\.\.\)"), "give --format"),
    (re.compile(r"\bformat=\.\.\.?"), "--format"),
    (re.compile(r"\bsize_s\b"), "--window-s"),
    (re.compile(r"\bscore_links=True\b"), "--score-links"),
]


def _in_flags(message: str, names: dict[str, str]) -> str:
    """A message of the library with Python parameter names put as the command's flags."""
    for pattern, flag in _PYTHON_ADVICE:
        message = pattern.sub(flag, message)
    for dest, flag in names.items():
        if "_" in dest and dest not in ("model_path",):
            message = re.sub(rf"(?<![\w/.-]){dest}(=\S+)?(?![\w/.-])", flag, message)
    return " ".join(message.split())


def _options_from_args(args: argparse.Namespace):
    """A PipelineOptions from the parsed command line (``--intervals`` read here, so that errors come first)."""
    from .pipeline import PipelineOptions

    options = PipelineOptions()
    values = {key: getattr(args, key) for key in options.flat() if hasattr(args, key)}
    if values.get("segment_index") is None:
        values.pop("segment_index", None)
    values["quiet"] = bool(getattr(args, "quiet", False))
    if getattr(args, "intervals", None) is not None:
        from .io.intervals import read_intervals_csv

        values["windows"] = read_intervals_csv(args.intervals)
    return options.update(values)


def _read_input(path: Path, format: str | None, sampling_frequency: float | None):
    """Read a recording; any problem is a TavrnnInputError that names the file and the flag to use."""
    from .io import SUPPORTED_FORMATS, read_sorting

    kwargs = {} if sampling_frequency is None else {"sampling_frequency": sampling_frequency}
    if not Path(path).exists():
        raise TavrnnInputError(f"input {os.fspath(path)!r}: no such file or folder")
    try:
        return read_sorting(path, format=format, **kwargs)
    except TavrnnInputError:
        raise
    except Exception as error:  # damaged or unknown files: the user's input problem, in one line
        reason = " ".join(str(error).split()) or type(error).__name__
        if format is None and "Could not identify" in reason:
            raise TavrnnInputError(
                f"cannot read {os.fspath(path)!r}: its spike data format was not recognised; give --format "
                f"(one of {', '.join(SUPPORTED_FORMATS)})"
            ) from error
        raise TavrnnInputError(
            f"cannot read {os.fspath(path)!r} ({type(error).__name__}: {reason[:300]}); the file may be damaged, or "
            "give the right --format"
        ) from error


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tavrnn`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = flag_names(parser)
    try:
        return _dispatch(args, names)
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, (TavrnnInputError, OSError)):
            message = str(error) if isinstance(error, TavrnnInputError) else f"{type(error).__name__}: {error}"
            print(f"tavrnn: error: {_in_flags(message, names)}", file=sys.stderr)
            return 2
        print(f"tavrnn: internal error: {type(error).__name__}: {' '.join(str(error).split())[:300]} "
              "(run again with --debug for the traceback, and report it)", file=sys.stderr)  # fmt: skip
        return 1


def _dispatch(args: argparse.Namespace, names: dict[str, str]) -> int:
    if args.command == "run":
        return _run(args, names)
    if args.command == "batch":
        return _run_batch(args, names)
    if args.command == "fit":
        return _run_fit(args, names)
    return _run_demo(args, names)


def _run(args: argparse.Namespace, names: dict[str, str]) -> int:
    from . import pipeline
    from .outputs import check_output_target

    if args.folder is None:
        args.folder = Path(f"{args.input.name.split('.')[0]}_tavrnn")
    options = _options_from_args(args)
    options.output.title = f"TAVRNN: {args.input.name}"
    options.validate(names)
    check_output_target(args.folder, args.overwrite, [args.input], flag="--output")
    sorting = _read_input(args.input, args.format, args.sampling_frequency)
    pipeline.check_inputs(sorting, options, names)
    result = pipeline.run_pipeline(sorting, options, inputs=[args.input], names=names)
    _print_result(result)
    return 0


def _print_result(result) -> None:
    print(f"Analyzer: {result.analyzer_folder}")
    print(f"Report:   {result.report_index}")


def _run_batch(args: argparse.Namespace, names: dict[str, str]) -> int:
    from .batch import expand_inputs, run_batch

    options = _options_from_args(args)
    options.validate(names)
    try:
        paths = expand_inputs(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        raise TavrnnInputError(str(error)) from None
    rows = run_batch(paths, args.folder, options=options, reader=dict(format=args.format,
                     sampling_frequency=args.sampling_frequency), scheduler=args.scheduler,
                     n_workers=args.n_workers, overwrite=args.overwrite, verbose=not args.quiet)  # fmt: skip
    failed = [row for row in rows if row["status"] == "failed"]
    for row in failed:
        print(f"failed: {row['input']}: {row['error']}", file=sys.stderr)
    counts = {status: sum(row["status"] == status for row in rows) for status in ("done", "skipped", "failed")}
    print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")
    print(f"Table: {Path(args.folder) / 'batch_summary.csv'}")
    return 1 if failed else 0


def _run_fit(args: argparse.Namespace, names: dict[str, str]) -> int:
    """``tavrnn fit``: connectivity of every recording, one model on all of them, saved atomically."""
    from tqdm.auto import tqdm

    from .batch import expand_inputs
    from .estimator import TAVRNN
    from .fileio import temporary_sibling
    from .pipeline import check_inputs, recording_graphs

    options = _options_from_args(args)
    options.validate(names)
    try:
        paths = expand_inputs(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        raise TavrnnInputError(str(error)) from None
    output = Path(args.folder)
    if output.is_dir():
        raise TavrnnInputError(f"--output {os.fspath(output)!r} is a folder; give a model file name, e.g. model.npz")
    if output.exists() and not args.overwrite:
        raise TavrnnInputError(f"--output {os.fspath(output)!r} exists; pass --overwrite to replace it, or choose another --output")
    sortings = [_read_input(path, args.format, args.sampling_frequency) for path in paths]
    for sorting in sortings:
        check_inputs(sorting, options, names)
    graphs = [recording_graphs(s, options) for s in tqdm(sortings, desc="connectivity", disable=args.quiet)]
    model_params = {k: v for k, v in options.embedding_params().items() if k not in ("score_links", "model_path")}
    if not args.quiet:
        print("TAVRNN fit on all recordings", file=sys.stderr)
    model = TAVRNN(**model_params, recordings_per_step=args.recordings_per_step, verbose=not args.quiet)
    model.fit(graphs)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(output, "partial")
    try:
        model.save(partial)
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()
    print(f"Trained on {len(graphs)} recordings ({sum(g.num_nodes for g in graphs)} units), "
          f"{model.n_epochs_} epochs, final loss {model.loss_history_[-1]:.4f}")  # fmt: skip
    print(f"Model: {output}  (embed a recording with: tavrnn run RECORDING --model {output})")
    return 0


def _run_demo(args: argparse.Namespace, names: dict[str, str]) -> int:
    """``tavrnn demo``: the rat linear-track protocol of the TAVRNN paper on the shipped recording."""
    from . import pipeline
    from .datasets import linear_track_visit_windows, load_linear_track
    from .outputs import check_output_target

    options = _options_from_args(args)
    options.validate(names)
    check_output_target(args.folder, args.overwrite, flag="--output")
    start = time.perf_counter()
    sorting, position = load_linear_track()
    windows = demo_windows(linear_track_visit_windows(position), options.connectivity.bin_ms)
    if options.connectivity.windows is None:
        options.connectivity.windows = windows
    options.output.title = "TAVRNN demo: rat CA1 on a linear track, one window per visit to a track segment"
    labels = ", ".join(sorted({str(label) for label in windows.labels}))
    result = pipeline.run_pipeline(sorting, options, names=names,
                                   extra_tables={"Demo": [{"windows": len(windows), "labels": labels}]})  # fmt: skip
    if not args.quiet:
        print(f"Demo finished in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    _print_result(result)
    return 0


def demo_windows(windows, bin_ms: float | None):
    """The demo's visit windows, each shortened to a whole number of ``bin_ms`` bins (so that no spike is unbinned)."""
    import numpy as np

    from .windows import Windows

    if not bin_ms:
        return windows
    bin_s = bin_ms / 1000.0
    lengths = np.floor((windows.stops - windows.starts) / bin_s + 1e-9) * bin_s
    return Windows(windows.starts, windows.starts + lengths, windows.labels)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
