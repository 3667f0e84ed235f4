"""Widget of the TAVRNN unit embeddings in 2-D, and the projection it uses."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from ..extensions import EMBEDDINGS_EXTENSION
from .base import (
    analyzer_windows,
    check_per_unit,
    check_per_window,
    default_ncols,
    grid_figsize,
    is_analyzer,
    make_figure,
    require_extension,
    window_title,
    select_windows,
    unit_labels_from_analyzer,
)


# ---------------------------------------------------------------------------------------------- embeddings
def project_embeddings_2d(
    embeddings: np.ndarray,
    method: str = "pca",
    seed: int | None = 0,
    fit_windows: Sequence[int] | None = None,
    **method_kwargs,
) -> tuple[np.ndarray, str]:
    """Project embeddings ``(n_windows, n_units, z_dim)`` to 2-D with one projection shared by all windows.

    The projection is fitted once on the embeddings of every unit in the fitted windows (all windows by
    default), so positions are comparable across windows: a unit that moves between panels moved in the
    embedding space, not because each window got its own axes. Units with non-finite embeddings (stale after
    a merge or split) are left out of the fit and come back as NaN.

    Parameters
    ----------
    embeddings : np.ndarray
        ``(n_windows, n_units, z_dim)``.
    method : "pca" | "tsne" | "umap", default: "pca"
        PCA (linear, fast, deterministic), t-SNE (scikit-learn) or UMAP (needs the optional ``umap-learn``).
    seed : int or None, default: 0
        Random state of the projection.
    fit_windows : list of int or None, default: None
        Windows to fit on (and return); None: all. t-SNE and UMAP cost grows with the number of points, so
        fitting only the windows shown is faster on long sequences.
    **method_kwargs
        Passed to ``PCA``, ``TSNE`` or ``umap.UMAP``.

    Returns
    -------
    points : np.ndarray
        ``(n_fit_windows, n_units, 2)`` float64.
    axis_label : str
        A prefix for the axis labels ("PC", "t-SNE ", "UMAP ").
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 3:
        raise ValueError(f"embeddings must have shape (n_windows, n_units, z_dim), got {embeddings.shape}.")
    if fit_windows is not None:
        embeddings = embeddings[np.asarray(fit_windows, dtype=np.int64)]
    n_windows, n_units, z_dim = embeddings.shape
    flat = embeddings.reshape(-1, z_dim)
    finite = np.all(np.isfinite(flat), axis=1)
    points = np.full((flat.shape[0], 2), np.nan)
    data = flat[finite]
    if data.shape[0] == 0:
        raise ValueError("No finite embeddings to project.")
    method = method.lower()
    if method == "pca":
        from sklearn.decomposition import PCA

        n_components = min(2, z_dim, data.shape[0])
        projected = PCA(n_components=n_components, random_state=seed, **method_kwargs).fit_transform(data)
        label = "PC"
    elif method == "tsne":
        from sklearn.manifold import TSNE

        if data.shape[0] < 3:
            raise ValueError("t-SNE needs at least 3 points.")
        kwargs = dict(perplexity=min(30.0, (data.shape[0] - 1) / 3.0), init="pca", random_state=seed)
        kwargs.update(method_kwargs)
        projected = TSNE(n_components=2, **kwargs).fit_transform(data)
        label = "t-SNE "
    elif method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ImportError(
                "method='umap' needs the optional package umap-learn (pip install umap-learn); "
                "use method='pca' or 'tsne' otherwise."
            ) from error
        projected = umap.UMAP(n_components=2, random_state=seed, **method_kwargs).fit_transform(data)
        label = "UMAP "
    else:
        raise ValueError(f"method must be 'pca', 'tsne' or 'umap', got {method!r}.")
    projected = np.asarray(projected, dtype=np.float64)
    if projected.shape[1] < 2:  # z_dim == 1 (or a single point): put everything on a line
        projected = np.c_[projected, np.zeros((projected.shape[0], 2 - projected.shape[1]))]
    points[finite] = projected
    return points.reshape(n_windows, n_units, 2), label


def _label_colors(labels: np.ndarray | None, n_units: int):
    """Per-unit colours and legend entries: categorical for few or non-numeric labels, else a continuous map."""
    import matplotlib as mpl

    if labels is None:
        return np.repeat([mpl.colors.to_rgba("C0")], n_units, axis=0), [], None
    numeric = np.issubdtype(labels.dtype, np.number) and not np.issubdtype(labels.dtype, np.bool_)
    names, inverse = np.unique(labels.astype(str) if not numeric else labels, return_inverse=True)
    if numeric and names.size > 20:
        norm = mpl.colors.Normalize(vmin=float(np.nanmin(labels)), vmax=float(np.nanmax(labels)))
        mappable = mpl.cm.ScalarMappable(norm=norm, cmap="viridis")
        return mappable.to_rgba(labels.astype(float)), [], mappable
    cmap = mpl.colormaps["tab10" if names.size <= 10 else "tab20"]
    palette = [cmap(i % cmap.N) for i in range(names.size)]
    colors = np.asarray([palette[i] for i in inverse])
    return colors, [(str(name), palette[i]) for i, name in enumerate(names)], None


class EmbeddingsWidget(BaseWidget):
    """Plots the unit embeddings of several windows in 2-D, coloured by unit label (region, well, ...).

    The 2-D projection (PCA by default) is fitted once on the embeddings of all windows, so panels share axes
    and are comparable: see :func:`project_embeddings_2d`.

    Parameters
    ----------
    analyzer_or_embeddings : SortingAnalyzer or np.ndarray
        An analyzer with the ``tavrnn_embeddings`` extension, or an array ``(n_windows, n_units, z_dim)``.
    windows : list of int or int or None, default: None
        Window indices to show, or a number of evenly spaced windows; None: up to 6 evenly spaced windows.
    labels : array-like or None, default: None
        One label per unit, for colours. None: the analyzer's unit labels (region/well/... property) or a
        single colour.
    method : "pca" | "tsne" | "umap", default: "pca"
        2-D projection; "umap" needs the optional ``umap-learn`` package.
    seed : int or None, default: 0
        Random state of the projection.
    fit_on : "all" | "shown", default: "all"
        Fit the projection on all windows or only on those shown (faster for t-SNE / UMAP on long sequences).
    window_starts : array-like or None, default: None
        Window starts in seconds, for titles (array input; read from the analyzer otherwise).
    window_stops : array-like or None, default: None
        Window stops in seconds, for titles.
    window_labels : array-like or None, default: None
        One label per window, for titles.
    marker_size : float, default: 12.0
        Scatter marker size.
    method_kwargs : dict or None, default: None
        Passed to the projection (``PCA``, ``TSNE``, ``umap.UMAP``).
    """

    def __init__(
        self,
        analyzer_or_embeddings,
        windows: Sequence[int] | int | None = None,
        labels: Sequence | None = None,
        method: str = "pca",
        seed: int | None = 0,
        fit_on: str = "all",
        window_starts: Sequence[float] | None = None,
        window_stops: Sequence[float] | None = None,
        window_labels: Sequence | None = None,
        marker_size: float = 12.0,
        method_kwargs: dict | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if is_analyzer(analyzer_or_embeddings):
            extension = require_extension(analyzer_or_embeddings, EMBEDDINGS_EXTENSION)
            embeddings = extension.get_embeddings()
            if labels is None:
                labels = unit_labels_from_analyzer(analyzer_or_embeddings)
            window_starts, window_stops, window_labels = analyzer_windows(
                analyzer_or_embeddings, window_starts, window_stops, window_labels
            )
        else:
            embeddings = np.asarray(analyzer_or_embeddings, dtype=float)
        if embeddings.ndim != 3:
            raise ValueError(f"embeddings must have shape (n_windows, n_units, z_dim), got {embeddings.shape}.")
        if fit_on not in ("all", "shown"):
            raise ValueError(f"fit_on must be 'all' or 'shown', got {fit_on!r}.")
        n_windows, n_units = embeddings.shape[:2]
        labels = check_per_unit(labels, n_units, "labels")
        window_starts = check_per_window(window_starts, n_windows, "window_starts")
        window_stops = check_per_window(window_stops, n_windows, "window_stops")
        window_labels = check_per_window(window_labels, n_windows, "window_labels")
        indices = select_windows(n_windows, windows)

        if fit_on == "all":
            points, axis_label = project_embeddings_2d(embeddings, method, seed, **(method_kwargs or {}))
            points = points[indices]
        else:
            points, axis_label = project_embeddings_2d(embeddings, method, seed, indices, **(method_kwargs or {}))
        plot_data = dict(
            points=points,
            indices=indices,
            titles=[window_title(i, window_starts, window_stops, window_labels) for i in indices],
            labels=labels,
            axis_label=axis_label,
            marker_size=marker_size,
        )
        backend_kwargs = default_ncols(len(indices), backend_kwargs)
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        n_panels = len(dp.indices)
        self.figure, self.axes, self.ax, flat = make_figure(
            backend_kwargs, n_panels, grid_figsize(n_panels, backend_kwargs.get("ncols"))
        )
        n_units = dp.points.shape[1]
        colors, legend, mappable = _label_colors(dp.labels, n_units)
        finite = dp.points[np.all(np.isfinite(dp.points), axis=-1)]
        lo, hi = finite.min(axis=0), finite.max(axis=0)
        margin = 0.05 * np.maximum(hi - lo, 1e-12)
        for k, ax in enumerate(flat[:n_panels]):
            xy = dp.points[k]
            ok = np.all(np.isfinite(xy), axis=1)
            ax.scatter(xy[ok, 0], xy[ok, 1], c=colors[ok], s=dp.marker_size, linewidths=0)
            ax.set_xlim(lo[0] - margin[0], hi[0] + margin[0])
            ax.set_ylim(lo[1] - margin[1], hi[1] + margin[1])
            ax.set_title(dp.titles[k], fontsize=9)
            ax.set_xlabel(f"{dp.axis_label}1", fontsize=8)
            ax.set_ylabel(f"{dp.axis_label}2", fontsize=8)
            ax.tick_params(labelsize=7)
        if legend:
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], ls="", marker="o", color=color, label=name) for name, color in legend]
            self.figure.legend(handles=handles, loc="center right", fontsize=8, title="unit label", frameon=False)
            self.figure.subplots_adjust(right=0.85)
        elif mappable is not None:
            self.figure.colorbar(mappable, ax=flat[:n_panels], shrink=0.8, label="unit label")


plot_embeddings = EmbeddingsWidget
