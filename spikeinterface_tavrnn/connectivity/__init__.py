"""Functional connectivity per time window: STTC, binned Pearson, peak cross-correlation; thresholds to graphs.

Public API: :func:`compute_connectivity`, :class:`ConnectivitySequence`, :func:`register_estimator`,
:func:`available_methods`. Each built-in method has a fast backend (numba / BLAS, the default) and an
``backend="elephant"`` one computed through Elephant's own functions, for reference and cross-checks.
"""

from __future__ import annotations

from .base import ConnectivitySequence
from .crosscorr import crosscorr_matrices, crosscorr_matrices_elephant
from .pearson import pearson_matrices, pearson_matrices_elephant
from .compute import compute_connectivity
from .registry import available_methods, register_estimator
from .sttc import sttc_matrices, sttc_matrices_elephant
from .thresholds import density_mask, jitter_spikes, significance_mask, surrogate_p_values, threshold_mask

__all__ = [
    "compute_connectivity",
    "ConnectivitySequence",
    "register_estimator",
    "available_methods",
    "sttc_matrices",
    "pearson_matrices",
    "crosscorr_matrices",
    "threshold_mask",
    "density_mask",
    "significance_mask",
    "surrogate_p_values",
    "jitter_spikes",
]


def _sttc(spikes, windows, verbose=True, dt_ms=5.0):
    return sttc_matrices(spikes, windows, dt_ms=dt_ms, verbose=verbose)


def _sttc_elephant(spikes, windows, verbose=True, dt_ms=5.0):
    return sttc_matrices_elephant(spikes, windows, dt_ms=dt_ms, verbose=verbose)


def _pearson(spikes, windows, verbose=True, bin_ms=50.0, binary=True):
    return pearson_matrices(spikes, windows, bin_ms=bin_ms, binary=binary, verbose=verbose)


def _pearson_elephant(spikes, windows, verbose=True, bin_ms=50.0, binary=True):
    return pearson_matrices_elephant(spikes, windows, bin_ms=bin_ms, binary=binary, verbose=verbose)


def _crosscorr(spikes, windows, verbose=True, bin_ms=1.0, max_lag_ms=10.0, binary=True, peak="abs"):
    return crosscorr_matrices(
        spikes, windows, bin_ms=bin_ms, max_lag_ms=max_lag_ms, binary=binary, peak=peak, verbose=verbose
    )


def _crosscorr_elephant(spikes, windows, verbose=True, bin_ms=1.0, max_lag_ms=10.0, binary=True, peak="abs"):
    return crosscorr_matrices_elephant(
        spikes, windows, bin_ms=bin_ms, max_lag_ms=max_lag_ms, binary=binary, peak=peak, verbose=verbose
    )


register_estimator("sttc", _sttc, _sttc_elephant, overwrite=True, _symmetric_by_construction=True)
register_estimator("pearson", _pearson, _pearson_elephant, overwrite=True, _symmetric_by_construction=True)
register_estimator("crosscorr", _crosscorr, _crosscorr_elephant, overwrite=True, _symmetric_by_construction=True)
