"""Torch modules of TAVRNN / VGRNN in the style of PyTorch Geometric, with autograd gradients throughout."""

from .attention import ATTENTION_MODES, TemporalAttention
from .features import PreparedSequence, prepare_sequence, resolve_feature_kind
from .graph_conv import PrecomputedGCNConv, SymmetricAdjacency, normalized_adjacency, symmetric_matrix
from .graph_gru import GraphGRU, GraphGRUCell
from .losses import NegativeSampler, kl_normal, pairwise_softplus_sum, reconstruction_loss
from .tavrnn import VGRNN, FeatureEncoder, ModelOutput, RecurrentState, TAVRNNModule

__all__ = [
    "ATTENTION_MODES",
    "TemporalAttention",
    "PreparedSequence",
    "prepare_sequence",
    "resolve_feature_kind",
    "PrecomputedGCNConv",
    "SymmetricAdjacency",
    "normalized_adjacency",
    "symmetric_matrix",
    "GraphGRU",
    "GraphGRUCell",
    "NegativeSampler",
    "kl_normal",
    "pairwise_softplus_sum",
    "reconstruction_loss",
    "VGRNN",
    "FeatureEncoder",
    "ModelOutput",
    "RecurrentState",
    "TAVRNNModule",
]
