"""From connectivity matrices to graphs: absolute threshold, target density, or surrogate significance.

Rules shared by the three
-------------------------
* The diagonal is never an edge (no self-loops; the model adds its own).
* A pair whose value is exactly 0 is never an edge (0 is also the value of pairs with a silent unit).
* ``absolute=True`` ranks and tests ``|value|`` (two-sided); ``absolute=False`` ranks and tests ``value``
  (only strong positive values are kept by the threshold and the significance test).
"""

from __future__ import annotations

import math

import numpy as np

from ..graphs import GraphSequence
from ..spiketrains import SpikeTrains

__all__ = [
    "threshold_mask",
    "density_mask",
    "jitter_spikes",
    "surrogate_p_values",
    "significance_mask",
    "connectivity_to_graphs",
]


def _off_diagonal_nonzero(matrices: np.ndarray) -> np.ndarray:
    keep = matrices != 0
    idx = np.arange(matrices.shape[1])
    keep[:, idx, idx] = False
    return keep


def threshold_mask(matrices: np.ndarray, threshold: float, absolute: bool = True) -> np.ndarray:
    """Edges ``|value| >= threshold`` (``value >= threshold`` if not ``absolute``), off the diagonal, non-zero."""
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}.")
    if absolute and threshold < 0:
        raise ValueError(f"threshold on |value| must be >= 0, got {threshold}.")
    matrices = np.asarray(matrices)
    score = np.abs(matrices) if absolute else matrices
    return (score >= threshold) & _off_diagonal_nonzero(matrices)


def density_mask(matrices: np.ndarray, density: float, absolute: bool = True) -> np.ndarray:
    """Per window, the ``round(density * n (n - 1) / 2)`` off-diagonal pairs of largest ``|value|``.

    Ties at the cut are broken by pair order: row-major over the upper triangle, ``(i, j)`` with ``i < j``.
    Pairs of value 0 are never kept, so a window may get fewer edges than asked for.
    """
    density = float(density)
    if not (0.0 <= density <= 1.0):
        raise ValueError(f"density must be a fraction in [0, 1], got {density}.")
    matrices = np.asarray(matrices)
    n_windows, n = matrices.shape[:2]
    rows, cols = np.triu_indices(n, 1)
    n_pairs = rows.size
    k = int(round(density * n_pairs))
    mask = np.zeros(matrices.shape, dtype=bool)
    if k == 0 or n_pairs == 0:
        return mask
    for t in range(n_windows):
        values = matrices[t][rows, cols].astype(np.float64)
        score = np.abs(values) if absolute else values
        if k >= n_pairs:
            keep = np.ones(n_pairs, dtype=bool)
        else:
            cut = np.partition(score, n_pairs - k)[n_pairs - k]  # the k-th largest score
            keep = score > cut
            ties = np.flatnonzero(score == cut)[: k - int(keep.sum())]
            keep[ties] = True
        keep &= values != 0
        mask[t, rows[keep], cols[keep]] = True
        mask[t, cols[keep], rows[keep]] = True
    return mask


def jitter_spikes(spikes: SpikeTrains, jitter_ms: float, rng: np.random.Generator) -> SpikeTrains:
    """A surrogate: every spike moved by a uniform integer number of samples in ``[-jitter, +jitter]``.

    Spikes pushed outside the recording are reflected back at its bounds, so the spike count of every unit is
    kept exactly; each train is re-sorted.
    """
    jitter_ms = float(jitter_ms)
    if not math.isfinite(jitter_ms) or jitter_ms <= 0:
        raise ValueError(f"jitter_ms must be a finite positive number of milliseconds, got {jitter_ms}.")
    jitter = int(round(jitter_ms * spikes.sampling_frequency / 1000.0))
    if jitter < 1:
        raise ValueError(f"jitter_ms={jitter_ms} is shorter than one sample at {spikes.sampling_frequency:g} Hz.")
    lo, hi = spikes.t_start_sample, spikes.t_stop_sample
    trains = []
    for train in spikes.spike_samples:
        moved = train + rng.integers(-jitter, jitter + 1, size=train.size)
        moved = np.where(moved < lo, 2 * lo - moved, moved)
        moved = np.where(moved > hi, 2 * hi - moved, moved)
        trains.append(np.sort(np.clip(moved, lo, hi)))
    return SpikeTrains(
        spike_samples=trains,
        sampling_frequency=spikes.sampling_frequency,
        t_start_s=spikes.t_start_s,
        t_stop_s=spikes.t_stop_s,
        unit_ids=spikes.unit_ids,
        unit_locations_um=spikes.unit_locations_um,
        unit_labels=spikes.unit_labels,
        metadata=dict(spikes.metadata),
    )


def surrogate_p_values(
    connectivity,
    spikes: SpikeTrains,
    jitter_ms: float = 10.0,
    n_surrogates: int = 99,
    seed: int | None = None,
    absolute: bool = True,
    verbose: bool = True,
) -> np.ndarray:
    """Jitter-surrogate p-values of every pair in every window, float64 (T, N, N).

    Each surrogate jitters every spike (:func:`jitter_spikes`) and recomputes the same method, parameters,
    backend and windows. With ``k`` the number of surrogates whose value is at least as extreme as the observed
    one (``|s| >= |o|`` when ``absolute``, else ``s >= o``), ``p = (k + 1) / (n_surrogates + 1)`` (Davison &
    Hinkley 1997), which is never 0. Only the counts are kept in memory, not the surrogates.
    """
    from tqdm.auto import tqdm

    from .registry import get_estimator, run_estimator

    n_surrogates = int(n_surrogates)
    if n_surrogates < 1:
        raise ValueError(f"n_surrogates must be >= 1, got {n_surrogates}.")
    if spikes.num_units != connectivity.num_units or not np.array_equal(spikes.unit_ids, connectivity.unit_ids):
        raise ValueError("The spikes do not have the units of the connectivity sequence; pass the same spikes.")
    estimator = get_estimator(connectivity.method)
    params = {key: value for key, value in connectivity.params.items() if key != "backend"}
    params = estimator.resolve(params)
    backend = connectivity.params.get("backend", "fast")
    observed = connectivity.matrices
    observed_score = np.abs(observed) if absolute else observed
    exceed = np.zeros(observed.shape, dtype=np.int32)
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(n_surrogates), desc=f"{connectivity.method} surrogates", disable=not verbose):
        surrogate = jitter_spikes(spikes, jitter_ms, rng)
        values, _ = run_estimator(estimator, surrogate, connectivity.windows, params, backend, verbose=False)
        values = values.astype(np.float32, copy=False)
        exceed += (np.abs(values) if absolute else values) >= observed_score
    return (exceed + 1.0) / (n_surrogates + 1.0)


def significance_mask(
    connectivity,
    alpha: float,
    spikes: SpikeTrains | None = None,
    jitter_ms: float = 10.0,
    n_surrogates: int = 99,
    seed: int | None = None,
    absolute: bool = True,
    verbose: bool = True,
) -> np.ndarray:
    """Edges whose surrogate p-value (:func:`surrogate_p_values`) is ``<= alpha``, off the diagonal, non-zero.

    ``n_surrogates`` must be at least ``1 / alpha - 1``, the smallest number for which ``p <= alpha`` is possible.
    No correction for multiple comparisons is applied: with ``n (n - 1) / 2`` pairs, about ``alpha`` of the
    independent pairs pass by chance.
    """
    alpha = float(alpha)
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"significance (alpha) must be in (0, 1), got {alpha}.")
    if int(n_surrogates) + 1 < 1.0 / alpha - 1e-9:
        raise ValueError(
            f"With n_surrogates={n_surrogates} the smallest p-value is {1 / (int(n_surrogates) + 1):.3g} > "
            f"alpha={alpha}: nothing could be significant. Use n_surrogates >= {math.ceil(1 / alpha - 1)}."
        )
    spikes = spikes if spikes is not None else getattr(connectivity, "_spikes", None)
    if spikes is None:
        raise ValueError(
            "significance needs the spike trains the connectivity was computed from: pass spikes= (they are not "
            "stored with a sequence loaded from disk)."
        )
    from .registry import as_spike_trains

    spikes = as_spike_trains(spikes)
    p = surrogate_p_values(connectivity, spikes, jitter_ms, n_surrogates, seed, absolute, verbose)
    return (p <= alpha) & _off_diagonal_nonzero(connectivity.matrices)


def connectivity_features(matrices: np.ndarray) -> np.ndarray:
    """Rows of ``|matrix|`` with the diagonal set to 1, float32 (T, N, N): the published DishBrain features."""
    features = np.abs(np.asarray(matrices, dtype=np.float32))
    idx = np.arange(features.shape[1])
    features[:, idx, idx] = 1.0
    return features


def connectivity_to_graphs(
    connectivity,
    threshold: float | None = None,
    density: float | None = None,
    significance: float | None = None,
    *,
    spikes=None,
    jitter_ms: float = 10.0,
    n_surrogates: int = 99,
    seed: int | None = None,
    absolute: bool = True,
    weighted: bool = True,
    node_features: str | None = "connectivity",
    verbose: bool = True,
) -> GraphSequence:
    """See :meth:`ConnectivitySequence.to_graphs`."""
    given = [name for name, value in (("threshold", threshold), ("density", density), ("significance", significance))
             if value is not None]  # fmt: skip
    if len(given) != 1:
        raise ValueError(
            f"Give exactly one of threshold=, density=, significance= (got {given or 'none'}); e.g. "
            "threshold=0.6 keeps |value| >= 0.6."
        )
    if node_features not in ("connectivity", None):
        raise ValueError(f"node_features must be 'connectivity' or None, got {node_features!r}.")
    matrices = connectivity.matrices
    if threshold is not None:
        mask = threshold_mask(matrices, threshold, absolute)
    elif density is not None:
        mask = density_mask(matrices, density, absolute)
    else:
        mask = significance_mask(
            connectivity, significance, spikes, jitter_ms, n_surrogates, seed, absolute, verbose=verbose
        )
    edge_indices, edge_weights = [], []
    for t in range(matrices.shape[0]):
        rows, cols = np.nonzero(mask[t])
        values = matrices[t, rows, cols]
        edge_indices.append(np.vstack([rows, cols]).astype(np.int64))
        if weighted:
            edge_weights.append(np.abs(values) if absolute else values)
        else:
            edge_weights.append(np.ones(rows.size, dtype=np.float32))
    rates = None
    if connectivity.spike_counts is not None:
        durations_s = np.asarray(connectivity.windows.stops, float) - np.asarray(connectivity.windows.starts, float)
        rates = connectivity.spike_counts / np.maximum(durations_s, 1e-12)[:, None]
    return GraphSequence(
        edge_indices,
        connectivity.num_units,
        firing_rates_hz=rates,
        edge_weights=edge_weights,
        node_features=connectivity_features(matrices) if node_features == "connectivity" else None,
        node_ids=connectivity.unit_ids,
        windows=connectivity.windows,
        node_labels=connectivity.unit_labels,
    )
