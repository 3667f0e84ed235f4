"""Widgets of the trained model: temporal attention, training loss and link scores."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from ..extensions import EMBEDDINGS_EXTENSION
from .base import (
    MAX_TICK_LABELS,
    analyzer_windows,
    check_per_window,
    is_analyzer,
    make_figure,
    require_extension,
)


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
        if is_analyzer(analyzer_or_attention):
            extension = require_extension(analyzer_or_attention, EMBEDDINGS_EXTENSION)
            attention = np.asarray(extension.get_attention_weights(), dtype=float)
            if window_labels is None:
                window_labels = analyzer_windows(analyzer_or_attention)[2]
        else:
            attention = np.asarray(analyzer_or_attention, dtype=float)
        if attention.ndim != 2 or attention.shape[0] != attention.shape[1]:
            raise ValueError(f"Attention weights must have shape (n_windows, n_windows), got {attention.shape}.")
        n_windows = attention.shape[0]
        window_labels = check_per_window(window_labels, n_windows, "window_labels")
        plot_data = dict(
            attention=attention,
            window_labels=window_labels,
            annotate=n_windows <= 12 if annotate is None else bool(annotate),
            cmap=cmap,
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.0, 5.0))
        ax = self.ax
        n_windows = dp.attention.shape[0]
        image = ax.imshow(dp.attention, cmap=dp.cmap, vmin=0.0, interpolation="nearest", aspect="auto")
        self.figure.colorbar(image, ax=ax, label="attention weight")
        ax.set_xlabel("key window")
        ax.set_ylabel("query window")
        ax.set_title("Temporal attention")
        if dp.window_labels is not None and n_windows <= MAX_TICK_LABELS:
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
        if is_analyzer(analyzer_or_loss):
            extension = require_extension(analyzer_or_loss, EMBEDDINGS_EXTENSION)
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
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.0, 4.0))
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
        if is_analyzer(analyzer_or_scores):
            extension = require_extension(analyzer_or_scores, EMBEDDINGS_EXTENSION)
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
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.0, 4.0))
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


plot_attention_weights = AttentionWeightsWidget


plot_loss_history = LossHistoryWidget


plot_link_scores = LinkScoresWidget
