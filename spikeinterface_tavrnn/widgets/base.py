"""Shared pieces of the widgets: analyzer inputs, argument checks, window selection and figure layout."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ..extensions import CONNECTIVITY_EXTENSION


#: Sorting properties searched for unit labels, in order (as ``SpikeTrains.from_sorting`` does).
#: Windows shown by default by the per-window widgets.
DEFAULT_MAX_WINDOWS = 6


MAX_TICK_LABELS = 30


# ---------------------------------------------------------------------------------------------- input helpers
def is_analyzer(obj: Any) -> bool:
    from spikeinterface.core import SortingAnalyzer

    return isinstance(obj, SortingAnalyzer)


def require_extension(analyzer, extension_name: str):
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
    from ..spiketrains import resolve_unit_labels

    return resolve_unit_labels(analyzer, "auto")[0]


def analyzer_windows(analyzer, starts=None, stops=None, labels=None) -> tuple:
    """Window starts, stops and labels of the analyzer's connectivity extension; given values take precedence."""
    if not analyzer.has_extension(CONNECTIVITY_EXTENSION):
        return starts, stops, labels
    windows = analyzer.get_extension(CONNECTIVITY_EXTENSION).get_windows()
    return (
        np.asarray(windows.starts, dtype=float) if starts is None else starts,
        np.asarray(windows.stops, dtype=float) if stops is None else stops,
        windows.labels if labels is None else labels,
    )


def check_per_unit(values: Sequence | np.ndarray | None, n_units: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n_units,):
        raise ValueError(f"{name} must have one entry per unit ({n_units}), got shape {values.shape}.")
    return values


def check_per_window(values: Sequence | np.ndarray | None, n_windows: int, name: str) -> np.ndarray | None:
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


def window_title(index: int, starts, stops, labels) -> str:
    title = f"window {index}"
    if labels is not None:
        title += f": {labels[index]}"
    if starts is not None and stops is not None:
        title += f"\n{starts[index]:.4g}-{stops[index]:.4g} s"
    return title


def label_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit order grouped by label (stable within a label), the group names and the group start positions."""
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=names.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, names, starts


def make_figure(backend_kwargs: dict, num_axes: int | None, default_figsize: tuple[float, float]):
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


def default_ncols(n_panels: int, backend_kwargs: dict) -> dict:
    """A near-square grid unless the caller chose ``ncols`` (SpikeInterface's default of 5 leaves 6 panels as 5 + 1)."""
    if "ncols" not in backend_kwargs:
        backend_kwargs = {**backend_kwargs, "ncols": max(1, int(np.ceil(np.sqrt(n_panels))))}
    return backend_kwargs


def grid_figsize(n_panels: int, ncols: int | None, panel: float = 3.0) -> tuple[float, float]:
    ncols = max(1, min(n_panels, ncols or 5))
    nrows = int(np.ceil(n_panels / ncols))
    return (panel * ncols + 1.6, (panel + 0.2) * nrows + 0.2)


# ---------------------------------------------------------------------------------------------- connectivity
#: Matrices of more units are averaged over blocks of units for display (a panel has fewer pixels than that).
MAX_PIXELS_PER_PANEL = 1024


def pool_for_display(matrices: np.ndarray, max_size: int) -> np.ndarray:
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


def add_backend_docs(widget_class) -> None:
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
