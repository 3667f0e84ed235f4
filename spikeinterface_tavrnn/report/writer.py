"""Writing the report folder: ``index.html``, its figures and ``summary.json``, built beside and swapped in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..extensions import CONNECTIVITY_EXTENSION
from ..fileio import write_text_atomic
from ..outputs import output_folder
from ..widgets.base import require_extension
from .figures import draw_figures
from .findings import compute_findings
from .page import render_page
from .summary import _jsonable, report_summary

__all__ = ["write_report"]

_DPI = 110


def write_report(
    analyzer,
    folder: str | Path,
    title: str | None = None,
    extra_tables: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    embedding_method: str = "pca",
    dpi: int = _DPI,
    n_permutations: int = 19,
    seed: int = 0,
) -> Path:
    """Write an HTML report of what an analyzer's connectivity and embeddings show, findings first.

    The page opens with the findings in plain sentences (whether the window labels are decoded better from the
    graph model than from firing rates, whether network states recur with the labels, which units change role
    most, how the model used its history), then the figures that show them, the connectivity and model
    diagnostics, and the parameters actually used. The folder is built beside ``folder`` and renamed into place
    only when complete (:func:`spikeinterface_tavrnn.outputs.output_folder`): a failure leaves the previous report,
    if any, untouched.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        An analyzer with the ``functional_connectivity`` extension; ``tavrnn_embeddings`` adds the findings on the
        network's dynamics and the model's figures.
    folder : str or Path
        The report folder to create (``folder / "index.html"`` is the report).
    title : str or None, default: None
        Report title; None: "TAVRNN report".
    extra_tables : dict or None, default: None
        More tables to show (and store in ``summary.json`` under ``extra_tables``): name -> list of row dicts
        (columns are the union of their keys), or name -> dict (a two-column key/value table).
    overwrite : bool, default: False
        Replace an existing report folder written by this package; otherwise an existing folder is an error.
    embedding_method : "pca" | "tsne" | "umap", default: "pca"
        2-D projection of the embeddings figure.
    dpi : int, default: 110
        Resolution of the PNG figures.
    n_permutations : int, default: 19
        Permutations of the decoding comparison (19 gives p >= 0.05; more gives finer p-values, slower).
    seed : int, default: 0
        Seed of the permutations.

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
    require_extension(analyzer, CONNECTIVITY_EXTENSION)
    if extra_tables is not None and not isinstance(extra_tables, Mapping):
        raise TypeError("extra_tables must be a dict: table name -> list of row dicts, or -> dict.")
    title = "TAVRNN report" if title is None else str(title)
    with output_folder(folder, overwrite=overwrite, kind="report", flag="report folder") as staging:
        summary = report_summary(analyzer)
        summary["title"] = title
        findings = compute_findings(analyzer, n_permutations=n_permutations, seed=seed)
        summary["findings"] = _jsonable({**findings.numbers, "sentences": findings.sentences})
        figures = draw_figures(analyzer, staging, findings, embedding_method, dpi)
        summary["figures"] = {figure.heading: figure.file_name for figure in figures}
        if extra_tables:
            summary["extra_tables"] = {
                str(name): _jsonable(table.to_dict("records") if hasattr(table, "columns") else table)
                for name, table in extra_tables.items()
            }
        write_text_atomic(staging / "index.html", render_page(title, summary, findings, figures, extra_tables))
        # summary.json last: batch runs take its presence as "this report is finished".
        write_text_atomic(staging / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    return folder / "index.html"
