"""Window vectors (one vector per window from node embeddings) and blocked cross-validation splits with a gap."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..defaults import signature_defaults
from ..errors import TavrnnInputError
from .statistics import _encode


# ============================================================================================== window classification
def window_vectors(embeddings: "np.ndarray | Sequence[np.ndarray]", readout: str = "auto") -> np.ndarray:
    """One vector per window from node embeddings.

    Readouts pool over the N real nodes of each window only (a model's history / summary node is never part of
    ``embeddings``), so each vector is a graph-level readout of that window's embedding.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d) or (T, d), or sequence of T arrays of shape (N_t, d)
        Node embeddings; (T, d) input is returned unchanged (already one vector per window). An array (T, N, d) has
        one node axis: node i is the same unit in every window, as in one recording's embeddings. A list or tuple of
        per-window arrays says that each window has its own node set (windows of different recordings, or of
        different unit counts).
    readout : {"auto", "flat", "mean", "mean+std", "max"}, default: "auto"
        ``"flat"``: all node embeddings concatenated (N d), which keeps which unit is where (on the rat linear track
        it classified visits far better than the mean, see the results); defined only when every window has the same
        nodes. ``"mean"``: mean over nodes (d); ``"mean+std"``: mean and standard deviation concatenated (2d);
        ``"max"``: element-wise maximum (d). ``"auto"``: ``"flat"`` for an array (T, N, d), ``"mean"`` for a
        list or tuple of per-window arrays. Windows stacked from different recordings into one array with the same
        node count do not share units: pass ``"mean"`` for them (or give them as a list).

    Returns
    -------
    np.ndarray, shape (T, N d), (T, d) or (T, 2d)

    Examples
    --------
    >>> import numpy as np
    >>> window_vectors(np.ones((4, 10, 3))).shape  # one recording: "auto" keeps the units apart
    (4, 30)
    >>> window_vectors([np.ones((10, 3)), np.ones((7, 3))]).shape  # own node set per window: "auto" is the mean
    (2, 3)
    >>> window_vectors(np.ones((4, 10, 3)), "mean+std").shape
    (4, 6)
    """
    readouts = ("auto", "flat", "mean", "mean+std", "max")
    if readout not in readouts:
        raise TavrnnInputError(f"readout must be one of {readouts}, got {readout!r}.")
    if isinstance(embeddings, (list, tuple)):
        per_window = [np.asarray(z, dtype=np.float64) for z in embeddings]
        if any(z.ndim != 2 for z in per_window):
            raise TavrnnInputError("a list of per-window embeddings needs one (N_t, d) array per window.")
        if len({z.shape[1] for z in per_window}) > 1:
            raise TavrnnInputError("per-window embeddings must share the embedding dimension d.")
        if readout == "flat":
            if len({z.shape for z in per_window}) > 1:
                raise TavrnnInputError(
                    "readout='flat' needs the same nodes in every window; these windows have different node counts: "
                    "use readout='mean' (or 'auto')."
                )
            return np.stack([z.reshape(-1) for z in per_window])
        pooled = {"auto": np.mean, "mean": np.mean, "max": np.max}
        if readout == "mean+std":
            return np.stack([np.concatenate([z.mean(axis=0), z.std(axis=0)]) for z in per_window])
        return np.stack([pooled[readout](z, axis=0) for z in per_window])
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim == 2:
        return z
    if z.ndim != 3:
        raise TavrnnInputError(f"embeddings must have shape (T, N, d) or (T, d), got {z.shape}.")
    if readout in ("auto", "flat"):
        return z.reshape(z.shape[0], -1)
    if readout == "mean":
        return z.mean(axis=1)
    if readout == "mean+std":
        return np.concatenate([z.mean(axis=1), z.std(axis=1)], axis=1)
    return z.max(axis=1)


#: The window readout used when a caller does not name one (owned by :func:`window_vectors`).
DEFAULT_READOUT: str = signature_defaults(window_vectors)["readout"]


def _gap_from_windows(windows: Any) -> int:
    """Largest number of later windows (in time order) that overlap one window."""
    starts = np.asarray(windows.starts, dtype=np.float64)
    stops = np.asarray(windows.stops, dtype=np.float64)
    order = np.argsort(starts, kind="stable")
    starts, stops = starts[order], stops[order]
    # Window j > i overlaps window i iff starts[j] < stops[i]; starts are sorted so count with searchsorted.
    later_overlapping = np.searchsorted(starts, stops, side="left") - np.arange(starts.size) - 1
    return int(max(0, later_overlapping.max(initial=0)))


def window_splits(
    n_windows: int,
    n_splits: int = 5,
    gap: int = 1,
    groups: Sequence | None = None,
    labels: Sequence | None = None,
    order: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation splits of time-ordered windows that never train on neighbours of a test window.

    Without ``groups``: ``n_splits`` contiguous blocks in time order, each the test set once (blocked k-fold, no
    shuffling). With ``groups`` (trial, session, recording): :class:`sklearn.model_selection.StratifiedGroupKFold`
    (``shuffle=False``), so a group is never split. In both cases every training window within ``gap`` positions (in
    time order) of any test window is dropped: with sliding windows that overlap, a window and its neighbours share
    spikes, and training on them leaks the test window's data.

    Parameters
    ----------
    n_windows : int
    n_splits : int, default: 5
    gap : int, default: 1
        Windows dropped from training on each side of every test window (0: none).
    groups : sequence or None, default: None
        One group id per window.
    labels : sequence or None, default: None
        Window labels, used to stratify grouped splits.
    order : sequence of int or None, default: None
        Time order of the windows (indices sorted by start time); ``range(n_windows)`` when None.

    Returns
    -------
    list of (train, test) index arrays

    Examples
    --------
    >>> [test.tolist() for _, test in window_splits(6, n_splits=3, gap=1)]
    [[0, 1], [2, 3], [4, 5]]
    >>> [train.tolist() for train, _ in window_splits(6, n_splits=3, gap=1)]
    [[3, 4, 5], [0, 5], [0, 1, 2]]
    """
    n_windows = int(n_windows)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}.")
    order = np.arange(n_windows) if order is None else np.asarray(order, dtype=np.int64)
    if order.shape != (n_windows,) or not np.array_equal(np.sort(order), np.arange(n_windows)):
        raise ValueError("order must be a permutation of range(n_windows).")
    position = np.empty(n_windows, dtype=np.int64)
    position[order] = np.arange(n_windows)
    if groups is None:
        if not 2 <= n_splits <= n_windows:
            raise ValueError(f"n_splits must be between 2 and the number of windows ({n_windows}), got {n_splits}.")
        blocks = np.array_split(np.arange(n_windows), n_splits)  # positions in time order
        raw = [(np.setdiff1d(np.arange(n_windows), b), b) for b in blocks]
        raw = [(order[tr], order[te]) for tr, te in raw]
    else:
        from sklearn.model_selection import StratifiedGroupKFold

        groups = np.asarray(groups)
        if groups.shape != (n_windows,):
            raise ValueError(f"groups must have one entry per window ({n_windows}), got shape {groups.shape}.")
        n_groups = np.unique(groups).size
        if not 2 <= n_splits <= n_groups:
            raise ValueError(f"n_splits must be between 2 and the number of groups ({n_groups}), got {n_splits}.")
        y = np.zeros(n_windows) if labels is None else _encode(labels)[0]
        raw = list(StratifiedGroupKFold(n_splits=n_splits, shuffle=False).split(np.zeros(n_windows), y, groups))
    splits = []
    for train, test in raw:
        if gap > 0:
            dist = np.abs(position[train][:, None] - position[test][None, :]).min(axis=1)
            train = train[dist > gap]
        splits.append((np.sort(train), np.sort(test)))
    return splits
