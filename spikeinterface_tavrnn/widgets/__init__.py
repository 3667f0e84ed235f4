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

The widgets are grouped as SpikeInterface groups its own: :mod:`.connectivity`, :mod:`.embeddings`, :mod:`.model`,
:mod:`.dynamics` and :mod:`.decoding`, on shared pieces in :mod:`.base`.
"""

from __future__ import annotations

from ..extensions import edge_density_from_offsets
from .base import DEFAULT_MAX_WINDOWS, add_backend_docs, select_windows, unit_labels_from_analyzer
from .connectivity import (
    ConnectivityMatricesWidget,
    WindowSummaryWidget,
    mean_abs_offdiagonal,
    plot_connectivity_matrices,
    plot_window_summary,
)
from .decoding import DecodingComparisonWidget, plot_decoding_comparison
from .dynamics import (
    EmbeddingStatesWidget,
    RoleChangeWidget,
    WindowSimilarityWidget,
    plot_embedding_states,
    plot_role_change,
    plot_window_similarity,
)
from .embeddings import EmbeddingsWidget, plot_embeddings, project_embeddings_2d
from .model import (
    AttentionWeightsWidget,
    LinkScoresWidget,
    LossHistoryWidget,
    plot_attention_weights,
    plot_link_scores,
    plot_loss_history,
)

__all__ = [
    "WindowSimilarityWidget",
    "RoleChangeWidget",
    "EmbeddingStatesWidget",
    "DecodingComparisonWidget",
    "plot_window_similarity",
    "plot_role_change",
    "plot_embedding_states",
    "plot_decoding_comparison",
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

for _widget_class in (
    ConnectivityMatricesWidget,
    EmbeddingsWidget,
    AttentionWeightsWidget,
    LossHistoryWidget,
    LinkScoresWidget,
    WindowSummaryWidget,
    WindowSimilarityWidget,
    RoleChangeWidget,
    EmbeddingStatesWidget,
    DecodingComparisonWidget,
):
    add_backend_docs(_widget_class)
