"""SpikeInterface-style widgets for functional connectivity and TAVRNN embeddings.

Each widget is a :class:`spikeinterface.widgets.base.BaseWidget` with a matplotlib backend, exposed as a
``plot_xxx`` name like SpikeInterface's own widgets. Each accepts either a ``SortingAnalyzer`` that has the
``functional_connectivity`` / ``tavrnn_embeddings`` extension(s), or plain arrays, so they also serve results of
:func:`spikeinterface_tavrnn.compute_connectivity` and :class:`spikeinterface_tavrnn.TAVRNN` used without an
analyzer. The returned widget holds ``figure``, ``axes`` and ``ax`` for further matplotlib customisation.

Examples
--------
>>> import numpy as np
>>> from spikeinterface_tavrnn.widgets import plot_loss_history
>>> w = plot_loss_history(np.geomspace(100.0, 1.0, 50), backend="matplotlib")
>>> w.ax.get_yscale()
'log'
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from .extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION, edge_density_from_offsets

__all__ = [
    "ConnectivityMatricesWidget",
    "EmbeddingsWidget",
    "AttentionWeightsWidget",
    "LossHistoryWidget",
    "LinkScoresWidget",
    "WindowSummaryWidget",
    "plot_connectivity_matrices",
    "plot_embeddings",
    "plot_attention_weights",
    "plot_loss_history",
    "plot_link_scores",
    "plot_window_summary",
    "project_embeddings_2d",
    "unit_labels_from_analyzer",
    "select_windows",
    "mean_abs_offdiagonal",
    "edge_density_from_offsets",
]

#: Sorting properties searched for unit labels, in order (as ``SpikeTrains.from_sorting`` does).
#: Windows shown by default by the per-window widgets.
DEFAULT_MAX_WINDOWS = 6
_MAX_TICK_LABELS = 30


# ---------------------------------------------------------------------------------------------- input helpers
def _is_analyzer(obj: Any) -> bool:
    from spikeinterface.core import SortingAnalyzer

    return isinstance(obj, SortingAnalyzer)


def _require_extension(analyzer, extension_name: str):
    """The extension of ``analyzer``, or a ``ValueError`` that says how to compute it."""
    if not analyzer.has_extension(extension_name):
        loaded = getattr(analyzer, "get_loaded_extension_names", None)
        computed = list(loaded()) if loaded is not None else []
        raise ValueError(
            f"This SortingAnalyzer has no {extension_name!r} extension: compute it first with "
            f"analyzer.compute({extension_name!r}, ...) (after `import spikeinterface_tavrnn`, which registers it). "
            f"Loaded extensions: {computed}."
        )
    return analyzer.get_extension(extension_name)


def unit_labels_from_analyzer(analyzer) -> np.ndarray | None:
    """Per-unit labels (region, well, ...) of an analyzer, or None when the sorting has none.

    Uses the ``functional_connectivity`` extension's label property when that extension exists (so the labels
    match the ones its graphs carry), else the first of ``region``, ``brain_area``, ``well``, ``group``,
    ``label`` that the sorting has as a property, else the probe's ``region`` contact annotations.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        The analyzer.

    Returns
    -------
    labels : np.ndarray or None
        One label per unit, in ``analyzer.unit_ids`` order.
    """
    if analyzer.has_extension(CONNECTIVITY_EXTENSION):
        return analyzer.get_extension(CONNECTIVITY_EXTENSION).get_unit_labels()
    from .spiketrains import resolve_unit_labels

    return resolve_unit_labels(analyzer, "auto")[0]


def _analyzer_windows(analyzer, starts=None, stops=None, labels=None) -> tuple:
    """Window starts, stops and labels of the analyzer's connectivity extension; given values take precedence."""
    if not analyzer.has_extension(CONNECTIVITY_EXTENSION):
        return starts, stops, labels
    windows = analyzer.get_extension(CONNECTIVITY_EXTENSION).get_windows()
    return (
        np.asarray(windows.starts, dtype=float) if starts is None else starts,
        np.asarray(windows.stops, dtype=float) if stops is None else stops,
        windows.labels if labels is None else labels,
    )


def _check_per_unit(values: Sequence | np.ndarray | None, n_units: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n_units,):
        raise ValueError(f"{name} must have one entry per unit ({n_units}), got shape {values.shape}.")
    return values


def _check_per_window(values: Sequence | np.ndarray | None, n_windows: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n_windows,):
        raise ValueError(f"{name} must have one entry per window ({n_windows}), got shape {values.shape}.")
    return values


def select_windows(n_windows: int, windows: Sequence[int] | int | None, max_windows: int = DEFAULT_MAX_WINDOWS):
    """Indices of the windows to show.

    Parameters
    ----------
    n_windows : int
        Number of windows available.
    windows : list of int or int or None
        Indices to show (negative indices count from the end), or a number of evenly spaced windows, or None
        for up to ``max_windows`` evenly spaced windows including the first and the last.
    max_windows : int, default: 6
        The number shown when ``windows`` is None.

    Returns
    -------
    indices : np.ndarray
        Window indices, int64.
    """
    if n_windows < 1:
        raise ValueError("There are no windows to plot.")
    if windows is None or isinstance(windows, (int, np.integer)):
        count = max_windows if windows is None else int(windows)
        if count < 1:
            raise ValueError(f"The number of windows to show must be positive, got {count}.")
        return np.unique(np.round(np.linspace(0, n_windows - 1, min(count, n_windows))).astype(np.int64))
    indices = np.asarray(windows)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"windows must be a non-empty list of integer window indices, got {windows!r}.")
    if np.any(indices >= n_windows) or np.any(indices < -n_windows):
        raise IndexError(f"Window indices {indices.tolist()} out of range for {n_windows} windows.")
    return np.where(indices < 0, indices + n_windows, indices).astype(np.int64)


def _window_title(index: int, starts, stops, labels) -> str:
    title = f"window {index}"
    if labels is not None:
        title += f": {labels[index]}"
    if starts is not None and stops is not None:
        title += f"\n{starts[index]:.4g}-{stops[index]:.4g} s"
    return title


def _label_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit order grouped by label (stable within a label), the group names and the group start positions."""
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=names.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, names, starts


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


def _make_figure(backend_kwargs: dict, num_axes: int | None, default_figsize: tuple[float, float]):
    from spikeinterface.widgets.utils_matplotlib import make_mpl_figure

    backend_kwargs = dict(backend_kwargs)
    if backend_kwargs.get("figsize") is None:
        backend_kwargs["figsize"] = default_figsize
    if num_axes is not None and backend_kwargs.get("axes") is None and backend_kwargs.get("ax") is None:
        backend_kwargs["num_axes"] = num_axes
    elif num_axes is not None and backend_kwargs.get("ax") is not None and num_axes > 1:
        raise ValueError(f"This plot needs {num_axes} axes: pass `axes=` (or `figure=`) instead of `ax=`.")
    created = backend_kwargs.get("ax") is None and backend_kwargs.get("axes") is None
    figure, axes, ax = make_mpl_figure(**backend_kwargs)
    flat = [] if axes is None else [a for a in np.asarray(axes).ravel() if a is not None]
    if created and len(flat) > 1 and figure.get_layout_engine() is None:
        figure.subplots_adjust(hspace=0.6, wspace=0.35)
    if num_axes is not None and len(flat) < num_axes:
        raise ValueError(f"This plot needs {num_axes} axes, {len(flat)} were given.")
    return figure, axes, ax, flat


def _default_ncols(n_panels: int, backend_kwargs: dict) -> dict:
    """A near-square grid unless the caller chose ``ncols`` (SpikeInterface's default of 5 leaves 6 panels as 5 + 1)."""
    if "ncols" not in backend_kwargs:
        backend_kwargs = {**backend_kwargs, "ncols": max(1, int(np.ceil(np.sqrt(n_panels))))}
    return backend_kwargs


def _grid_figsize(n_panels: int, ncols: int | None, panel: float = 3.0) -> tuple[float, float]:
    ncols = max(1, min(n_panels, ncols or 5))
    nrows = int(np.ceil(n_panels / ncols))
    return (panel * ncols + 1.6, (panel + 0.2) * nrows + 0.2)


# ---------------------------------------------------------------------------------------------- connectivity
#: Matrices of more units are averaged over blocks of units for display (a panel has fewer pixels than that).
_MAX_PIXELS_PER_PANEL = 1024


def _pool_for_display(matrices: np.ndarray, max_size: int) -> np.ndarray:
    """Average (T, N, N) over square blocks of units so that N becomes at most ``max_size`` (NaNs ignored)."""
    n = matrices.shape[1]
    factor = -(-n // max_size)
    if factor <= 1:
        return matrices
    m = -(-n // factor)
    pad = m * factor - n
    out = np.empty((matrices.shape[0], m, m), dtype=np.float32)
    for k, panel in enumerate(matrices):
        blocks = np.pad(panel, ((0, pad), (0, pad)), constant_values=np.nan).reshape(m, factor, m, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks (padding) stay NaN
            out[k] = np.nanmean(blocks, axis=(1, 3))
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
        Colour scale limit; None: the largest absolute off-diagonal value of the shown windows.
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
        if _is_analyzer(analyzer_or_matrices):
            extension = _require_extension(analyzer_or_matrices, CONNECTIVITY_EXTENSION)
            matrices = extension.get_matrices()
            if labels is None:
                labels = unit_labels_from_analyzer(analyzer_or_matrices)
            window_starts, window_stops, window_labels = _analyzer_windows(
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
        labels = _check_per_unit(labels, n_units, "labels")
        window_starts = _check_per_window(window_starts, n_windows, "window_starts")
        window_stops = _check_per_window(window_stops, n_windows, "window_stops")
        window_labels = _check_per_window(window_labels, n_windows, "window_labels")
        indices = select_windows(n_windows, windows)

        order, group_names, group_starts = np.arange(n_units), None, None
        if order_by_label and labels is not None:
            order, group_names, group_starts = _label_groups(labels)
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
                largest = max(largest, float(np.abs(finite).max()))
        signed = lowest < 0
        if vmax is None:
            vmax = largest if largest > 0 else 1.0
        shown = _pool_for_display(shown, _MAX_PIXELS_PER_PANEL)
        plot_data = dict(
            matrices=shown,
            indices=indices,
            titles=[_window_title(i, window_starts, window_stops, window_labels) for i in indices],
            group_names=group_names,
            group_starts=group_starts,
            n_units=n_units,
            vmin=-vmax if signed else 0.0,
            vmax=vmax,
            cmap=cmap or ("RdBu_r" if signed else "viridis"),
        )
        backend_kwargs = _default_ncols(len(indices), backend_kwargs)
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        import matplotlib as mpl

        dp = to_attr(data_plot)
        n_panels = len(dp.indices)
        self.figure, self.axes, self.ax, flat = _make_figure(
            backend_kwargs, n_panels, _grid_figsize(n_panels, backend_kwargs.get("ncols"))
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
                if len(dp.group_names) <= _MAX_TICK_LABELS:
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
        if _is_analyzer(analyzer_or_embeddings):
            extension = _require_extension(analyzer_or_embeddings, EMBEDDINGS_EXTENSION)
            embeddings = extension.get_embeddings()
            if labels is None:
                labels = unit_labels_from_analyzer(analyzer_or_embeddings)
            window_starts, window_stops, window_labels = _analyzer_windows(
                analyzer_or_embeddings, window_starts, window_stops, window_labels
            )
        else:
            embeddings = np.asarray(analyzer_or_embeddings, dtype=float)
        if embeddings.ndim != 3:
            raise ValueError(f"embeddings must have shape (n_windows, n_units, z_dim), got {embeddings.shape}.")
        if fit_on not in ("all", "shown"):
            raise ValueError(f"fit_on must be 'all' or 'shown', got {fit_on!r}.")
        n_windows, n_units = embeddings.shape[:2]
        labels = _check_per_unit(labels, n_units, "labels")
        window_starts = _check_per_window(window_starts, n_windows, "window_starts")
        window_stops = _check_per_window(window_stops, n_windows, "window_stops")
        window_labels = _check_per_window(window_labels, n_windows, "window_labels")
        indices = select_windows(n_windows, windows)

        if fit_on == "all":
            points, axis_label = project_embeddings_2d(embeddings, method, seed, **(method_kwargs or {}))
            points = points[indices]
        else:
            points, axis_label = project_embeddings_2d(embeddings, method, seed, indices, **(method_kwargs or {}))
        plot_data = dict(
            points=points,
            indices=indices,
            titles=[_window_title(i, window_starts, window_stops, window_labels) for i in indices],
            labels=labels,
            axis_label=axis_label,
            marker_size=marker_size,
        )
        backend_kwargs = _default_ncols(len(indices), backend_kwargs)
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        n_panels = len(dp.indices)
        self.figure, self.axes, self.ax, flat = _make_figure(
            backend_kwargs, n_panels, _grid_figsize(n_panels, backend_kwargs.get("ncols"))
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


# ---------------------------------------------------------------------------------------------- attention
class AttentionWeightsWidget(BaseWidget):
    """Plots TAVRNN's temporal attention weights as a heat map: query window (rows) x key window (columns).

    Parameters
    ----------
    analyzer_or_attention : SortingAnalyzer or np.ndarray
        An analyzer with the ``tavrnn_embeddings`` extension, or an array ``(n_windows, n_windows)``.
    window_labels : array-like or None, default: None
        One label per window for the ticks (read from the analyzer's windows when None); ticks show window
        indices when there are no labels or more than 30 windows.
    annotate : bool or None, default: None
        Write the weights in the cells; None: only when there are at most 12 windows.
    cmap : str, default: "viridis"
        Colour map.
    """

    def __init__(
        self,
        analyzer_or_attention,
        window_labels: Sequence | None = None,
        annotate: bool | None = None,
        cmap: str = "viridis",
        backend: str | None = None,
        **backend_kwargs,
    ):
        if _is_analyzer(analyzer_or_attention):
            extension = _require_extension(analyzer_or_attention, EMBEDDINGS_EXTENSION)
            attention = np.asarray(extension.get_attention_weights(), dtype=float)
            if window_labels is None:
                window_labels = _analyzer_windows(analyzer_or_attention)[2]
        else:
            attention = np.asarray(analyzer_or_attention, dtype=float)
        if attention.ndim != 2 or attention.shape[0] != attention.shape[1]:
            raise ValueError(f"Attention weights must have shape (n_windows, n_windows), got {attention.shape}.")
        n_windows = attention.shape[0]
        window_labels = _check_per_window(window_labels, n_windows, "window_labels")
        plot_data = dict(
            attention=attention,
            window_labels=window_labels,
            annotate=n_windows <= 12 if annotate is None else bool(annotate),
            cmap=cmap,
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = _make_figure(backend_kwargs, None, (6.0, 5.0))
        ax = self.ax
        n_windows = dp.attention.shape[0]
        image = ax.imshow(dp.attention, cmap=dp.cmap, vmin=0.0, interpolation="nearest", aspect="auto")
        self.figure.colorbar(image, ax=ax, label="attention weight")
        ax.set_xlabel("key window")
        ax.set_ylabel("query window")
        ax.set_title("Temporal attention")
        if dp.window_labels is not None and n_windows <= _MAX_TICK_LABELS:
            names = [f"{i}: {label}" for i, label in enumerate(dp.window_labels)]
            ax.set_xticks(np.arange(n_windows), names, rotation=90, fontsize=7)
            ax.set_yticks(np.arange(n_windows), names, fontsize=7)
        if dp.annotate:
            finite = dp.attention[np.isfinite(dp.attention)]
            middle = 0.5 * (finite.max() if finite.size else 1.0)
            for (i, j), value in np.ndenumerate(dp.attention):
                if np.isfinite(value):
                    color = "k" if value > middle else "w"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)


# ---------------------------------------------------------------------------------------------- loss
class LossHistoryWidget(BaseWidget):
    """Plots the training loss per epoch (log scale when all values are positive).

    Parameters
    ----------
    analyzer_or_loss : SortingAnalyzer or np.ndarray or dict
        An analyzer with the ``tavrnn_embeddings`` extension, a 1-D array of losses per epoch, or a dict of
        named 1-D arrays (loss terms) drawn as separate curves.
    log_scale : bool or None, default: None
        Logarithmic y axis; None: when every finite value is positive.
    """

    def __init__(
        self,
        analyzer_or_loss,
        log_scale: bool | None = None,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if _is_analyzer(analyzer_or_loss):
            extension = _require_extension(analyzer_or_loss, EMBEDDINGS_EXTENSION)
            curves = {"loss": np.asarray(extension.get_loss_history(), dtype=float)}
        elif isinstance(analyzer_or_loss, Mapping):
            curves = {str(k): np.asarray(v, dtype=float) for k, v in analyzer_or_loss.items()}
        else:
            curves = {"loss": np.asarray(analyzer_or_loss, dtype=float)}
        for name, values in curves.items():
            if values.ndim != 1 or values.size == 0:
                raise ValueError(f"Loss history {name!r} must be a non-empty 1-D array, got shape {values.shape}.")
        if log_scale is None:
            finite = np.concatenate([v[np.isfinite(v)] for v in curves.values()])
            log_scale = bool(finite.size and np.all(finite > 0))
        BaseWidget.__init__(self, dict(curves=curves, log_scale=log_scale), backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = _make_figure(backend_kwargs, None, (6.0, 4.0))
        ax = self.ax
        for name, values in dp.curves.items():
            ax.plot(np.arange(1, values.size + 1), values, lw=1.2, label=f"{name} (final {values[-1]:.4g})")
        if dp.log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("Training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


# ---------------------------------------------------------------------------------------------- link scores
def _parse_score_key(key: str) -> tuple[str, str]:
    """Split a score name such as "detection_auc" or "prediction_ap" into (task, metric)."""
    words = key.replace("-", "_").replace(" ", "_").split("_")
    lowered = [w.lower() for w in words]
    for metric, aliases in (("AUC", ("auc", "roc", "rocauc")), ("AP", ("ap", "average", "precision"))):
        hits = [i for i, w in enumerate(lowered) if w in aliases]
        if hits:
            task = "_".join(w for i, w in enumerate(words) if i not in hits and lowered[i] not in ("score", ""))
            return task or "score", metric
    return key, ""


class LinkScoresWidget(BaseWidget):
    """Plots link detection / prediction scores (AUC, AP) as grouped bars.

    Parameters
    ----------
    analyzer_or_scores : SortingAnalyzer or dict
        An analyzer whose ``tavrnn_embeddings`` were computed with ``score_links=True``, or a dict of scalar
        scores such as ``{"detection_auc": 0.93, "detection_ap": 0.91, "prediction_auc": 0.85, ...}``. Names
        are grouped by task (the name without the metric), metrics "auc"/"roc_auc" and "ap"/"average_precision"
        are recognised; other entries (counts) are not drawn, unless no name is recognised: then each entry
        gets a bar of its own.
    chance_level : float or None, default: 0.5
        Draw this horizontal line (AUC of a random scorer; AP's chance level is the edge density).
    """

    def __init__(
        self,
        analyzer_or_scores,
        chance_level: float | None = 0.5,
        backend: str | None = None,
        **backend_kwargs,
    ):
        if _is_analyzer(analyzer_or_scores):
            extension = _require_extension(analyzer_or_scores, EMBEDDINGS_EXTENSION)
            scores = extension.get_link_scores()
            if scores is None:
                raise ValueError(
                    f"The {EMBEDDINGS_EXTENSION} extension has no link scores: compute it with "
                    f"analyzer.compute({EMBEDDINGS_EXTENSION!r}, ..., score_links=True)."
                )
        elif isinstance(analyzer_or_scores, Mapping):
            scores = dict(analyzer_or_scores)
        else:
            raise TypeError(f"Expected a SortingAnalyzer or a dict of scores, got {type(analyzer_or_scores).__name__}.")
        scores = {str(k): float(v) for k, v in scores.items() if np.isscalar(v) and not isinstance(v, str)}
        if not scores:
            raise ValueError("No scalar link scores to plot.")
        parsed = {key: _parse_score_key(key) for key in scores}
        if any(metric for _, metric in parsed.values()):
            # Counts and other numbers stored next to the scores (e.g. "n_test_edges") are not drawn.
            parsed = {key: value for key, value in parsed.items() if value[1]}
        tasks: dict[str, dict[str, float]] = {}
        for key, (task, metric) in parsed.items():
            tasks.setdefault(task, {})[metric] = scores[key]
        BaseWidget.__init__(self, dict(tasks=tasks, chance_level=chance_level), backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = _make_figure(backend_kwargs, None, (6.0, 4.0))
        ax = self.ax
        task_names = list(dp.tasks)
        rank = {"AUC": 0, "AP": 1}
        metrics = sorted({m for values in dp.tasks.values() for m in values}, key=lambda m: (rank.get(m, 2), m))
        width = 0.8 / max(len(metrics), 1)
        for j, metric in enumerate(metrics):
            x = [i + (j - (len(metrics) - 1) / 2) * width for i, t in enumerate(task_names) if metric in dp.tasks[t]]
            heights = [dp.tasks[t][metric] for t in task_names if metric in dp.tasks[t]]
            bars = ax.bar(x, heights, width=width * 0.95, label=metric or "score", color=f"C{j}")
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        if dp.chance_level is not None:
            ax.axhline(dp.chance_level, color="0.4", ls="--", lw=1, label=f"chance AUC ({dp.chance_level:g})")
        ax.set_xticks(np.arange(len(task_names)), task_names)
        values = [v for t in dp.tasks.values() for v in t.values() if np.isfinite(v)]
        ax.set_ylim(min([0.0] + values), max([1.0] + values) * 1.12)
        ax.set_ylabel("score")
        ax.set_title("Link scores")
        ax.legend(fontsize=8, loc="lower right")


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
        if _is_analyzer(analyzer_or_matrices):
            extension = _require_extension(analyzer_or_matrices, CONNECTIVITY_EXTENSION)
            matrices = extension.get_matrices()
            if edge_density is None:
                edge_density = extension.get_edge_density()
            window_starts, window_stops, _ = _analyzer_windows(analyzer_or_matrices, window_starts, window_stops)
        else:
            matrices = np.asarray(analyzer_or_matrices, dtype=float)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"Connectivity matrices must have shape (n_windows, n_units, n_units), got {matrices.shape}."
            )
        n_windows = matrices.shape[0]
        edge_density = _check_per_window(edge_density, n_windows, "edge_density")
        window_starts = _check_per_window(window_starts, n_windows, "window_starts")
        window_stops = _check_per_window(window_stops, n_windows, "window_stops")
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
        self.figure, self.axes, self.ax, flat = _make_figure(backend_kwargs, n_axes, (7.0, 2.4 * n_axes + 0.6))
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
plot_embeddings = EmbeddingsWidget
plot_attention_weights = AttentionWeightsWidget
plot_loss_history = LossHistoryWidget
plot_link_scores = LinkScoresWidget
plot_window_summary = WindowSummaryWidget


def _add_backend_docs(widget_class) -> None:
    """Append the backend parameters and return value to a widget's docstring, as SpikeInterface does."""
    from spikeinterface.widgets.base import backend_kwargs_desc

    backends = widget_class.get_possible_backends()
    lines = [
        "backend : str or None, default: None",
        f"    Plotting backend ({', '.join(backends)}); None: SpikeInterface's default.",
    ]
    lines.append("**backend_kwargs : dict")
    for backend in backends:
        for name, description in backend_kwargs_desc[backend].items():
            lines.append(f"    * {name}: {description}")
    lines += [
        "",
        "Returns",
        "-------",
        "widget : BaseWidget",
        "    The widget, with ``figure``, ``axes`` and ``ax`` (matplotlib).",
    ]
    indent = "    "
    appended = "\n".join(indent + line if line else "" for line in lines)
    widget_class.__doc__ = widget_class.__doc__.rstrip() + "\n" + appended + "\n"


for _widget_class in (
    ConnectivityMatricesWidget,
    EmbeddingsWidget,
    AttentionWeightsWidget,
    LossHistoryWidget,
    LinkScoresWidget,
    WindowSummaryWidget,
):
    _add_backend_docs(_widget_class)
