"""The numbers of the report (``summary.json``): the recording, the windows, the connectivity and the model,
with the parameters actually used."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION
from ..widgets.base import require_extension
from ..widgets.connectivity import mean_abs_offdiagonal

__all__ = ["report_summary"]


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

    from .. import __version__

    connectivity = require_extension(analyzer, CONNECTIVITY_EXTENSION)
    embeddings_ext = analyzer.get_extension(EMBEDDINGS_EXTENSION) if analyzer.has_extension(EMBEDDINGS_EXTENSION) else None
    matrices = connectivity.get_matrices()
    n_windows, n_units = int(matrices.shape[0]), int(matrices.shape[1])
    windows = connectivity.get_windows()
    starts, stops, window_labels = np.asarray(windows.starts, float), np.asarray(windows.stops, float), windows.labels
    density = connectivity.get_edge_density()
    n_edges = np.rint(density * n_units * (n_units - 1) / 2).astype(np.int64) if n_units > 1 else None
    mean_abs = mean_abs_offdiagonal(matrices)
    rates = connectivity.get_firing_rates()

    labels = connectivity.get_unit_labels()
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
            "method_params": connectivity.get_method_params(),
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
        row["mean_rate_hz"] = float(rates[t].mean()) if n_units else None
        summary["windows"].append(row)

    if embeddings_ext is not None:
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


