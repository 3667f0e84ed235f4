"""The report's figures, drawn with the package's widgets, each with a heading and a two-sentence caption on how
to read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import widgets as _widgets
from ..extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION
from ..fileio import atomic_write
from ..widgets.base import grid_figsize, select_windows

__all__ = ["Figure", "draw_figures"]


@dataclass
class Figure:
    """One figure of the report: its file, heading, caption, and whether it belongs to the findings."""

    file_name: str
    heading: str
    caption: str
    finding: bool = True


def _figure(figsize: tuple[float, float]):
    # A pyplot-free Figure: nothing is displayed or left open, whatever backend the user has selected.
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=figsize)


def _save(widget, path: Path, dpi: int) -> None:
    with atomic_write(path, "wb") as handle:
        widget.figure.savefig(handle, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")


def draw_figures(analyzer, folder: Path, findings, embedding_method: str = "pca", dpi: int = 110) -> list[Figure]:
    """Draw every figure that the analyzer's extensions allow into ``folder``, findings first.

    Parameters
    ----------
    analyzer : SortingAnalyzer
    folder : Path
        Where the PNG files go.
    findings : Findings
        From :func:`~spikeinterface_tavrnn.report.findings.compute_findings` (its decoding comparison is drawn).
    embedding_method : "pca" | "tsne" | "umap", default: "pca"
    dpi : int, default: 110

    Returns
    -------
    list of Figure
    """
    connectivity = analyzer.get_extension(CONNECTIVITY_EXTENSION)
    windows = connectivity.get_windows()
    has_window_labels = windows.labels is not None
    has_unit_labels = connectivity.get_unit_labels() is not None
    n_windows = int(connectivity.get_matrices().shape[0])
    n_panels = len(select_windows(n_windows, None))
    ncols = max(1, int(np.ceil(np.sqrt(n_panels))))
    specs = []
    if findings.decoding is not None:
        specs.append((
            Figure(
                "decoding.png",
                "Decoding the window labels",
                "Each bar is how well a cross-validated classifier tells the window labels apart from one description "
                "of the windows (1 = perfect; dashed line = chance, black tick = what shuffled labels reach); if "
                "embeddings + rates do not beat rates alone, the graph model adds nothing beyond firing rates for "
                "this question.",
            ),
            (6.8, 3.0),
            lambda fig: _widgets.plot_decoding_comparison(findings.decoding, figure=fig, backend="matplotlib"),
        ))
    if analyzer.has_extension(EMBEDDINGS_EXTENSION):
        embeddings_ext = analyzer.get_extension(EMBEDDINGS_EXTENSION)
        grouped = "grouped by label (black lines separate labels)" if has_window_labels else "in time order"
        specs += [
            (
                Figure(
                    "state_similarity.png",
                    "The network's state over time",
                    f"Each cell compares the whole network in two windows ({grouped}): red = units moved the same "
                    "way in both, blue = opposite ways, white = unrelated. Red blocks on the diagonal are states that "
                    "recur, a red band along the diagonal is a slow drift.",
                ),
                (6.2, 5.2),
                lambda fig: _widgets.plot_window_similarity(analyzer, figure=fig, backend="matplotlib"),
            ),
            (
                Figure(
                    "embedding_states.png",
                    "Unit embeddings, all windows",
                    "Each dot is one unit in one window, placed by its TAVRNN embedding (2-D "
                    f"{embedding_method.upper()}), coloured by "
                    + ("the window's label." if has_window_labels else "the window's time.")
                    + " Colours that separate mean the units' network roles differ between "
                    + ("labels." if has_window_labels else "periods of the recording."),
                ),
                (6.2, 5.2),
                lambda fig: _widgets.plot_embedding_states(
                    analyzer, method=embedding_method, figure=fig, backend="matplotlib"
                ),
            ),
            (
                Figure(
                    "role_change.png",
                    "Units that change role most",
                    "Each row is a unit (with how much more it moves than a typical unit), each column a window in time "
                    "order; bright = the unit is far from its usual place in the network. Bright stretches that line "
                    "up with the label strip show units whose role follows the behaviour.",
                ),
                (7.5, 4.6),
                lambda fig: _widgets.plot_role_change(analyzer, figure=fig, backend="matplotlib"),
            ),
        ]
        if findings.numbers.get("attention") is not None:  # None: no window attends beyond itself (VGRNN)
            specs.append((
                Figure(
                    "attention.png",
                    "Temporal attention",
                    "Row t shows how much window t draws on each earlier window (columns) when the model updates its "
                    "state. A near-uniform row (all earlier windows equally bright) means the model averages its "
                    "history rather than recalling particular windows.",
                    finding=False,
                ),
                (6.0, 5.0),
                lambda fig: _widgets.plot_attention_weights(analyzer, figure=fig, backend="matplotlib"),
            ))
    specs += [
        (
            Figure(
                "connectivity.png",
                "Connectivity matrices",
                "Unthresholded connectivity between every pair of units in up to six evenly spaced windows"
                + (", units grouped by label" if has_unit_labels else "")
                + "; the colour scale follows the data (99th percentile of |value|; stronger pairs saturate). "
                "Structure that changes between panels is the network reorganising.",
                finding=False,
            ),
            grid_figsize(n_panels, ncols),
            lambda fig: _widgets.plot_connectivity_matrices(analyzer, figure=fig, ncols=ncols, backend="matplotlib"),
        ),
        (
            Figure(
                "window_summary.png",
                "Per-window summary",
                "Edge density of the thresholded graph and mean |connectivity| of each window, over time. Dips or "
                "jumps mark windows whose network differs from the rest (few spikes, a state change).",
                finding=False,
            ),
            (7.0, 5.4),
            lambda fig: _widgets.plot_window_summary(analyzer, figure=fig, backend="matplotlib"),
        ),
    ]
    if analyzer.has_extension(EMBEDDINGS_EXTENSION):
        specs.append((
            Figure(
                "loss.png",
                "Training loss",
                "The model's loss per training epoch. A curve that has flattened means training converged; one still "
                "falling steeply means more epochs may help.",
                finding=False,
            ),
            (6.5, 4.0),
            lambda fig: _widgets.plot_loss_history(analyzer, figure=fig, backend="matplotlib"),
        ))
        if embeddings_ext.get_link_scores() is not None:
            specs.append((
                Figure(
                    "link_scores.png",
                    "Link scores",
                    "How well the model recovers hidden connections (detection) and the next window's connections "
                    "(prediction), as AUC and average precision. The dashed line is a random scorer (AUC 0.5).",
                    finding=False,
                ),
                (6.5, 4.0),
                lambda fig: _widgets.plot_link_scores(analyzer, figure=fig, backend="matplotlib"),
            ))
    written = []
    for figure, size, draw in specs:
        widget = draw(_figure(size))
        _save(widget, folder / figure.file_name, dpi)
        written.append(figure)
    return written
