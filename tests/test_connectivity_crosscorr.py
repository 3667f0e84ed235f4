"""Peak normalised cross-correlation: Elephant's cross_correlation_histogram, explicit sums, lags, Pearson at lag 0."""

from __future__ import annotations

import numpy as np
import pytest

from spikeinterface_tavrnn.connectivity import compute_connectivity, crosscorr_matrices, pearson_matrices
from spikeinterface_tavrnn.connectivity.binning import window_samples
from spikeinterface_tavrnn.connectivity.crosscorr import crosscorr_matrices_elephant, lag_order
from spikeinterface_tavrnn.spiketrains import SpikeTrains
from spikeinterface_tavrnn.windows import Windows, sliding_windows

from _reference import binned_matrix, cch_coefficient


def _spikes(seed=0, n_units=8, duration_s=20.0, fs=10000.0) -> SpikeTrains:
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs)
    trains = [np.sort(rng.integers(0, n, rng.integers(30, 400))) for _ in range(n_units)]
    driver = np.sort(rng.integers(0, n - 200, 300))
    trains[0] = driver
    trains[1] = np.sort(np.concatenate([driver + 40, trains[1][:50]]))  # follows unit 0 by 4 ms
    trains[2] = np.array([], dtype=np.int64)
    trains[3] = np.sort(np.concatenate([driver[:150] - 70, trains[3][:20]]))  # leads unit 0 by 7 ms
    trains[3] = trains[3][trains[3] >= 0]
    return SpikeTrains(trains, fs, 0.0, duration_s, np.arange(n_units))


def _peaks_from_reference(spikes, windows, bin_ms, max_lag, binary, use_abs=True):
    w0, w1 = window_samples(spikes, windows)
    width = int(round(bin_ms * spikes.sampling_frequency / 1000))
    n = spikes.num_units
    values = np.zeros((len(w0), n, n))
    lags = np.zeros((len(w0), n, n))
    order = lag_order(max_lag)
    for t in range(len(w0)):
        x = binned_matrix(spikes, int(w0[t]), int((w1[t] - w0[t]) // width), width, binary)
        defined = x.std(axis=1) > 0
        for i in range(n):
            values[t, i, i] = float(defined[i])
            for j in range(i + 1, n):
                if defined[i] and defined[j]:
                    rho = cch_coefficient(x[i], x[j], max_lag)[order + max_lag]
                    k = int(np.argmax(np.abs(rho) if use_abs else rho))
                    values[t, i, j] = values[t, j, i] = rho[k]
                    lags[t, i, j], lags[t, j, i] = order[k] * bin_ms, -order[k] * bin_ms
    return values, lags


@pytest.mark.parametrize("binary", [True, False])
def test_matches_explicit_sums(binary):
    spikes = _spikes(n_units=5, duration_s=4.0)
    windows = Windows([0.0, 1.0], [4.0, 3.0])
    values, extra = crosscorr_matrices(spikes, windows, bin_ms=1.0, max_lag_ms=8.0, binary=binary, verbose=False,
                                       dtype=np.float64)  # fmt: skip
    ref_values, ref_lags = _peaks_from_reference(spikes, windows, 1.0, 8, binary)
    np.testing.assert_allclose(values, ref_values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(extra["lags_ms"], ref_lags)


@pytest.mark.parametrize("binary, peak", [(True, "abs"), (False, "max")])
def test_matches_elephant_backend(binary, peak):
    spikes = _spikes(seed=1, n_units=6, duration_s=10.0)
    windows = sliding_windows(0.0, 10.0, 5.0, 2.5)
    fast, fast_extra = crosscorr_matrices(spikes, windows, bin_ms=2.0, max_lag_ms=10.0, binary=binary, peak=peak,
                                          verbose=False, dtype=np.float64)  # fmt: skip
    ref, ref_extra = crosscorr_matrices_elephant(spikes, windows, bin_ms=2.0, max_lag_ms=10.0, binary=binary,
                                                 peak=peak, verbose=False, dtype=np.float64)  # fmt: skip
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast_extra["lags_ms"], ref_extra["lags_ms"])


def test_elephant_cch_directly_for_a_few_pairs():
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import cross_correlation_histogram

    spikes = _spikes(seed=2)
    values, extra = crosscorr_matrices(spikes, Windows([0.0], [20.0]), bin_ms=1.0, max_lag_ms=10.0,
                                       verbose=False, dtype=np.float64)  # fmt: skip
    trains = spikes.to_neo()
    for i, j in [(0, 1), (0, 3), (4, 5), (1, 3)]:
        bi = BinnedSpikeTrain(trains[i], bin_size=1 * pq.ms)
        bj = BinnedSpikeTrain(trains[j], bin_size=1 * pq.ms)
        cch, lags = cross_correlation_histogram(bi, bj, window=[-10, 10], binary=True,
                                                cross_correlation_coefficient=True)  # fmt: skip
        assert list(lags) == list(range(-10, 11))
        rho = np.asarray(cch.magnitude).ravel()[lag_order(10) + 10]  # ties go to the smallest |lag|, then +
        k = int(np.argmax(np.abs(rho)))
        assert values[0, i, j] == pytest.approx(rho[k], abs=1e-12)
        assert extra["lags_ms"][0, i, j] == lag_order(10)[k] * 1.0


def test_planted_lags_and_antisymmetry():
    spikes = _spikes()
    conn = compute_connectivity(spikes, None, method="crosscorr", bin_ms=1.0, max_lag_ms=10.0, verbose=False)
    lags = conn.lags_ms[0]
    assert lags[0, 1] == 4.0 and lags[1, 0] == -4.0  # unit 1 follows unit 0 by 4 ms
    assert lags[0, 3] == -7.0  # unit 3 leads unit 0 by 7 ms
    assert conn.matrices[0, 0, 1] > 0.5
    np.testing.assert_array_equal(lags, -lags.T)
    np.testing.assert_array_equal(conn.matrices[0], conn.matrices[0].T)
    assert np.all(conn.matrices[0, 2] == 0) and np.all(lags[2] == 0)  # silent unit
    assert conn.params == {"bin_ms": 1.0, "max_lag_ms": 10.0, "binary": True, "peak": "abs", "backend": "fast"}


def test_zero_lag_equals_pearson():
    spikes = _spikes(seed=4)
    windows = sliding_windows(0.0, 20.0, 10.0, 5.0)
    cc, extra = crosscorr_matrices(spikes, windows, bin_ms=5.0, max_lag_ms=0.0, verbose=False, dtype=np.float64)
    r, _ = pearson_matrices(spikes, windows, bin_ms=5.0, verbose=False, dtype=np.float64)
    np.testing.assert_allclose(cc, r, rtol=0, atol=1e-12)
    assert np.all(extra["lags_ms"] == 0)


def test_tie_break_prefers_smallest_then_positive_lag():
    fs = 1000.0
    # unit 1 fires 2 ms before and 2 ms after each spike of unit 0: equal CCH at -2 and +2 bins
    a = np.arange(50, 950, 50)
    spikes = SpikeTrains([a, np.sort(np.concatenate([a - 2, a + 2]))], fs, 0.0, 1.0, np.arange(2))
    values, extra = crosscorr_matrices(spikes, Windows([0.0], [1.0]), bin_ms=1.0, max_lag_ms=5.0, verbose=False)
    assert extra["lags_ms"][0, 0, 1] == 2.0 and extra["lags_ms"][0, 1, 0] == -2.0


@pytest.mark.parametrize("kwargs, error", [
    (dict(max_lag_ms=2.5, bin_ms=1.0), ValueError),   # not a whole number of bins
    (dict(max_lag_ms=-1.0), ValueError),
    (dict(max_lag_ms=float("nan")), ValueError),
    (dict(max_lag_ms=30000.0, bin_ms=1000.0), ValueError),  # lag longer than the window
    (dict(peak="min"), ValueError),
    (dict(bin_ms=0.0), ValueError),
])  # fmt: skip
def test_bad_parameters(kwargs, error):
    spikes = _spikes()
    with pytest.raises(error):
        compute_connectivity(spikes, sliding_windows(0, 20, 10), method="crosscorr", verbose=False, **kwargs)
