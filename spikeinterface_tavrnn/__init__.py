"""Functional connectivity and TAVRNN dynamic-graph embeddings of sorted spikes, as a SpikeInterface plugin."""

__version__ = "0.1.0"
