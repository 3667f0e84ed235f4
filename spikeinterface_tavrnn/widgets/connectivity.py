"""Widgets of the functional connectivity: matrices per window and a per-window summary."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from ..extensions import CONNECTIVITY_EXTENSION
from .base import (
    MAX_PIXELS_PER_PANEL,
    MAX_TICK_LABELS,
    analyzer_windows,
    check_per_unit,
    check_per_window,
    default_ncols,
    grid_figsize,
    is_analyzer,
    label_groups,
    make_figure,
    pool_for_display,
    require_extension,
    window_title,
    select_windows,
    unit_labels_from_analyzer,
)


def mean_abs_offdiagonal(matrices: np.ndarray) -> np.ndarray:
    """Mean absolute off-diagonal value of each connectivity matrix, ignoring NaNs.

    Parameters
    ----------
    matrices : np.ndarray
        ``(n_windows, n_units, n_units)``.

    Returns
    -------
    values : np.ndarray
        ``(n_windows,)`` float64 (NaN for windows with fewer than two units or only NaN values).
    """
    matrices = np.asarray(matrices)
    n_windows, n_units = matrices.shape[0], matrices.shape[1]
    if n_units < 2:
        return np.full(n_windows, np.nan)
    off_diagonal = ~np.eye(n_units, dtype=bool)
    out = np.full(n_windows, np.nan)
    for t in range(n_windows):  # one window at a time: (T, N, N) float64 copies cost GBs at thousands of units
        values = np.abs(matrices[t][off_diagonal])
        finite = np.isfinite(values)
        count = int(finite.sum())
        if count:
            out[t] = float(values[finite].sum(dtype=np.float64)) / count
    return out


class ConnectivityMatricesWidget(BaseWidget):
    """Plots connectivity matrices of several windows side by side, units grouped by label (region, well).

    All panels share one colour scale (symmetric around 0 when values are signed). The diagonal is not drawn
    (it holds self-connectivity, which would dominate the scale).

    Parameters
    ----------
    analyzer_or_matrices : SortingAnalyzer or np.ndarray
        An analyzer with the ``functional_connectivity`` extension, or an array ``(n_windows, n_units, n_units)``
        (or one ``(n_units, n_units)`` matrix).
    windows : list of int or int or None, default: None
        Window indices to show, or a number of evenly spaced windows; None: up to 6 evenly spaced windows.
    order_by_label : bool, default: True
        Sort units by label (stable within a label) and draw the label boundaries.
    labels : array-like or None, default: None
        One label per unit. None: the analyzer's unit labels (region/well/... property), or no grouping.
    window_starts : array-like or None, default: None
        Window starts in seconds, for panel titles (array input; read from the analyzer otherwise).
    window_stops : array-like or None, default: None
        Window stops in seconds, for panel titles.
    window_labels : array-like or None, default: None
        One label per window, for panel titles.
    vmax : float or None, default: None
        Colour scale limit; None: the 99th percentile of the absolute off-diagonal values of the shown windows
        (the scale follows the data; the few stronger values saturate).
    cmap : str or None, default: None
        Colour map; None: "RdBu_r" for signed values, "viridis" for non-negative ones.
    """

    def __init__(
        self,
        analyzer_or_matrices,
        windows: Sequence[int] | int | None = None,
        order_by_label: bool = True,
        labels: Sequence | None = None,
        window_starts: Sequence[float] | None = None,
        window_stops: Sequence[float] | None = None,
        window_labels: Sequence | None = None,
        vmax: float | None = None,
        cmap: str | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if is_analyzer(analyzer_or_matrices):
            extension = require_extension(analyzer_or_matrices, CONNECTIVITY_EXTENSION)
            matrices = extension.get_matrices()
            if labels is None:
                labels = unit_labels_from_analyzer(analyzer_or_matrices)
            window_starts, window_stops, window_labels = analyzer_windows(
                analyzer_or_matrices, window_starts, window_stops, window_labels
            )
        else:
            matrices = np.asarray(analyzer_or_matrices, dtype=float)
            if matrices.ndim == 2:
                matrices = matrices[None]
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"Connectivity matrices must have shape (n_windows, n_units, n_units), got {matrices.shape}."
            )
        n_windows, n_units = matrices.shape[:2]
        labels = check_per_unit(labels, n_units, "labels")
        window_starts = check_per_window(window_starts, n_windows, "window_starts")
        window_stops = check_per_window(window_stops, n_windows, "window_stops")
        window_labels = check_per_window(window_labels, n_windows, "window_labels")
        indices = select_windows(n_windows, windows)

        order, group_names, group_starts = np.arange(n_units), None, None
        if order_by_label and labels is not None:
            order, group_names, group_starts = label_groups(labels)
        shown = np.asarray(matrices[indices], dtype=np.float32)
        if not np.array_equal(order, np.arange(n_units)):
            shown = shown[:, order[:, None], order[None, :]]
        diagonal = np.arange(n_units)
        shown[:, diagonal, diagonal] = np.nan

        lowest, largest = np.inf, 0.0
        for panel in shown:  # per panel: no full-size temporary
            finite = panel[np.isfinite(panel)]
            if finite.size:
                lowest = min(lowest, float(finite.min()))
                # The colour scale follows the bulk of the values (99th percentile of |value|), so a few strong
                # pairs do not leave the rest of the panel blank; stronger values saturate.
                largest = max(largest, float(np.percentile(np.abs(finite), 99)))
        signed = lowest < 0
        if vmax is None:
            vmax = largest if largest > 0 else 1.0
        shown = pool_for_display(shown, MAX_PIXELS_PER_PANEL)
        plot_data = dict(
            matrices=shown,
            indices=indices,
            titles=[window_title(i, window_starts, window_stops, window_labels) for i in indices],
            group_names=group_names,
            group_starts=group_starts,
            n_units=n_units,
            vmin=-vmax if signed else 0.0,
            vmax=vmax,
            cmap=cmap or ("RdBu_r" if signed else "viridis"),
        )
        backend_kwargs = default_ncols(len(indices), backend_kwargs)
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        import matplotlib as mpl

        dp = to_attr(data_plot)
        n_panels = len(dp.indices)
        self.figure, self.axes, self.ax, flat = make_figure(
            backend_kwargs, n_panels, grid_figsize(n_panels, backend_kwargs.get("ncols"))
        )
        cmap = mpl.colormaps[dp.cmap].with_extremes(bad="0.85")
        image = None
        for k, ax in enumerate(flat[:n_panels]):
            extent = (-0.5, dp.n_units - 0.5, dp.n_units - 0.5, -0.5)  # unit coordinates, also when pooled
            image = ax.imshow(
                dp.matrices[k], cmap=cmap, vmin=dp.vmin, vmax=dp.vmax, interpolation="nearest", extent=extent
            )
            ax.set_title(dp.titles[k], fontsize=9)
            if dp.group_names is not None:
                for start in dp.group_starts[1:]:
                    ax.axhline(start - 0.5, color="k", lw=0.8)
                    ax.axvline(start - 0.5, color="k", lw=0.8)
                ends = np.append(dp.group_starts[1:], dp.n_units)
                centres = (dp.group_starts + ends - 1) / 2.0
                if len(dp.group_names) <= MAX_TICK_LABELS:
                    ax.set_xticks(centres, dp.group_names, rotation=90, fontsize=7)
                    ax.set_yticks(centres, dp.group_names if k == 0 else [], fontsize=7)
                else:
                    ax.set_xticks([])
                    ax.set_yticks([])
            else:
                ax.set_xlabel("unit", fontsize=8)
                if k == 0:
                    ax.set_ylabel("unit", fontsize=8)
                ax.tick_params(labelsize=7)
        if image is not None:
            colorbar = self.figure.colorbar(image, ax=flat[:n_panels], shrink=0.8, pad=0.02)
            colorbar.set_label("connectivity")


# ---------------------------------------------------------------------------------------------- per window
class WindowSummaryWidget(BaseWidget):
    """Plots, per window, the edge density of the thresholded graph and the mean |connectivity|.

    Parameters
    ----------
    analyzer_or_matrices : SortingAnalyzer or np.ndarray
        An analyzer with the ``functional_connectivity`` extension, or connectivity matrices
        ``(n_windows, n_units, n_units)``.
    edge_density : array-like or None, default: None
        Fraction of unit pairs kept as edges in each window (array input; read from the analyzer's graphs
        otherwise). Not drawn when unknown.
    window_starts : array-like or None, default: None
        Window starts in seconds; with ``window_stops`` the x axis is the window centre time.
    window_stops : array-like or None, default: None
        Window stops in seconds.
    """

    def __init__(
        self,
        analyzer_or_matrices,
        edge_density: Sequence[float] | None = None,
        window_starts: Sequence[float] | None = None,
        window_stops: Sequence[float] | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if is_analyzer(analyzer_or_matrices):
            extension = require_extension(analyzer_or_matrices, CONNECTIVITY_EXTENSION)
            matrices = extension.get_matrices()
            if edge_density is None:
                edge_density = extension.get_edge_density()
            window_starts, window_stops, _ = analyzer_windows(analyzer_or_matrices, window_starts, window_stops)
        else:
            matrices = np.asarray(analyzer_or_matrices, dtype=float)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"Connectivity matrices must have shape (n_windows, n_units, n_units), got {matrices.shape}."
            )
        n_windows = matrices.shape[0]
        edge_density = check_per_window(edge_density, n_windows, "edge_density")
        window_starts = check_per_window(window_starts, n_windows, "window_starts")
        window_stops = check_per_window(window_stops, n_windows, "window_stops")
        if window_starts is not None and window_stops is not None:
            x, x_label = (window_starts.astype(float) + window_stops.astype(float)) / 2.0, "window centre (s)"
        else:
            x, x_label = np.arange(n_windows), "window"
        plot_data = dict(
            x=x,
            x_label=x_label,
            mean_abs=mean_abs_offdiagonal(matrices),
            edge_density=None if edge_density is None else edge_density.astype(float),
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        n_axes = 1 if dp.edge_density is None else 2
        backend_kwargs = dict(backend_kwargs)
        backend_kwargs["ncols"] = 1
        self.figure, self.axes, self.ax, flat = make_figure(backend_kwargs, n_axes, (7.0, 2.4 * n_axes + 0.6))
        series = [("mean |connectivity|", dp.mean_abs, "C0")]
        if dp.edge_density is not None:
            series.insert(0, ("edge density", dp.edge_density, "C1"))
        for ax, (name, values, color) in zip(flat, series):
            ax.plot(dp.x, values, marker="o", ms=3, lw=1.2, color=color)
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.set_xlabel(dp.x_label)
        flat[0].set_title("Per-window summary")


plot_connectivity_matrices = ConnectivityMatricesWidget


plot_window_summary = WindowSummaryWidget
