"""Torch modules of TAVRNN / VGRNN, built on PyTorch Geometric."""

from .attention import ATTENTION_MODES, TemporalAttention
from .features import PreparedSequence, prepare_sequence, resolve_feature_kind
from .graph_conv import PrecomputedGCNConv, normalized_adjacency, symmetric_spmm
from .graph_gru import GraphGRU, GraphGRUCell
from .losses import NegativeSampler, kl_normal, pairwise_softplus_sum, reconstruction_loss
from .tavrnn import VGRNN, FeatureEncoder, ModelOutput, TAVRNNModule

__all__ = [
    "ATTENTION_MODES",
    "TemporalAttention",
    "PreparedSequence",
    "prepare_sequence",
    "resolve_feature_kind",
    "PrecomputedGCNConv",
    "normalized_adjacency",
    "symmetric_spmm",
    "GraphGRU",
    "GraphGRUCell",
    "NegativeSampler",
    "kl_normal",
    "pairwise_softplus_sum",
    "reconstruction_loss",
    "VGRNN",
    "FeatureEncoder",
    "ModelOutput",
    "TAVRNNModule",
]
