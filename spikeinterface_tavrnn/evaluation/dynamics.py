"""How the network's state changes over time: window x window similarity and the units that change role most.

Both work on node embeddings ``(T, N, d)`` of one model (the same units in every window, as in the
``tavrnn_embeddings`` extension), so a unit's position can be compared across windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["window_similarity", "RoleChange", "role_change"]


def _displacements(embeddings: np.ndarray) -> np.ndarray:
    """Each unit's embedding minus its own mean over windows, ``(T, N, d)``; NaN units (merged, split) are zero."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"embeddings must have shape (n_windows, n_units, z_dim), got {x.shape}.")
    x = np.where(np.isfinite(x), x, np.nan)
    centred = x - np.nanmean(x, axis=0, keepdims=True)
    return np.nan_to_num(centred, nan=0.0)


def window_similarity(embeddings: np.ndarray) -> np.ndarray:
    """Similarity between the network states of every pair of windows, ``(T, T)`` in [-1, 1].

    A window's state is the vector of all its units' embeddings after subtracting each unit's mean over windows,
    so the similarity reflects how units moved, not where each unit sits on average: the cosine of two windows'
    state vectors is near 1 when the network reorganised the same way in both, near -1 for opposite changes,
    and near 0 for unrelated ones.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)
        Node embeddings of the same units in every window.

    Returns
    -------
    similarity : np.ndarray, shape (T, T)
        Cosine similarity of the windows' state vectors (1 on the diagonal; 0 for a window whose state equals
        the mean state).
    """
    states = _displacements(embeddings).reshape(np.shape(embeddings)[0], -1)
    norms = np.linalg.norm(states, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (states @ states.T) / np.outer(norms, norms)
    similarity = np.where(np.isfinite(similarity), similarity, 0.0)
    np.fill_diagonal(similarity, 1.0)
    return np.clip(similarity, -1.0, 1.0)


@dataclass
class RoleChange:
    """Result of :func:`role_change`.

    Attributes
    ----------
    score : np.ndarray, shape (N,)
        Root-mean-square distance of each unit from its own mean embedding over windows, divided by the median
        of this value over units (1: a typical unit; 3: moves three times as much).
    displacement : np.ndarray, shape (T, N)
        Distance of each unit from its own mean embedding in each window, on the same scale.
    order : np.ndarray, shape (N,)
        Unit indices sorted by decreasing score.
    """

    score: np.ndarray
    displacement: np.ndarray
    order: np.ndarray


def role_change(embeddings: np.ndarray) -> RoleChange:
    """Which units change their place in the network most across windows.

    A unit's role is its position in the embedding (whom it is connected to, and how). Its change is measured
    as the distance of its embedding in each window from its own average position.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)
        Node embeddings of the same units in every window.

    Returns
    -------
    RoleChange
        Per-unit scores, per-window displacements and the units ordered from most to least changing.
    """
    distance = np.linalg.norm(_displacements(embeddings), axis=2)  # (T, N)
    rms = np.sqrt(np.mean(distance**2, axis=0))
    scale = float(np.median(rms)) if rms.size and np.median(rms) > 0 else 1.0
    score = rms / scale
    return RoleChange(score=score, displacement=distance / scale, order=np.argsort(-score, kind="stable"))
