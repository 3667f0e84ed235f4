"""Widget of window-label decoding: the embeddings next to firing rates, raw connectivity and both together."""

from __future__ import annotations

import numpy as np

from spikeinterface.widgets.base import BaseWidget, to_attr

from .base import make_figure

_NAMES = {
    "embeddings": "TAVRNN embeddings",
    "firing_rates": "firing rates alone",
    "connectivity": "raw connectivity",
    "embeddings+rates": "embeddings + rates",
}


def _null_high(result) -> float:
    null = np.asarray(result.null["balanced_accuracy"], dtype=float)
    return float(np.nanpercentile(null, 95)) if np.isfinite(null).any() else np.nan


class DecodingComparisonWidget(BaseWidget):
    """Plots the cross-validated balanced accuracy of decoding window labels from each feature set.

    Parameters
    ----------
    decoding : BaselineDecoding
        The result of :func:`spikeinterface_tavrnn.evaluation.decode_against_baselines`.
    """

    def __init__(self, decoding, backend: str | None = None, **backend_kwargs):
        names = list(decoding.results)
        plot_data = dict(
            names=[_NAMES.get(n, n) for n in names],
            scores=np.array([decoding.results[n].balanced_accuracy for n in names]),
            p_values=np.array([decoding.results[n].p_value for n in names]),
            null_high=np.array([_null_high(decoding.results[n]) for n in names]),
            chance=decoding.chance,
        )
        BaseWidget.__init__(self, plot_data, backend=backend, **backend_kwargs)

    def plot_matplotlib(self, data_plot, **backend_kwargs):
        dp = to_attr(data_plot)
        self.figure, self.axes, self.ax, _ = make_figure(backend_kwargs, None, (6.5, 3.2))
        ax = self.ax
        y = np.arange(len(dp.names))[::-1]
        colors = ["C0" if "embeddings" in n else "0.55" for n in dp.names]
        ax.barh(y, dp.scores, color=colors, height=0.6)
        for yi, score, p in zip(y, dp.scores, dp.p_values):
            text = f"{score:.2f}" if not np.isfinite(p) else f"{score:.2f} (p={p:.2g})"
            ax.text(min(score, 1.0) + 0.01, yi, text, va="center", fontsize=8)
        ax.scatter(dp.null_high, y, marker="|", s=200, color="k", label="95th percentile of shuffled labels")
        ax.axvline(dp.chance, color="k", ls="--", lw=1, label=f"chance ({dp.chance:.2f})")
        ax.set_yticks(y, dp.names)
        ax.set_xlim(0, 1.18)
        ax.set_xlabel("balanced accuracy of decoding the window label (cross-validated)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
        ax.set_title("What the windows' labels can be decoded from")


plot_decoding_comparison = DecodingComparisonWidget
