"""`ConnectivitySequence`: one unthresholded connectivity matrix per time window, with its provenance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..windows import Windows

__all__ = ["ConnectivitySequence"]


def _json_scalar(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{value!r} ({type(value).__name__}) is not JSON-able")


@dataclass
class ConnectivitySequence:
    """Functional connectivity of every unit pair in every window, before any thresholding.

    Built by :func:`spikeinterface_tavrnn.compute_connectivity`; turned into a graph sequence by :meth:`to_graphs`.

    Parameters
    ----------
    matrices : np.ndarray, shape (n_windows, n_units, n_units)
        Symmetric float32 matrices. Units without a defined value in a window (silent units) have a row and column
        of 0 there, diagonal included; other units have 1 on the diagonal (built-in estimators).
    windows : Windows
        The windows, one per matrix.
    unit_ids : np.ndarray
        Unit ids, in matrix order.
    method : str
        Estimator name (``"sttc"``, ``"pearson"``, ``"crosscorr"`` or a registered one).
    params : dict
        JSON-able estimator parameters, defaults included, plus ``"backend"``.
    lags_ms : np.ndarray or None, default: None
        ``crosscorr`` only: lag of each peak in ms, antisymmetric, float32 (n_windows, n_units, n_units).
    spike_counts : np.ndarray or None, default: None
        Spikes of each unit in each window, int64 (n_windows, n_units).
    unit_labels, unit_locations_um : np.ndarray or None, default: None
        Carried from the :class:`~spikeinterface_tavrnn.SpikeTrains` for plots and analyses.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, compute_connectivity
    >>> rng = np.random.default_rng(0)
    >>> spikes = SpikeTrains.from_arrays([np.sort(rng.uniform(0, 60, 300)) for _ in range(4)],
    ...                                  t_start=0.0, t_stop=60.0, sampling_frequency=10000.0)
    >>> conn = compute_connectivity(spikes, None, method="sttc", dt_ms=5.0, verbose=False)
    >>> conn.matrices.shape, conn.params
    ((1, 4, 4), {'dt_ms': 5.0, 'backend': 'fast'})
    >>> graphs = conn.to_graphs(density=0.5, verbose=False)
    >>> graphs.num_edges.tolist()
    [3]
    """

    matrices: np.ndarray
    windows: Windows
    unit_ids: np.ndarray
    method: str
    params: dict
    lags_ms: np.ndarray | None = None
    spike_counts: np.ndarray | None = None
    unit_labels: np.ndarray | None = None
    unit_locations_um: np.ndarray | None = None
    _spikes: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.matrices = np.asarray(self.matrices, dtype=np.float32)
        self.unit_ids = np.asarray(self.unit_ids)
        if self.matrices.ndim != 3 or self.matrices.shape[1] != self.matrices.shape[2]:
            raise ValueError(f"matrices must have shape (n_windows, n_units, n_units), got {self.matrices.shape}.")
        n_windows, n_units = self.matrices.shape[:2]
        if len(self.windows) != n_windows:
            raise ValueError(f"{len(self.windows)} windows for {n_windows} matrices.")
        if self.unit_ids.shape != (n_units,):
            raise ValueError(f"{self.unit_ids.size} unit ids for {n_units} units.")
        if self.lags_ms is not None:
            self.lags_ms = np.asarray(self.lags_ms, dtype=np.float32)
            if self.lags_ms.shape != self.matrices.shape:
                raise ValueError(f"lags_ms must have the shape of matrices {self.matrices.shape}.")
        if self.spike_counts is not None:
            self.spike_counts = np.asarray(self.spike_counts, dtype=np.int64)
            if self.spike_counts.shape != (n_windows, n_units):
                raise ValueError(f"spike_counts must have shape ({n_windows}, {n_units}).")
        try:  # plain JSON types only, as they come back from storage
            self.params = json.loads(json.dumps(dict(self.params), default=_json_scalar))
        except TypeError as error:
            raise TypeError(f"params must be JSON-able (numbers, strings, lists, dicts): {error}") from None

    @property
    def num_windows(self) -> int:
        return int(self.matrices.shape[0])

    @property
    def num_units(self) -> int:
        return int(self.matrices.shape[1])

    def __len__(self) -> int:
        return self.num_windows

    def __getitem__(self, key: int | slice) -> "ConnectivitySequence":
        """The sub-sequence of windows ``key`` (an int gives a sequence of one window)."""
        if isinstance(key, (int, np.integer)):
            index = range(self.num_windows)[key]
            key = slice(index, index + 1)
        if not isinstance(key, slice):
            raise TypeError(f"ConnectivitySequence indices must be int or slice, got {type(key).__name__}.")
        if len(range(self.num_windows)[key]) == 0:
            raise ValueError(f"slice {key} selects no window out of {self.num_windows}.")
        return ConnectivitySequence(
            matrices=self.matrices[key],
            windows=self.windows[key],
            unit_ids=self.unit_ids,
            method=self.method,
            params=self.params,
            lags_ms=None if self.lags_ms is None else self.lags_ms[key],
            spike_counts=None if self.spike_counts is None else self.spike_counts[key],
            unit_labels=self.unit_labels,
            unit_locations_um=self.unit_locations_um,
            _spikes=self._spikes,
        )

    def __repr__(self) -> str:
        return (
            f"ConnectivitySequence(method={self.method!r}, {self.num_windows} windows, {self.num_units} units, "
            f"params={self.params})"
        )

    def to_graphs(
        self,
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
    ):
        """Threshold every window into an undirected graph: a :class:`~spikeinterface_tavrnn.graphs.GraphSequence`.

        Exactly one of ``threshold``, ``density`` and ``significance`` must be given. The diagonal is never an
        edge (self-loops are excluded; the model adds its own).

        Parameters
        ----------
        threshold : float or None
            Keep pairs with ``|value| >= threshold`` (``value >= threshold`` when ``absolute=False``); the TAVRNN
            paper uses Pearson ``|r| >= 0.6``.
        density : float or None
            Keep the top ``round(density * n (n - 1) / 2)`` pairs of each window by ``|value|`` (by ``value`` when
            ``absolute=False``), a fraction in ``[0, 1]``. Ties are broken by pair order ``(i, j)``, ``i < j``, so
            the result is deterministic. Pairs of value 0 are never edges, so a window with fewer non-zero pairs
            gets fewer edges.
        significance : float or None
            Keep pairs significant at level ``alpha = significance`` against spike-time-jitter surrogates (see
            :func:`spikeinterface_tavrnn.connectivity.thresholds.significance_mask`); needs the spikes.
        spikes : SpikeTrains or None, default: None
            For ``significance``: the spikes the sequence was computed from (defaults to those remembered by
            :func:`compute_connectivity`).
        jitter_ms : float, default: 10.0
            Surrogates move each spike uniformly within ``±jitter_ms``.
        n_surrogates : int, default: 99
            Number of surrogates; at least ``1 / alpha - 1``.
        seed : int or None, default: None
            Seed of the surrogates (``numpy.random.default_rng``).
        absolute : bool, default: True
            Rank and threshold ``|value|`` (two-sided) rather than ``value``.
        weighted : bool, default: True
            Edge weights are the values (``|value|`` when ``absolute``); else 1.
        node_features : "connectivity" or None, default: "connectivity"
            ``"connectivity"``: each node's features are its row of the unthresholded ``|matrix|`` with the
            diagonal set to 1 (the published DishBrain features), float32 (T, N, N). None: no features.
        verbose : bool, default: True
            Progress of the surrogates.

        Returns
        -------
        GraphSequence
        """
        from .thresholds import connectivity_to_graphs

        return connectivity_to_graphs(
            self,
            threshold=threshold,
            density=density,
            significance=significance,
            spikes=spikes,
            jitter_ms=jitter_ms,
            n_surrogates=n_surrogates,
            seed=seed,
            absolute=absolute,
            weighted=weighted,
            node_features=node_features,
            verbose=verbose,
        )

    def to_dict(self) -> dict:
        """Plain arrays plus one JSON-able ``"info"`` dict (method, params), for storage."""
        data = {
            "matrices": self.matrices,
            "window_starts": self.windows.starts,
            "window_stops": self.windows.stops,
            "unit_ids": self.unit_ids,
            "info": {"method": self.method, "params": self.params},
        }
        optional = {
            "window_labels": self.windows.labels,
            "lags_ms": self.lags_ms,
            "spike_counts": self.spike_counts,
            "unit_labels": self.unit_labels,
            "unit_locations_um": self.unit_locations_um,
        }
        data.update({key: np.asarray(value) for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ConnectivitySequence":
        """Inverse of :meth:`to_dict` (the spikes are not stored: pass them to ``to_graphs(significance=...)``)."""
        info = data["info"]
        if isinstance(info, str):
            info = json.loads(info)
        windows = Windows(data["window_starts"], data["window_stops"], data.get("window_labels"))
        return cls(
            matrices=data["matrices"],
            windows=windows,
            unit_ids=data["unit_ids"],
            method=info["method"],
            params=dict(info["params"]),
            lags_ms=data.get("lags_ms"),
            spike_counts=data.get("spike_counts"),
            unit_labels=data.get("unit_labels"),
            unit_locations_um=data.get("unit_locations_um"),
        )
