"""``compute_connectivity``: spikes and windows in, one connectivity matrix per window out."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import sanity
from ..windows import Windows
from .base import ConnectivitySequence
from .binning import window_spike_counts
from .registry import BACKENDS, as_spike_trains, as_windows, get_estimator, run_estimator

__all__ = ["compute_connectivity"]


def compute_connectivity(
    spikes: Any,
    windows: Windows | None = None,
    method: str = "sttc",
    backend: str = "fast",
    verbose: bool = True,
    check_spike_times: bool = True,
    **params,
) -> ConnectivitySequence:
    """Functional connectivity of every unit pair in every time window.

    Parameters
    ----------
    spikes : SpikeTrains, BaseSorting, SortingAnalyzer or Neo spike trains
        The sorted spikes (converted with :meth:`SpikeTrains.from_sorting` / :meth:`SpikeTrains.from_neo`).
    windows : Windows or None, default: None
        Windows inside the recording (an error otherwise: windows are never cropped); None is one window over the
        whole recording. Bounds are rounded to the nearest sample and a spike at sample ``s`` belongs to a window
        ``[w0, w1)``.
    method : str, default: "sttc"
        ``"sttc"`` (:mod:`.sttc`, parameter ``dt_ms=5.0``), ``"pearson"`` (:mod:`.pearson`, ``bin_ms=50.0``,
        ``binary=True``), ``"crosscorr"`` (:mod:`.crosscorr`, ``bin_ms=1.0``, ``max_lag_ms=10.0``,
        ``binary=True``, ``peak="abs"``) or any name added with :func:`register_estimator`.
    backend : "fast" | "elephant", default: "fast"
        ``"fast"``: this package's numba/BLAS implementation. ``"elephant"``: the same measure through Elephant's
        own functions (pairwise where Elephant is pairwise): the reference, for cross-checks, and slow (at 1,024
        units and 120 s windows: STTC and crosscorr about an hour or more per window, Pearson a few seconds).
        The two agree except where Elephant is inexact: its STTC coincidence window grows with absolute time
        (see :mod:`.sttc`).
    verbose : bool, default: True
        Progress bars.
    check_spike_times : bool, default: True
        Before computing, refuse spike times that make the recording's span implausible (one spike far beyond the
        others, a span of days for a few thousand spikes, times that look like milliseconds) and runs whose windows
        are mostly empty (see :mod:`spikeinterface_tavrnn.sanity`). False skips both checks.
    **params
        Parameters of the method; defaults are filled in and everything is recorded in ``.params``.

    Returns
    -------
    ConnectivitySequence

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, compute_connectivity, sliding_windows
    >>> rng = np.random.default_rng(1)
    >>> times = [np.sort(rng.uniform(0, 600, 3000)) for _ in range(8)]
    >>> spikes = SpikeTrains.from_arrays(times, t_start=0.0, t_stop=600.0, sampling_frequency=25000.0)
    >>> conn = compute_connectivity(spikes, sliding_windows(0, 600, 120, 60), method="pearson", bin_ms=50,
    ...                             verbose=False)
    >>> conn
    ConnectivitySequence(method='pearson', 9 windows, 8 units, params={'bin_ms': 50, 'binary': True, 'backend': 'fast'})
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}.")
    estimator = get_estimator(method)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    spikes = as_spike_trains(spikes)
    windows = as_windows(windows, spikes)
    windows.check_within(spikes.t_start_s, spikes.t_stop_s)
    if check_spike_times:
        sanity.check_spike_times(spikes)
        sanity.check_window_occupancy(spikes, windows)
    resolved = estimator.resolve(params)
    matrices, extra = run_estimator(estimator, spikes, windows, resolved, backend, verbose)
    return ConnectivitySequence(
        matrices=matrices.astype(np.float32, copy=False),
        windows=windows,
        unit_ids=spikes.unit_ids,
        method=method,
        params={**resolved, "backend": backend},
        lags_ms=extra.get("lags_ms"),
        spike_counts=window_spike_counts(spikes, windows),
        unit_labels=spikes.unit_labels,
        unit_locations_um=spikes.unit_locations_um,
        _spikes=spikes,
    )
