"""Distance between two node groups' embedding distributions per window, and its relation to behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.stats
from scipy.spatial.distance import cdist

from .statistics import _circular_shifts, _progress, permutation_p_value


# ============================================================================================== region alignment
def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample energy distance between point clouds (Szekely & Rizzo 2004), in any dimension.

    ``sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|)`` with Euclidean norms and expectations over the empirical
    distributions (all pairs, V-statistics), so it is >= 0 and 0 iff the two samples are identical as distributions.
    In one dimension it equals :func:`scipy.stats.energy_distance`.

    Parameters
    ----------
    x : np.ndarray, shape (n_x, d) or (n_x,)
    y : np.ndarray, shape (n_y, d) or (n_y,)

    Returns
    -------
    float

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 6)
    0.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    e = 2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    return float(np.sqrt(max(e, 0.0)))


def centroid_cosine_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``1 - cos(mean(x), mean(y))``, between 0 (same direction) and 2 (opposite); NaN if a centroid is zero.

    Parameters
    ----------
    x : np.ndarray, shape (n_x, d)
    y : np.ndarray, shape (n_y, d)

    Returns
    -------
    float

    Examples
    --------
    >>> centroid_cosine_distance([[1.0, 0.0]], [[0.0, 2.0]])
    1.0
    """
    a = np.asarray(x, dtype=np.float64).mean(axis=0)
    b = np.asarray(y, dtype=np.float64).mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(1.0 - a @ b / (na * nb))


def _partial_spearman(x: np.ndarray, y: np.ndarray, control: np.ndarray) -> float:
    """Spearman correlation of x and y after regressing the ranks of ``control`` out of both ranks."""
    if x.size < 4:
        return float("nan")
    rx, ry, rc = (scipy.stats.rankdata(v) for v in (x, y, control))
    design = np.column_stack([np.ones_like(rc), rc])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    denom = np.linalg.norm(res_x) * np.linalg.norm(res_y)
    return float(res_x @ res_y / denom) if denom > 0 else float("nan")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


@dataclass
class AlignmentResult:
    """Distances between two node groups' embeddings per window, and their relation to behaviour.

    Attributes
    ----------
    distances : dict of str to np.ndarray
        ``cosine`` (centroid cosine distance) and ``energy`` (energy distance), shape (T,) each.
    distance_p_values : dict of str to np.ndarray
        Per window, the p-value of each distance against random re-assignments of the pooled nodes to two groups of
        the same sizes (the energy two-sample test for ``energy``); NaN when ``n_node_permutations`` is 0.
    correlation : dict of str to dict of str to float
        Per distance: ``rho`` (Spearman, distance vs behaviour), ``p_value`` (circular-shift null, two-sided),
        ``partial_rho`` (controlling for window index, i.e. time in session), ``partial_p_value``, and ``n_shifts``.
        Empty when no behaviour was given.
    null : dict of str to dict of str to np.ndarray
        Per distance, the ``rho`` and ``partial_rho`` null distributions.
    """

    distances: dict[str, np.ndarray]
    distance_p_values: dict[str, np.ndarray]
    correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    null: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _group_mask(node_labels: np.ndarray, group: Any) -> np.ndarray:
    if isinstance(group, (list, tuple, set, np.ndarray)):
        return np.isin(node_labels, list(group))
    return node_labels == group


def region_alignment(
    embeddings: np.ndarray,
    node_labels: Sequence,
    group_a: Any,
    group_b: Any,
    behaviour: Sequence[float] | None = None,
    n_permutations: int = 1000,
    n_node_permutations: int = 199,
    seed: int = 0,
    verbose: bool = False,
) -> AlignmentResult:
    """How far apart are two groups of nodes (e.g. sensory vs motor region) in embedding space, window by window,
    and does that distance follow behaviour?

    Distances per window t, between ``A = {Z_t[i] : node i in group_a}`` and ``B`` likewise:

    * centroid cosine distance ``1 - cos(mean A, mean B)`` (direction of the group means; scale free);
    * energy distance (Szekely & Rizzo 2004), see :func:`energy_distance`: zero iff the two distributions are
      equal, sensitive to any difference in location, spread or shape.

    Correlation with behaviour (windows must be in time order): Spearman ``rho`` between each distance series and the
    behavioural score per window.
    Its null comes from circular shifts of the behaviour series: windows and behaviour are both autocorrelated
    (sliding windows overlap, performance drifts), and a random shuffle would destroy that autocorrelation and give
    a null far too narrow (spurious "significant" correlations between two smooth series). A circular shift keeps
    the behaviour's autocorrelation and only breaks its alignment with the distances. With T windows there are
    T - 1 shifts (all used when ``n_permutations >= T - 1``), so the smallest p-value is 1 / T: short sessions cannot
    reach small p-values, honestly. ``partial_rho`` controls for time in session: the Spearman correlation after
    regressing the window index out of both ranked series (a distance and a behaviour that both trend over the
    session correlate without any link between them).

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)
    node_labels : sequence, shape (N,)
    group_a, group_b : label or list of labels
        The node groups to compare (e.g. ``"sensory"`` and ``["motor_1", "motor_2"]``); must not overlap.
    behaviour : sequence of float, shape (T,), or None, default: None
        Behavioural score per window (hit rate, speed); no correlation when None.
    n_permutations : int, default: 1000
        Circular shifts of the behaviour for the correlation null.
    n_node_permutations : int, default: 199
        Re-assignments of nodes to the groups for the per-window distance p-values (0 to skip).
    seed : int, default: 0
    verbose : bool, default: False

    Returns
    -------
    AlignmentResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> behaviour = rng.random(30)
    >>> z = rng.normal(size=(30, 20, 2))
    >>> z[:, :10] += 4.0 * behaviour[:, None, None]
    >>> res = region_alignment(z, [0] * 10 + [1] * 10, 0, 1, behaviour=behaviour)
    >>> res.correlation["energy"]["rho"] > 0.8, res.correlation["energy"]["p_value"] < 0.05
    (True, True)
    """
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim != 3:
        raise ValueError(f"embeddings must have shape (T, N, d), got {z.shape}.")
    n_windows, n_nodes = z.shape[:2]
    node_labels = np.asarray(node_labels)
    if node_labels.shape != (n_nodes,):
        raise ValueError(f"node_labels must have one entry per node ({n_nodes}), got shape {node_labels.shape}.")
    mask_a, mask_b = _group_mask(node_labels, group_a), _group_mask(node_labels, group_b)
    if np.any(mask_a & mask_b):
        raise ValueError("group_a and group_b share nodes; give disjoint groups.")
    if mask_a.sum() < 1 or mask_b.sum() < 1:
        raise ValueError(f"group_a has {mask_a.sum()} nodes and group_b {mask_b.sum()}; both need at least one.")

    pooled = np.flatnonzero(mask_a | mask_b)
    is_a = mask_a[pooled]
    n_a, n_b = int(is_a.sum()), int((~is_a).sum())
    rng = np.random.default_rng(seed)
    # Columns: group-A indicators of random reassignments of the pooled nodes (group sizes kept).
    assign = np.zeros((pooled.size, n_node_permutations))
    for j in range(n_node_permutations):
        assign[rng.choice(pooled.size, n_a, replace=False), j] = 1.0

    distances = {"cosine": np.full(n_windows, np.nan), "energy": np.full(n_windows, np.nan)}
    dist_p = {"cosine": np.full(n_windows, np.nan), "energy": np.full(n_windows, np.nan)}
    for t in _progress(range(n_windows), verbose, "windows"):
        zt = z[t, pooled]
        distances["cosine"][t] = centroid_cosine_distance(zt[is_a], zt[~is_a])
        distances["energy"][t] = energy_distance(zt[is_a], zt[~is_a])
        if n_node_permutations == 0:
            continue
        # Vectorised energy statistic for all reassignments: block sums of the pooled distance matrix.
        d = cdist(zt, zt)
        row = d.sum(axis=1)
        total = row.sum()
        s_aa = np.einsum("ip,ip->p", assign, d @ assign)
        s_a_all = row @ assign
        s_ab = s_a_all - s_aa
        s_bb = total - 2.0 * s_a_all + s_aa
        e = 2.0 * s_ab / (n_a * n_b) - s_aa / n_a**2 - s_bb / n_b**2
        dist_p["energy"][t] = permutation_p_value(distances["energy"][t], np.sqrt(np.maximum(e, 0.0)))
        mean_a = (zt.T @ assign) / n_a
        mean_b = (zt.T @ (1.0 - assign)) / n_b
        norms = np.linalg.norm(mean_a, axis=0) * np.linalg.norm(mean_b, axis=0)
        with np.errstate(all="ignore"):
            cos_null = 1.0 - np.sum(mean_a * mean_b, axis=0) / norms
        dist_p["cosine"][t] = permutation_p_value(distances["cosine"][t], cos_null)
    result = AlignmentResult(distances, dist_p)
    if behaviour is None:
        return result

    b = np.asarray(behaviour, dtype=np.float64)
    if b.shape != (n_windows,):
        raise ValueError(f"behaviour must have one value per window ({n_windows}), got shape {b.shape}.")
    if not np.all(np.isfinite(b)):
        raise ValueError("behaviour contains NaN or inf; drop those windows from embeddings and behaviour first.")
    time_index = np.arange(n_windows, dtype=np.float64)
    shifts = _circular_shifts(n_windows, n_permutations, rng)
    for name, dist in distances.items():
        ok = np.isfinite(dist)
        if ok.sum() < 3:
            nan = float("nan")
            result.correlation[name] = {
                "rho": nan,
                "p_value": nan,
                "partial_rho": nan,
                "partial_p_value": nan,
                "n_shifts": int(shifts.size),
            }
            result.null[name] = {"rho": np.zeros(0), "partial_rho": np.zeros(0)}
            continue
        rho = _spearman(dist[ok], b[ok])
        partial = _partial_spearman(dist[ok], b[ok], time_index[ok])
        null_rho = np.full(shifts.size, np.nan)
        null_partial = np.full(shifts.size, np.nan)
        for i, s in enumerate(shifts):
            bs = np.roll(b, int(s))[ok]
            null_rho[i] = _spearman(dist[ok], bs)
            null_partial[i] = _partial_spearman(dist[ok], bs, time_index[ok])
        result.correlation[name] = {
            "rho": rho,
            "p_value": permutation_p_value(rho, null_rho, "two-sided"),
            "partial_rho": partial,
            "partial_p_value": permutation_p_value(partial, null_partial, "two-sided"),
            "n_shifts": int(shifts.size),
        }
        result.null[name] = {"rho": null_rho, "partial_rho": null_partial}
    return result
