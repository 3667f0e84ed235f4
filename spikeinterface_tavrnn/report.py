"""A self-contained HTML report of an analyzer's functional connectivity and TAVRNN embeddings.

:func:`write_report` writes a folder::

    index.html           the report: tables of numbers and the figures (referenced by relative path)
    summary.json         the same numbers, for scripts
    connectivity.png     connectivity matrices of up to 6 windows, units grouped by label
    window_summary.png   edge density and mean |connectivity| per window
    embeddings.png       unit embeddings of up to 6 windows in 2-D (one PCA fitted on all windows)
    attention.png        temporal attention weights (query window x key window)
    loss.png             training loss per epoch
    link_scores.png      link detection / prediction scores (when computed with ``score_links=True``)

The folder is built next to its destination and renamed into place only when complete, so a failure never
leaves a partial report, and an existing report is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import widgets as _widgets
from .widgets.base import grid_figsize, require_extension
from .extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION

__all__ = ["write_report", "report_summary"]

_DPI = 110

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 1.5em 2em 4em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.meta { color: #666; font-size: 0.9em; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
p.note { color: #8a5a00; background: #fff8e6; border-left: 3px solid #e0a800; padding: 0.4em 0.8em; }
div.scroll { max-height: 28em; overflow-y: auto; display: inline-block; }
"""


# ---------------------------------------------------------------------------------------------- numbers
def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _runtime_s(extension) -> float | None:
    run_info = getattr(extension, "run_info", None) or {}
    runtime = run_info.get("runtime_s")
    return None if runtime is None else float(runtime)


def _median_or_none(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def report_summary(analyzer) -> dict:
    """The numbers of the report, as a JSON-ready dictionary (also written as ``summary.json``).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        An analyzer with the ``functional_connectivity`` extension (``tavrnn_embeddings`` is optional).

    Returns
    -------
    summary : dict
        Sections ``recording``, ``connectivity``, ``model`` (None without embeddings), ``link_scores`` (None
        when not computed) and ``windows`` (one row per window). NaN values are None.
    """
    from spikeinterface import __version__ as si_version

    from . import __version__

    connectivity = require_extension(analyzer, CONNECTIVITY_EXTENSION)
    matrices = connectivity.get_matrices()
    n_windows, n_units = int(matrices.shape[0]), int(matrices.shape[1])
    windows = connectivity.get_windows()
    starts, stops, window_labels = np.asarray(windows.starts, float), np.asarray(windows.stops, float), windows.labels
    density = connectivity.get_edge_density()
    n_edges = np.rint(density * n_units * (n_units - 1) / 2).astype(np.int64) if n_units > 1 else None
    mean_abs = _widgets.mean_abs_offdiagonal(matrices)

    labels = _widgets.unit_labels_from_analyzer(analyzer)
    label_counts = None
    if labels is not None:
        names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
        label_counts = {str(name): int(count) for name, count in zip(names, counts)}
    try:
        duration_s = float(analyzer.get_total_duration())
    except Exception:  # an analyzer without a usable recording still gets a report
        duration_s = None

    params = dict(connectivity.params or {})
    durations = stops - starts
    summary: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"spikeinterface_tavrnn": __version__, "spikeinterface": si_version},
        "recording": {
            "n_units": n_units,
            "n_windows": n_windows,
            "sampling_frequency_hz": float(analyzer.sampling_frequency),
            "duration_s": duration_s,
            "unit_label_counts": label_counts,
        },
        "connectivity": {
            "method": params.get("method"),
            "window_s": params.get("window_s"),
            "step_s": params.get("step_s"),
            "behaviour_aligned_windows": params.get("window_starts_s") is not None,
            "window_duration_median_s": _median_or_none(durations),
            "window_duration_min_s": float(durations.min()) if durations.size else None,
            "window_duration_max_s": float(durations.max()) if durations.size else None,
            "window_step_median_s": _median_or_none(np.diff(starts)),
            "threshold": params.get("threshold"),
            "density": params.get("density"),
            "significance": params.get("significance"),
            "mean_edge_density": None if density is None else float(np.nanmean(density)) if n_units > 1 else None,
            "runtime_s": _runtime_s(connectivity),
            "params": params,
        },
        "model": None,
        "link_scores": None,
        "windows": [],
    }
    for t in range(n_windows):
        row = {"index": t, "start_s": float(starts[t]), "stop_s": float(stops[t])}
        if window_labels is not None:
            row["label"] = np.asarray(window_labels)[t]
        if n_edges is not None:
            row["n_edges"] = int(n_edges[t])
            row["edge_density"] = float(density[t])
        row["mean_abs_connectivity"] = float(mean_abs[t])
        summary["windows"].append(row)

    if analyzer.has_extension(EMBEDDINGS_EXTENSION):
        embeddings_ext = analyzer.get_extension(EMBEDDINGS_EXTENSION)
        loss = np.asarray(embeddings_ext.get_loss_history(), dtype=float)
        embeddings_shape = np.shape(embeddings_ext.get_embeddings())
        summary["model"] = {
            "z_dim": int(embeddings_shape[-1]),
            "embeddings_shape": [int(n) for n in embeddings_shape],
            "epochs_run": int(loss.size),
            "final_loss": float(loss[-1]) if loss.size else None,
            "min_loss": float(np.nanmin(loss)) if loss.size and np.any(np.isfinite(loss)) else None,
            "training_time_s": _runtime_s(embeddings_ext),
            "stale": embeddings_ext.is_stale(),
            "params": dict(embeddings_ext.params or {}),
        }
        summary["link_scores"] = embeddings_ext.get_link_scores()
    return _jsonable(summary)


# ---------------------------------------------------------------------------------------------- figures
def _save(widget, path: Path, dpi: int) -> None:
    widget.figure.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")


def _make_figure(figsize: tuple[float, float]):
    # A pyplot-free Figure: nothing is displayed or left open, whatever backend the user has selected.
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _figures(analyzer, folder: Path, embedding_method: str, dpi: int) -> list[tuple[str, str, str]]:
    """Draw every available figure into ``folder``; returns (file name, heading, caption) tuples."""
    connectivity = analyzer.get_extension(CONNECTIVITY_EXTENSION)
    n_windows = int(connectivity.get_matrices().shape[0])
    n_panels = len(_widgets.select_windows(n_windows, None))
    ncols = max(1, int(np.ceil(np.sqrt(n_panels))))
    grid_size = grid_figsize(n_panels, ncols)
    has_labels = _widgets.unit_labels_from_analyzer(analyzer) is not None

    specs: list[tuple[str, str, str, Callable[[Any], Any]]] = [
        (
            "connectivity.png",
            "Connectivity matrices",
            "Unthresholded connectivity of up to six evenly spaced windows"
            + (", units grouped by label (lines: label boundaries)" if has_labels else "")
            + "; the diagonal is not drawn; one colour scale for all panels.",
            lambda fig: _widgets.plot_connectivity_matrices(analyzer, figure=fig, ncols=ncols, backend="matplotlib"),
        ),
        (
            "window_summary.png",
            "Per-window summary",
            "Edge density of the thresholded graph and mean |connectivity| (off-diagonal) per window.",
            lambda fig: _widgets.plot_window_summary(analyzer, figure=fig, backend="matplotlib"),
        ),
    ]
    if analyzer.has_extension(EMBEDDINGS_EXTENSION):
        embeddings_ext = analyzer.get_extension(EMBEDDINGS_EXTENSION)
        specs += [
            (
                "embeddings.png",
                "Embeddings",
                f"Unit embeddings of up to six windows in 2-D ({embedding_method.upper()} fitted once on all "
                "windows, so panels share axes)" + (", coloured by unit label." if has_labels else "."),
                lambda fig: _widgets.plot_embeddings(
                    analyzer, method=embedding_method, figure=fig, ncols=ncols, backend="matplotlib"
                ),
            ),
            (
                "attention.png",
                "Temporal attention",
                "Attention weights of each query window (row) over key windows (columns).",
                lambda fig: _widgets.plot_attention_weights(analyzer, figure=fig, backend="matplotlib"),
            ),
            (
                "loss.png",
                "Training loss",
                "Training loss per epoch.",
                lambda fig: _widgets.plot_loss_history(analyzer, figure=fig, backend="matplotlib"),
            ),
        ]
        if embeddings_ext.get_link_scores() is not None:
            specs.append(
                (
                    "link_scores.png",
                    "Link scores",
                    "Link detection and prediction scores (AUC, AP); dashed line: AUC of a random scorer.",
                    lambda fig: _widgets.plot_link_scores(analyzer, figure=fig, backend="matplotlib"),
                )
            )

    sizes = {"connectivity.png": grid_size, "embeddings.png": grid_size, "window_summary.png": (7.0, 5.4)}
    written = []
    for file_name, heading, caption, draw in specs:
        figure = _make_figure(sizes.get(file_name, (6.5, 4.5)))
        widget = draw(figure)
        _save(widget, folder / file_name, dpi)
        written.append((file_name, heading, caption))
    return written


# ---------------------------------------------------------------------------------------------- HTML
def _plain(value: Any) -> str:
    """Text of a table value (not escaped)."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "\u2013"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "\u2013"
    return str(value)


def _format(value: Any) -> str:
    return html.escape(_plain(value))


def _cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_format(value)}</td>' if numeric else f"<td>{_format(value)}</td>"


def _key_value_table(rows: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def _rows_table(rows: Sequence[Mapping[str, Any]], scroll: bool = False) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell({str(k): v for k, v in row.items()}.get(c)) for c in columns) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if scroll else table


def _extra_table_html(table: Any) -> str:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # a pandas DataFrame
        table = table.to_dict("records")
    if isinstance(table, Mapping):
        return _key_value_table(_jsonable(table))
    rows = _jsonable(list(table))
    if not all(isinstance(row, Mapping) for row in rows):
        raise TypeError("Each extra table must be a dict (key -> value) or a list of dicts (one per row).")
    return _rows_table(rows)


def _html(title: str, summary: dict, figures: list[tuple[str, str, str]], extra_tables: Mapping | None) -> str:
    recording, connectivity, model = summary["recording"], summary["connectivity"], summary["model"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Created {html.escape(summary["created"])} with '
        + html.escape(", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
        + ". Numbers also in <a href=\"summary.json\">summary.json</a>.</p>",
        "<h2>Summary</h2>",
    ]
    overview = {
        "units": recording["n_units"],
        "windows": recording["n_windows"],
        "duration (s)": recording["duration_s"],
        "sampling frequency (Hz)": recording["sampling_frequency_hz"],
        "unit labels": recording["unit_label_counts"],
        "connectivity method": connectivity["method"],
        "mean edge density": connectivity["mean_edge_density"],
    }
    if model is not None:
        overview.update(
            {
                "embedding size (z_dim)": model["z_dim"],
                "epochs run": model["epochs_run"],
                "final loss": model["final_loss"],
                "training time (s)": model["training_time_s"],
            }
        )
    parts.append(_key_value_table(overview))
    if model is not None and model["stale"]:
        parts.append(
            '<p class="note">Units were merged or split after training: their embeddings are NaN. Recompute with '
            "analyzer.compute(&quot;tavrnn_embeddings&quot;, ...).</p>"
        )

    parts.append("<h2>Functional connectivity</h2>")
    durations = [connectivity[f"window_duration_{k}_s"] for k in ("median", "min", "max")]
    windows_rows = {
        "method": connectivity["method"],
        "window size (s, parameter)": connectivity["window_s"],
        "window step (s, parameter)": connectivity["step_s"],
        "behaviour-aligned windows": connectivity["behaviour_aligned_windows"],
        "window duration (s): median / min / max": " / ".join(_plain(d) for d in durations),
        "window step (s, median)": connectivity["window_step_median_s"],
        "edge threshold (|value| >=)": connectivity["threshold"],
        "edge density (kept fraction)": connectivity["density"],
        "significance level": connectivity["significance"],
        "compute time (s)": connectivity["runtime_s"],
    }
    parts.append(_key_value_table(windows_rows))
    parts.append("<h3>All parameters</h3>")
    parts.append(_key_value_table(connectivity["params"]))

    parts.append("<h2>TAVRNN model</h2>")
    if model is None:
        parts.append(
            '<p class="note">No tavrnn_embeddings extension: compute it with '
            "analyzer.compute(&quot;tavrnn_embeddings&quot;, ...).</p>"
        )
    else:
        parts.append(
            _key_value_table(
                {
                    "embeddings shape": model["embeddings_shape"],
                    "epochs run": model["epochs_run"],
                    "final loss": model["final_loss"],
                    "minimum loss": model["min_loss"],
                    "training time (s)": model["training_time_s"],
                }
            )
        )
        parts.append("<h3>Parameters</h3>")
        parts.append(_key_value_table(model["params"]))
        parts.append("<h3>Link scores</h3>")
        if summary["link_scores"]:
            parts.append(_key_value_table(summary["link_scores"]))
        else:
            parts.append("<p>Not computed (compute the extension with score_links=True).</p>")

    parts.append("<h2>Figures</h2>")
    for file_name, heading, caption in figures:
        parts.append(
            f"<h3>{html.escape(heading)}</h3><figure>"
            f'<img src="{html.escape(file_name, quote=True)}" alt="{html.escape(heading, quote=True)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    parts.append("<h2>Per-window numbers</h2>")
    parts.append(_rows_table(summary["windows"], scroll=len(summary["windows"]) > 20))

    for name, table in (extra_tables or {}).items():
        parts.append(f"<h2>{html.escape(str(name))}</h2>")
        parts.append(_extra_table_html(table))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------- writing
def write_report(
    analyzer,
    folder: str | Path,
    title: str | None = None,
    extra_tables: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    embedding_method: str = "pca",
    dpi: int = _DPI,
) -> Path:
    """Write an HTML report (figures, tables, ``summary.json``) of an analyzer's connectivity and embeddings.

    The report is built in a hidden temporary sibling of ``folder`` and renamed into place only when complete:
    a failure leaves neither a partial report nor the temporary folder behind.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        An analyzer with the ``functional_connectivity`` extension; ``tavrnn_embeddings`` adds the embedding,
        attention, loss and link-score sections.
    folder : str or Path
        The report folder to create (``folder / "index.html"`` is the report).
    title : str or None, default: None
        Report title; None: "TAVRNN report".
    extra_tables : dict or None, default: None
        More tables to show (and store in ``summary.json`` under ``extra_tables``): name -> list of row dicts
        (columns are the union of their keys), or name -> dict (a two-column key/value table).
    overwrite : bool, default: False
        Replace an existing ``folder``; otherwise an existing folder is an error.
    embedding_method : "pca" | "tsne" | "umap", default: "pca"
        2-D projection of the embeddings figure.
    dpi : int, default: 110
        Resolution of the PNG figures.

    Returns
    -------
    index : Path
        Path of the written ``index.html``.

    Examples
    --------
    >>> analyzer.compute("functional_connectivity", window_s=120, step_s=60)  # doctest: +SKIP
    >>> analyzer.compute("tavrnn_embeddings", epochs=200)  # doctest: +SKIP
    >>> write_report(analyzer, "report")  # doctest: +SKIP
    PosixPath('report/index.html')
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists: pass overwrite=True to replace it, or choose another folder.")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; not replacing it.")
    require_extension(analyzer, CONNECTIVITY_EXTENSION)
    if extra_tables is not None and not isinstance(extra_tables, Mapping):
        raise TypeError("extra_tables must be a dict: table name -> list of row dicts, or -> dict.")
    title = "TAVRNN report" if title is None else str(title)

    folder.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = folder.parent / f".{folder.name}.partial-{token}"
    staging.mkdir()
    try:
        summary = report_summary(analyzer)
        summary["title"] = title
        figures = _figures(analyzer, staging, embedding_method, dpi)
        summary["figures"] = {heading: file_name for file_name, heading, _ in figures}
        if extra_tables:
            summary["extra_tables"] = {
                str(name): _jsonable(table.to_dict("records") if hasattr(table, "columns") else table)
                for name, table in extra_tables.items()
            }
        (staging / "index.html").write_text(_html(title, summary, figures, extra_tables), encoding="utf-8")
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
        _move_into_place(staging, folder, token)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder / "index.html"


def _move_into_place(staging: Path, folder: Path, token: str) -> None:
    """Rename ``staging`` to ``folder``; an existing ``folder`` is set aside first and restored on failure."""
    previous = None
    if folder.exists():
        previous = folder.parent / f".{folder.name}.previous-{token}"
        folder.rename(previous)
    try:
        staging.rename(folder)
    except BaseException:
        if previous is not None:
            previous.rename(folder)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
