"""The whole analysis in one call: connectivity, graphs, TAVRNN embeddings and a report, with one set of options.

:class:`PipelineOptions` groups the settings (connectivity, graph rule, model, output); its defaults are the
package's defaults, read from the signatures that own them (``compute_connectivity``, the
``functional_connectivity`` extension, ``TAVRNN``), so the ``tavrnn`` command, :func:`run_batch
<spikeinterface_tavrnn.batch.run_batch>`, the analyzer extensions and the estimator agree.
:func:`run_pipeline` runs it and returns a :class:`PipelineResult` (the analyzer, the paths and the summary
numbers). An output folder is written through :func:`~spikeinterface_tavrnn.outputs.output_folder`: built beside,
swapped in by renames, locked against a second run, and never replacing a folder this package did not write.

Examples
--------
>>> import spikeinterface_tavrnn as st  # doctest: +SKIP
>>> from spikeinterface_tavrnn.pipeline import PipelineOptions, run_pipeline  # doctest: +SKIP
>>> options = PipelineOptions.from_dict(dict(method="sttc", density=0.1, epochs=300), output="results")  # doctest: +SKIP
>>> result = run_pipeline(st.read_sorting("recording.h5"), options)  # doctest: +SKIP
>>> result.summary["n_windows"], result.report_index  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .defaults import model_defaults, signature_defaults
from .errors import TavrnnInputError
from .extensions import ComputeFunctionalConnectivity
from .windows import Windows

__all__ = [
    "ConnectivityOptions",
    "GraphRule",
    "ModelOptions",
    "OutputOptions",
    "PipelineOptions",
    "PipelineResult",
    "check_inputs",
    "run_pipeline",
    "summarize_analyzer",
]

_CONNECTIVITY = signature_defaults(ComputeFunctionalConnectivity._set_params)
_ANALYZER_FORMATS = ("binary_folder", "zarr")


@dataclass
class ConnectivityOptions:
    """How connectivity is computed: method, windows, segment (defaults: the ``functional_connectivity`` extension's).

    ``windows`` (behaviour-aligned windows, e.g. from
    :func:`~spikeinterface_tavrnn.io.intervals.read_intervals_csv`) replaces the sliding windows when given.
    """

    method: str = _CONNECTIVITY["method"]
    window_s: float | None = _CONNECTIVITY["window_s"]
    step_s: float | None = _CONNECTIVITY["step_s"]
    windows: Windows | None = None
    dt_ms: float | None = _CONNECTIVITY["dt_ms"]
    bin_ms: float | None = _CONNECTIVITY["bin_ms"]
    binary: bool | None = _CONNECTIVITY["binary"]
    max_lag_ms: float | None = _CONNECTIVITY["max_lag_ms"]
    backend: str = _CONNECTIVITY["backend"]
    segment_index: int | None = _CONNECTIVITY["segment_index"]
    label_property: str | None = _CONNECTIVITY["label_property"]
    check_spike_times: bool = _CONNECTIVITY["check_spike_times"]


@dataclass
class GraphRule:
    """Which unit pairs become edges: ``density`` is used when neither ``threshold`` nor ``significance`` is given."""

    threshold: float | None = _CONNECTIVITY["threshold"]
    density: float | None = _CONNECTIVITY["density"]
    significance: float | None = _CONNECTIVITY["significance"]
    jitter_ms: float = _CONNECTIVITY["jitter_ms"]
    n_surrogates: int = _CONNECTIVITY["n_surrogates"]
    seed: int | None = _CONNECTIVITY["seed"]


def _model_fields() -> list[tuple[str, Any, Any]]:
    defaults = {**model_defaults(), "score_links": False, "model_path": None}
    return [(name, Any, field(default=value)) for name, value in defaults.items()]


#: The ``TAVRNN`` parameters (defaults: its signature) plus ``score_links`` and ``model_path`` (a saved model to
#: embed with instead of training), as in the ``tavrnn_embeddings`` extension.
ModelOptions = dataclasses.make_dataclass("ModelOptions", _model_fields())
ModelOptions.__module__ = __name__
ModelOptions.__doc__ = (
    "The model settings: every parameter of ``TAVRNN`` with its default (read from its signature), plus "
    "``score_links`` (also measure link detection / prediction) and ``model_path`` (embed with a saved model)."
)


@dataclass
class OutputOptions:
    """Where results go. ``folder=None`` keeps the analyzer in memory and writes nothing."""

    folder: Path | None = None
    overwrite: bool = False
    analyzer_format: str = "binary_folder"
    report: bool = True
    title: str | None = None
    quiet: bool = False


_GROUPS = {"connectivity": ConnectivityOptions, "graph": GraphRule, "model": ModelOptions, "output": OutputOptions}


@dataclass
class PipelineOptions:
    """All settings of :func:`run_pipeline`, in four groups; every default is the package's default."""

    connectivity: ConnectivityOptions = field(default_factory=ConnectivityOptions)
    graph: GraphRule = field(default_factory=GraphRule)
    model: ModelOptions = field(default_factory=ModelOptions)
    output: OutputOptions = field(default_factory=OutputOptions)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **more: Any) -> "PipelineOptions":
        """Options from flat names (``method=``, ``window_s=``, ``density=``, ``epochs=``, ``output=``...).

        ``output`` is the output folder (``folder`` of :class:`OutputOptions`). Unknown names raise
        :class:`~spikeinterface_tavrnn.errors.TavrnnInputError`.
        """
        options = cls()
        options.update({**dict(values or {}), **more})
        return options

    def update(self, values: Mapping[str, Any]) -> "PipelineOptions":
        """Set options by their flat names (see :meth:`from_dict`); returns self."""
        for name, value in values.items():
            if name == "output":
                name = "folder"
            for group_name in _GROUPS:
                group = getattr(self, group_name)
                if name in {f.name for f in dataclasses.fields(group)}:
                    setattr(group, name, value)
                    break
            else:
                raise TavrnnInputError(f"unknown pipeline option {name!r}; known: {sorted(self.flat())}")
        return self

    def flat(self) -> dict[str, Any]:
        """All options by flat name (the names :meth:`from_dict` takes)."""
        values = {}
        for group_name in _GROUPS:
            values.update(dataclasses.asdict(getattr(self, group_name)) if group_name != "connectivity" else
                          {f.name: getattr(self.connectivity, f.name) for f in dataclasses.fields(self.connectivity)})
        return values

    def connectivity_params(self) -> dict[str, Any]:
        """Parameters of ``analyzer.compute("functional_connectivity", ...)``."""
        c, g = self.connectivity, self.graph
        params = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name != "windows"}
        params.update(dataclasses.asdict(g))
        if c.windows is not None:
            params.update(window_starts_s=c.windows.starts, window_stops_s=c.windows.stops,
                          window_labels=c.windows.labels)  # fmt: skip
        return params

    def embedding_params(self) -> dict[str, Any]:
        """Parameters of ``analyzer.compute("tavrnn_embeddings", ...)``."""
        params = dataclasses.asdict(self.model)
        if params["model_path"] is not None:
            params["model_path"] = os.fspath(Path(params["model_path"]).resolve())
        return params

    def validate(self, names: Mapping[str, str] | None = None) -> None:
        """Check every value before any work; ``names`` maps option names to how messages name them (CLI flags).

        Raises
        ------
        TavrnnInputError
            One line naming the option and the fix.
        """
        from .connectivity import available_methods

        name = lambda key: (names or {}).get(key, key)  # noqa: E731
        c, g, m, o = self.connectivity, self.graph, self.model, self.output
        if c.method not in available_methods():
            raise TavrnnInputError(f"{name('method')} {c.method!r} is not a connectivity method; choose one of {available_methods()}")
        for key in ("window_s", "step_s", "dt_ms", "bin_ms", "max_lag_ms"):
            value = getattr(c, key)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise TavrnnInputError(f"{name(key)} must be a positive number, got {value!r}")
        if g.threshold is not None and g.significance is not None:
            raise TavrnnInputError(f"give one edge rule: {name('threshold')} or {name('significance')}, not both")
        if g.threshold is not None and not math.isfinite(g.threshold):
            raise TavrnnInputError(f"{name('threshold')} must be a finite number, got {g.threshold!r}")
        if g.threshold is None and g.significance is None:
            if g.density is None or not 0 < g.density <= 1:
                raise TavrnnInputError(f"{name('density')} must be a fraction in (0, 1], got {g.density!r}")
        if g.significance is not None and not 0 < g.significance < 1:
            raise TavrnnInputError(f"{name('significance')} must be a level in (0, 1), got {g.significance!r}")
        for key in ("z_dim", "h_dim", "n_layers", "epochs"):
            if not isinstance(getattr(m, key), int) or getattr(m, key) < 1:
                raise TavrnnInputError(f"{name(key)} must be a whole number >= 1, got {getattr(m, key)!r}")
        for key in ("attention_window", "bptt_windows"):
            value = getattr(m, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise TavrnnInputError(f"{name(key)} must be a whole number >= 1 (or left out for all windows), got {value!r}")
        _check_device(m.device, name("device"))
        if m.model_path is not None:
            check_model_file(m.model_path, m.device, name("model_path"))
        if o.analyzer_format not in _ANALYZER_FORMATS:
            raise TavrnnInputError(f"{name('analyzer_format')} must be one of {list(_ANALYZER_FORMATS)}, got {o.analyzer_format!r}")


def _check_device(device: Any, flag: str) -> None:
    text = str(device)
    if text in ("auto", "cpu"):
        return
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise TavrnnInputError(f"{flag} {text}: no CUDA GPU is available here; use {flag} cpu (or auto)")
        index = text.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise TavrnnInputError(f"{flag} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return
    raise TavrnnInputError(f"{flag} must be auto, cpu, cuda or cuda:N, got {text!r}")


def check_model_file(path: str | os.PathLike, device: Any = "cpu", flag: str = "model_path"):
    """Load a model saved by ``TAVRNN.save`` now, so that a damaged file is refused before any work.

    Returns
    -------
    TAVRNN
        The loaded model.

    Raises
    ------
    TavrnnInputError
        When the file is missing or is not a readable TAVRNN model (any damage: truncated, not a zip, bad JSON...).
    """
    from .estimator import TAVRNN

    path = Path(path)
    if not path.is_file():
        raise TavrnnInputError(f"{flag} {os.fspath(path)!r}: no such file; save a model with TAVRNN.save (or tavrnn fit)")
    try:
        return TAVRNN.load(path, device="cpu" if str(device) == "auto" else device)
    except Exception as error:  # any damage to the file is the user's input problem, reported in one line
        reason = " ".join(str(error).split()) or type(error).__name__
        raise TavrnnInputError(
            f"{flag} {os.fspath(path)!r} is not a readable model saved by TAVRNN.save ({type(error).__name__}: "
            f"{reason[:200]}); save it again"
        ) from error


def check_inputs(sorting: Any, options: PipelineOptions, names: Mapping[str, str] | None = None) -> Windows:
    """Check the options against the recording before any work (segment, windows inside it); return the windows.

    Parameters
    ----------
    sorting : BaseSorting, SortingAnalyzer or SpikeTrains
        The recording to analyse.
    options : PipelineOptions
    names : mapping or None, default: None
        How messages name the options (the CLI's flags).

    Raises
    ------
    TavrnnInputError
    """
    from .spiketrains import SpikeTrains
    from .windows import sliding_windows

    name = lambda key: (names or {}).get(key, key)  # noqa: E731
    c = options.connectivity
    if isinstance(sorting, SpikeTrains):
        spikes = sorting
    else:
        base = sorting.sorting if hasattr(sorting, "get_extension") else sorting
        n_segments = base.get_num_segments()
        index = c.segment_index
        if isinstance(index, int) and not -n_segments <= index < n_segments or isinstance(index, bool):
            raise TavrnnInputError(
                f"{name('segment_index')} {index}: the recording has {n_segments} segment(s), numbered 0 to {n_segments - 1}"
            )
        with warnings.catch_warnings():  # the computation itself warns about the same spikes, once
            warnings.simplefilter("ignore")
            spikes = SpikeTrains.from_sorting(sorting, segment_index=index, label_property=None, duplicates="keep")
    span = (spikes.t_start_s, spikes.t_stop_s)
    if c.windows is not None:
        windows = c.windows
    elif c.window_s is None:
        windows = Windows([span[0]], [span[1]])
    else:
        if c.window_s > span[1] - span[0]:
            raise TavrnnInputError(
                f"{name('window_s')} {c.window_s:g} is longer than the recording ({span[1] - span[0]:g} s); give a "
                f"shorter {name('window_s')}"
            )
        windows = sliding_windows(span[0], span[1], c.window_s, c.step_s)
    try:
        windows.check_within(*span)
    except ValueError as error:
        raise TavrnnInputError(f"{error} ({name('windows')})") from None
    return windows


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns: the analyzer, where things were written, and the summary numbers."""

    analyzer: Any
    folder: Path | None
    analyzer_folder: Path | None
    report_folder: Path | None
    summary: dict[str, Any]

    @property
    def report_index(self) -> Path | None:
        """The report's ``index.html`` (None when no report was written)."""
        return None if self.report_folder is None else self.report_folder / "index.html"


def summarize_analyzer(analyzer) -> dict[str, Any]:
    """The summary numbers of an analyzer with both extensions: units, windows, final loss, link scores."""
    connectivity = analyzer.get_extension("functional_connectivity")
    embeddings = analyzer.get_extension("tavrnn_embeddings")
    summary: dict[str, Any] = {
        "n_units": int(analyzer.get_num_units()),
        "n_windows": None if connectivity is None else len(connectivity.get_windows()),
        "final_loss": None,
        "link_scores": None,
    }
    if embeddings is not None:
        loss = embeddings.get_data("loss_history")
        summary["final_loss"] = float(loss[-1]) if len(loss) else None
        if embeddings.params.get("score_links"):
            summary["link_scores"] = embeddings.get_data("link_scores")
    return summary


def _stage(number: int, total: int, text: str, quiet: bool) -> None:
    if not quiet:
        print(f"[{number}/{total}] {text}", file=sys.stderr, flush=True)


def _make_analyzer(sorting: Any, analyzer_format: str, folder: Path | None):
    from .analyzer import create_analyzer_from_spikes

    with warnings.catch_warnings():
        # SpikeInterface's note that an in-memory sorting has no provenance to save: nothing to act on here
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        if hasattr(sorting, "get_extension"):
            if folder is None:
                return sorting.copy() if hasattr(sorting, "copy") else sorting
            return sorting.save_as(format=analyzer_format, folder=folder)
        if hasattr(sorting, "to_sorting") and not hasattr(sorting, "get_num_segments"):
            sorting = sorting.to_sorting()
        if folder is None:
            return create_analyzer_from_spikes(sorting)
        return create_analyzer_from_spikes(sorting, format=analyzer_format, folder=folder)


def _compute(sorting: Any, options: PipelineOptions, staging: Path | None, extra_tables) -> tuple[Any, dict]:
    quiet = options.output.quiet
    total = 3 if staging is not None and options.output.report else 2
    suffix = ".zarr" if options.output.analyzer_format == "zarr" else ""
    analyzer = _make_analyzer(sorting, options.output.analyzer_format,
                              None if staging is None else staging / f"analyzer{suffix}")  # fmt: skip
    _stage(1, total, f"connectivity ({options.connectivity.method}) and graphs", quiet)
    analyzer.compute("functional_connectivity", verbose=not quiet, **options.connectivity_params())
    what = "TAVRNN embedding with a saved model" if options.model.model_path is not None else "TAVRNN fit"
    if options.model.score_links:
        what += ", then link scoring (a second fit with hidden edges)"
    _stage(2, total, what, quiet)
    analyzer.compute("tavrnn_embeddings", verbose=not quiet, **options.embedding_params())
    summary = summarize_analyzer(analyzer)
    if total == 3:
        from .report import write_report

        _stage(3, total, "report", quiet)
        write_report(analyzer, staging / "report", title=options.output.title, extra_tables=extra_tables)
    return analyzer, summary


def run_pipeline(
    sorting_or_spikes: Any,
    options: PipelineOptions | None = None,
    *,
    extra_tables: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    names: Mapping[str, str] | None = None,
) -> PipelineResult:
    """Connectivity, graphs, TAVRNN embeddings and (with an output folder) an analyzer folder and a report.

    Parameters
    ----------
    sorting_or_spikes : BaseSorting, SortingAnalyzer or SpikeTrains
        The recording. An analyzer is copied (its existing extensions are kept, ours recomputed).
    options : PipelineOptions or None, default: None
        The settings; None for the package's defaults. With ``options.output.folder`` the result is written to
        ``FOLDER/analyzer`` (or ``analyzer.zarr``) and ``FOLDER/report``; without, the analyzer stays in memory.
    extra_tables : mapping or None, default: None
        More tables for the report (title -> list of rows).
    inputs : iterable of paths, default: ()
        The input files: an output folder that contains one of them is refused.
    names : mapping or None, default: None
        How error messages name the options (the ``tavrnn`` command passes its flags).

    Returns
    -------
    PipelineResult

    Raises
    ------
    TavrnnInputError
        For any problem with the options, the recording or the output folder, before any work is done.
    """
    from .outputs import check_output_target, output_folder

    options = options or PipelineOptions()
    options.validate(names)
    flag = (names or {}).get("folder", "output")
    folder = options.output.folder
    if folder is not None:
        check_output_target(folder, options.output.overwrite, inputs, flag=flag)
    check_inputs(sorting_or_spikes, options, names)
    if folder is None:
        analyzer, summary = _compute(sorting_or_spikes, options, None, extra_tables)
        return PipelineResult(analyzer, None, None, None, summary)
    with output_folder(folder, options.output.overwrite, inputs, kind="pipeline", flag=flag) as staging:
        analyzer, summary = _compute(sorting_or_spikes, options, staging, extra_tables)
        del analyzer  # its files move with the swap; reloaded below from the final place
    from .analyzer import load_sorting_analyzer

    folder = Path(folder)
    suffix = ".zarr" if options.output.analyzer_format == "zarr" else ""
    report = folder / "report" if options.output.report else None
    return PipelineResult(load_sorting_analyzer(folder / f"analyzer{suffix}"), folder, folder / f"analyzer{suffix}",
                          report, summary)  # fmt: skip


def recording_graphs(sorting: Any, options: PipelineOptions | None = None):
    """The thresholded connectivity graphs of one recording, without an analyzer (for a model fit on many).

    Parameters
    ----------
    sorting : BaseSorting, SortingAnalyzer or SpikeTrains
    options : PipelineOptions or None, default: None
        Its connectivity and graph rule are used (the same rule as the ``functional_connectivity`` extension).

    Returns
    -------
    GraphSequence
    """
    from .connectivity import compute_connectivity
    from .spiketrains import SpikeTrains

    options = options or PipelineOptions()
    windows = check_inputs(sorting, options)
    c, g = options.connectivity, options.graph
    spikes = sorting if isinstance(sorting, SpikeTrains) else SpikeTrains.from_sorting(
        sorting, segment_index=c.segment_index, label_property=c.label_property, duplicates="keep")  # fmt: skip
    accepted = signature_defaults(compute_connectivity)
    from .connectivity.registry import get_estimator

    method_accepts = get_estimator(c.method).defaults
    method_params = {key: getattr(c, key) for key in ("dt_ms", "bin_ms", "binary", "max_lag_ms")
                     if getattr(c, key) is not None and key in method_accepts}  # fmt: skip
    if "check_spike_times" in accepted:
        method_params["check_spike_times"] = c.check_spike_times
    sequence = compute_connectivity(spikes, windows, method=c.method, backend=c.backend, verbose=False, **method_params)
    density = None if (g.threshold is not None or g.significance is not None) else g.density
    return sequence.to_graphs(threshold=g.threshold, density=density, significance=g.significance,
                              jitter_ms=g.jitter_ms, n_surrogates=g.n_surrogates, seed=g.seed, verbose=False)  # fmt: skip
