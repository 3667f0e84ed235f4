"""Widgets of the network's state over time: window x window similarity, the units that change role most, and
all units' embeddings coloured by window label or time."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from ..evaluation.dynamics import role_change, window_similarity
from ..extensions import EMBEDDINGS_EXTENSION
from .base import (
    analyzer_windows,
    check_per_unit,
    check_per_window,
    is_analyzer,
    label_groups,
    make_figure,
    require_extension,
)
from .embeddings import project_embeddings_2d


def _embeddings_and_windows(analyzer_or_embeddings, window_labels, window_starts):
    if is_analyzer(analyzer_or_embeddings):
        embeddings = require_extension(analyzer_or_embeddings, EMBEDDINGS_EXTENSION).get_embeddings()
        window_starts, _, window_labels = analyzer_windows(analyzer_or_embeddings, window_starts, None, window_labels)
    else:
        embeddings = np.asarray(analyzer_or_embeddings, dtype=float)
    if embeddings.ndim != 3:
        raise ValueError(f"Embeddings must have shape (n_windows, n_units, z_dim), got {embeddings.shape}.")
    n_windows = embeddings.shape[0]
    return (
        embeddings,
        check_per_window(window_labels, n_windows, "window_labels"),
        check_per_window(window_starts, n_windows, "window_starts"),
    )


class WindowSimilarityWidget(BaseWidget):
    """Plots the window x window similarity of the network's state (see :func:`~spikeinterface_tavrnn.evaluation.window_similarity`).

    Windows are in time order; with window labels they are grouped by label (in time order within a label) and
    the groups are marked, so blocks on the diagonal show states that recur with the label.

    Parameters
    ----------
    analyzer_or_embeddings : SortingAnalyzer or np.ndarray
        An analyzer with the ``tavrnn_embeddings`` extension, or embeddings ``(n_windows, n_units, z_dim)``.
    window_labels : array-like or None, default: None
        One label per window (the analyzer's window labels when None).
    window_starts : array-like or None, default: None
        Window start times in seconds (time order; the analyzer's windows when None).
    """

    def __init__(
        self,
        analyzer_or_embeddings,
        window_labels: Sequence | None = None,
        window_starts: Sequence[float] | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        embeddings, window_labels, window_starts = _embeddings_and_windows(
            analyzer_or_embeddings, window_labels, window_starts
        )
        n_windows = embeddings.shape[0]
        order = np.arange(n_windows) if window_starts is None else np.argsort(window_starts, kind="stable")
        names, starts = None, None
        if window_labels is not None:
            by_label, names, starts = label_groups(np.asarray(window_labels)[order])
            order = order[by_label]
        similarity = window_similarity(embeddings)
        plot_data = dict(similarity=similarity[np.ix_(order, order)], names=names, starts=starts, n=n_windows)
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.2, 5.2))
        ax = self.ax
        off = dp.similarity[~np.eye(dp.n, dtype=bool)]
        limit = float(np.nanpercentile(np.abs(off), 99)) if off.size else 1.0
        limit = limit if limit > 0 else 1.0
        image = ax.imshow(dp.similarity, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        self.figure.colorbar(image, ax=ax, label="similarity of network state (cosine)")
        if dp.names is not None:
            for start in dp.starts[1:]:
                ax.axhline(start - 0.5, color="k", lw=0.8)
                ax.axvline(start - 0.5, color="k", lw=0.8)
            ends = np.append(dp.starts[1:], dp.n)
            centres = (dp.starts + ends - 1) / 2
            ax.set_xticks(centres, [str(n) for n in dp.names], rotation=45, ha="right", fontsize=8)
            ax.set_yticks(centres, [str(n) for n in dp.names], fontsize=8)
            ax.set_xlabel("windows grouped by label (time order within a label)")
        else:
            ax.set_xlabel("window (time order)")
            ax.set_ylabel("window (time order)")
        ax.set_title("Network state: window x window similarity")


class RoleChangeWidget(BaseWidget):
    """Plots how far the units that change role most move from their own average embedding, window by window.

    Parameters
    ----------
    analyzer_or_embeddings : SortingAnalyzer or np.ndarray
        An analyzer with the ``tavrnn_embeddings`` extension, or embeddings ``(n_windows, n_units, z_dim)``.
    unit_ids : array-like or None, default: None
        Unit names for the rows (the analyzer's unit ids when None).
    n_units : int, default: 12
        Number of units shown (those with the largest role change).
    window_labels : array-like or None, default: None
        One label per window, shown as a strip above the heat map.
    """

    def __init__(
        self,
        analyzer_or_embeddings,
        unit_ids: Sequence | None = None,
        n_units: int = 12,
        window_labels: Sequence | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if is_analyzer(analyzer_or_embeddings) and unit_ids is None:
            unit_ids = np.asarray(analyzer_or_embeddings.unit_ids)
        embeddings, window_labels, window_starts = _embeddings_and_windows(analyzer_or_embeddings, window_labels, None)
        unit_ids = check_per_unit(unit_ids, embeddings.shape[1], "unit_ids")
        if unit_ids is None:
            unit_ids = np.arange(embeddings.shape[1])
        order = np.arange(embeddings.shape[0]) if window_starts is None else np.argsort(window_starts, kind="stable")
        change = role_change(embeddings)
        top = change.order[: max(1, int(n_units))]
        plot_data = dict(
            displacement=change.displacement[order][:, top].T,
            names=[f"{unit_ids[i]} ({change.score[i]:.1f}x)" for i in top],
            window_labels=None if window_labels is None else np.asarray(window_labels)[order],
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        n_rows = len(dp.names)
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (7.5, 1.6 + 0.28 * n_rows))
        ax = self.ax
        vmax = float(np.nanpercentile(dp.displacement, 99)) if dp.displacement.size else 1.0
        image = ax.imshow(dp.displacement, cmap="magma", vmin=0.0, vmax=max(vmax, 1e-12), aspect="auto",
                          interpolation="nearest")
        self.figure.colorbar(image, ax=ax, label="distance from own mean\n(x typical unit)")
        ax.set_yticks(np.arange(n_rows), dp.names, fontsize=7)
        ax.set_xlabel("window (time order)")
        ax.set_title("Units that change role most")
        if dp.window_labels is not None:
            names, codes = np.unique(dp.window_labels.astype(str), return_inverse=True)
            strip = ax.inset_axes([0.0, 1.02, 1.0, 0.06], sharex=ax)
            strip.imshow(codes[None, :], cmap="tab10", vmin=0, vmax=9, aspect="auto", interpolation="nearest")
            strip.set_yticks([])
            strip.tick_params(labelbottom=False, bottom=False)
            ax.set_title("Units that change role most (strip: window label)", pad=18)


class EmbeddingStatesWidget(BaseWidget):
    """Plots every unit in every window in one 2-D projection of the embeddings, coloured by window label or time.

    Parameters
    ----------
    analyzer_or_embeddings : SortingAnalyzer or np.ndarray
        An analyzer with the ``tavrnn_embeddings`` extension, or embeddings ``(n_windows, n_units, z_dim)``.
    window_labels : array-like or None, default: None
        One label per window (the analyzer's when None): colours by label; without labels, colours by time.
    window_starts : array-like or None, default: None
        Window start times in seconds, for the time colour bar.
    method : "pca" | "tsne" | "umap", default: "pca"
        2-D projection (fitted once on all windows).
    """

    def __init__(
        self,
        analyzer_or_embeddings,
        window_labels: Sequence | None = None,
        window_starts: Sequence[float] | None = None,
        method: str = "pca",
        backend: str | None = None,
        **backend_kwargs,
    ):
        embeddings, window_labels, window_starts = _embeddings_and_windows(
            analyzer_or_embeddings, window_labels, window_starts
        )
        points, axis_label = project_embeddings_2d(embeddings, method=method)
        n_windows, n_units = embeddings.shape[:2]
        times = np.arange(n_windows, dtype=float) if window_starts is None else np.asarray(window_starts, float)
        plot_data = dict(
            points=points.reshape(-1, 2),
            window_labels=None if window_labels is None else np.repeat(np.asarray(window_labels).astype(str), n_units),
            times=np.repeat(times, n_units),
            time_label="window" if window_starts is None else "window start (s)",
            axis_label=axis_label,
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.2, 5.2))
        ax = self.ax
        finite = np.all(np.isfinite(dp.points), axis=1)
        if dp.window_labels is not None:
            names = np.unique(dp.window_labels)
            for k, name in enumerate(names):
                mask = finite & (dp.window_labels == name)
                ax.scatter(*dp.points[mask].T, s=5, alpha=0.5, color=f"C{k % 10}", label=name, linewidths=0)
            ax.legend(title="window label", fontsize=7, markerscale=3, loc="best")
        else:
            image = ax.scatter(*dp.points[finite].T, s=5, alpha=0.6, c=dp.times[finite], cmap="viridis",
                               linewidths=0)
            self.figure.colorbar(image, ax=ax, label=dp.time_label)
        ax.set_xlabel(f"{dp.axis_label}1")
        ax.set_ylabel(f"{dp.axis_label}2")
        ax.set_title("Unit embeddings of all windows")


plot_window_similarity = WindowSimilarityWidget
plot_role_change = RoleChangeWidget
plot_embedding_states = EmbeddingStatesWidget
