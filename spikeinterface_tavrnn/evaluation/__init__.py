"""Honest tests of what embeddings of a dynamic functional network say about behaviour and anatomy.

The functions work on numpy arrays (embeddings ``(T, N, d)``, window vectors ``(T, d)``) and labels, so they apply
equally to TAVRNN embeddings and to the baselines of :mod:`spikeinterface_tavrnn.baselines`, which
:func:`compare_methods` runs through the same code path.

Every score comes with a permutation control: the same procedure is re-run on shuffled labels, which gives a null
distribution and the p-value ``(k + 1) / (n + 1)`` (k null scores at least as extreme as the observed one out of n;
Phipson & Smyth 2010), never 0.

* :func:`classify_windows`: window labels from window vectors, logistic regression, blocked / grouped
  cross-validation with a gap so overlapping windows never sit on both sides of a split.
* :func:`cluster_nodes`: k-means on each window's node embeddings against known node groups (region, well).
* :func:`region_alignment`: distance between two node groups' embedding distributions per window, and its
  correlation with behaviour (circular-shift null, time-in-session control).
* :func:`score_links`: a model's link detection and one-step link prediction scores (VGRNN's intrinsic measures;
  ``TAVRNN.score_links`` calls it).
* :func:`link_scores`, :func:`compare_methods`: repeated runs over seeds, mean and 95 % interval per score.

The tools are grouped by job in submodules (:mod:`.statistics`, :mod:`.windows`, :mod:`.decoding`,
:mod:`.nodes`, :mod:`.alignment`, :mod:`.dynamics`, :mod:`.links`, :mod:`.comparison`); every public name is importable from this package.
"""

from __future__ import annotations

from .statistics import PairedTest, mcnemar_p_value, mean_ci, paired_test, permutation_p_value
from .windows import window_vectors, window_splits
from .decoding import (
    CLASSIFICATION_METRICS,
    FEATURE_SETS,
    BaselineDecoding,
    ClassificationResult,
    classify_windows,
    decode_against_baselines,
    fold_scores,
)
from .dynamics import RoleChange, role_change, window_similarity
from .nodes import ClusteringResult, cluster_nodes, CLUSTERING_METRICS
from .alignment import AlignmentResult, energy_distance, centroid_cosine_distance, region_alignment
from .links import score_links
from .comparison import ScoreTable, link_scores, compare_methods

__all__ = [
    "ClassificationResult",
    "ClusteringResult",
    "AlignmentResult",
    "ScoreTable",
    "mean_ci",
    "permutation_p_value",
    "mcnemar_p_value",
    "PairedTest",
    "paired_test",
    "fold_scores",
    "window_vectors",
    "window_splits",
    "classify_windows",
    "cluster_nodes",
    "energy_distance",
    "centroid_cosine_distance",
    "region_alignment",
    "score_links",
    "link_scores",
    "compare_methods",
    "BaselineDecoding",
    "decode_against_baselines",
    "RoleChange",
    "role_change",
    "window_similarity",
]
