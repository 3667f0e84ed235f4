"""Functional connectivity and TAVRNN dynamic-graph embeddings of sorted spikes, as a SpikeInterface plugin.

Importing the package registers the ``functional_connectivity`` and ``tavrnn_embeddings`` extensions of
SpikeInterface's ``SortingAnalyzer``. The model (PyTorch), the plots (matplotlib) and the evaluation tools are
imported on first use, so that importing the package stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import TavrnnInputError  # noqa: E402
from .spiketrains import SpikeTrains  # noqa: E402
from .windows import Windows, sliding_windows, windows_from_events, windows_from_intervals  # noqa: E402
from .graphs import GraphSequence  # noqa: E402
from .structural import structural_node_features  # noqa: E402
from .connectivity import ConnectivitySequence, available_methods, compute_connectivity, register_estimator  # noqa: E402
from .analyzer import create_analyzer_from_spikes, is_placeholder_recording, load_sorting_analyzer  # noqa: E402
from .extensions import (  # noqa: E402
    ComputeFunctionalConnectivity,
    ComputeTAVRNNEmbeddings,
    compute_functional_connectivity,
    compute_tavrnn_embeddings,
)
from .io import detect_format, read_axion_experiment_log, read_axion_spike_list, read_sjemea_hdf5, read_sorting  # noqa: E402
from .datasets import Position, linear_track_visit_intervals, linear_track_visit_windows, load_linear_track  # noqa: E402

_LAZY = {
    "TAVRNN": "estimator",
    "plot_connectivity_matrices": "widgets",
    "plot_embeddings": "widgets",
    "plot_attention_weights": "widgets",
    "plot_loss_history": "widgets",
    "plot_link_scores": "widgets",
    "plot_window_summary": "widgets",
    "write_report": "report",
    "evaluation": None,
    "widgets": None,
    "baselines": None,
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'spikeinterface_tavrnn' has no attribute {name!r}")
    module_name = _LAZY[name]
    if module_name is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{module_name}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "TavrnnInputError",
    "SpikeTrains",
    "Windows",
    "sliding_windows",
    "windows_from_events",
    "windows_from_intervals",
    "GraphSequence",
    "structural_node_features",
    "ConnectivitySequence",
    "available_methods",
    "compute_connectivity",
    "register_estimator",
    "TAVRNN",
    "create_analyzer_from_spikes",
    "is_placeholder_recording",
    "load_sorting_analyzer",
    "ComputeFunctionalConnectivity",
    "ComputeTAVRNNEmbeddings",
    "compute_functional_connectivity",
    "compute_tavrnn_embeddings",
    "read_sorting",
    "detect_format",
    "read_sjemea_hdf5",
    "read_axion_spike_list",
    "read_axion_experiment_log",
    "load_linear_track",
    "Position",
    "linear_track_visit_intervals",
    "linear_track_visit_windows",
    "plot_connectivity_matrices",
    "plot_embeddings",
    "plot_attention_weights",
    "plot_loss_history",
    "plot_link_scores",
    "plot_window_summary",
    "write_report",
]
