"""Binned Pearson correlation: np.corrcoef, Elephant, block sharing across overlapping windows, silent units."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from spikeinterface_tavrnn.connectivity import compute_connectivity, pearson_matrices
from spikeinterface_tavrnn.connectivity.binning import window_samples
from spikeinterface_tavrnn.connectivity.pearson import _regular_blocks, pearson_matrices_elephant
from spikeinterface_tavrnn.spiketrains import SpikeTrains
from spikeinterface_tavrnn.windows import Windows, sliding_windows

from _data import shared_data_dir
from _reference import binned_matrix, read_sjemea


def _spikes(seed=0, n_units=10, duration_s=60.0, fs=20000.0) -> SpikeTrains:
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs)
    trains = [np.sort(rng.integers(0, n, rng.integers(50, 900))) for _ in range(n_units)]
    trains[1] = np.sort(np.concatenate([trains[0][::2] + 40, trains[1][:100]]))
    trains[1] = trains[1][trains[1] < n]
    trains[2] = np.array([], dtype=np.int64)
    trains[3] = np.repeat(trains[3][:200], 2)  # several spikes per bin: counts differ from binary
    return SpikeTrains(trains, fs, 0.0, duration_s, np.arange(n_units))


def _corrcoef_reference(spikes, windows, bin_ms, binary):
    w0, w1 = window_samples(spikes, windows)
    width = int(round(bin_ms * spikes.sampling_frequency / 1000))
    out = []
    for a, b in zip(w0, w1):
        x = binned_matrix(spikes, int(a), int((b - a) // width), width, binary)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(x)
        undefined = x.std(axis=1) == 0
        r[undefined, :] = 0.0
        r[:, undefined] = 0.0
        out.append(r)
    return np.array(out)


@pytest.mark.parametrize("binary", [True, False])
def test_matches_corrcoef_regular_grid(binary):
    spikes = _spikes()
    windows = sliding_windows(0.0, 60.0, 20.0, 5.0)  # blocks of 5 s shared by 4 windows each
    assert _regular_blocks(*window_samples(spikes, windows), 1000.0, spikes.num_units) is not None
    r, extra = pearson_matrices(spikes, windows, bin_ms=50.0, binary=binary, verbose=False, dtype=np.float64)
    np.testing.assert_allclose(r, _corrcoef_reference(spikes, windows, 50.0, binary), rtol=0, atol=1e-12)
    assert np.all(extra["n_bins"] == 400)


def test_matches_corrcoef_irregular_windows():
    spikes = _spikes(seed=1)
    windows = Windows([0.0, 3.3, 10.0, 40.05], [20.0, 13.3, 50.0, 60.0])
    assert _regular_blocks(*window_samples(spikes, windows), 200.0, spikes.num_units) is None
    r, _ = pearson_matrices(spikes, windows, bin_ms=10.0, verbose=False, dtype=np.float64)
    np.testing.assert_allclose(r, _corrcoef_reference(spikes, windows, 10.0, True), rtol=0, atol=1e-12)


def test_block_path_equals_per_window_path():
    spikes = _spikes(seed=2)
    windows = sliding_windows(0.0, 60.0, 12.0, 4.0)
    shared, _ = pearson_matrices(spikes, windows, bin_ms=20.0, verbose=False, dtype=np.float64)
    single = np.concatenate([pearson_matrices(spikes, windows[t], bin_ms=20.0, verbose=False, dtype=np.float64)[0]
                             for t in range(len(windows))])  # fmt: skip
    np.testing.assert_allclose(shared, single, rtol=0, atol=1e-14)


@pytest.mark.parametrize("binary", [True, False])
def test_matches_elephant(binary):
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient

    spikes = _spikes(seed=3)
    windows = sliding_windows(0.0, 60.0, 30.0, 15.0)
    fast, _ = pearson_matrices(spikes, windows, bin_ms=25.0, binary=binary, verbose=False, dtype=np.float64)
    backend, _ = pearson_matrices_elephant(spikes, windows, bin_ms=25.0, binary=binary, verbose=False,
                                           dtype=np.float64)  # fmt: skip
    np.testing.assert_allclose(fast, backend, rtol=0, atol=1e-12)
    # Elephant directly on the whole recording: NaN rows for the silent unit, equal elsewhere
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binned = BinnedSpikeTrain(spikes.to_neo(), bin_size=25 * pq.ms)
        direct = correlation_coefficient(binned, binary=binary)
    whole, _ = pearson_matrices(spikes, Windows([0.0], [60.0]), bin_ms=25.0, binary=binary, verbose=False,
                                dtype=np.float64)  # fmt: skip
    assert np.all(np.isnan(direct[2]))
    keep = np.setdiff1d(np.arange(spikes.num_units), [2])
    np.testing.assert_allclose(whole[0][np.ix_(keep, keep)], direct[np.ix_(keep, keep)], rtol=0, atol=1e-12)


def test_binary_and_counts_differ_and_default_is_binary():
    spikes = _spikes()
    conn = compute_connectivity(spikes, None, method="pearson", verbose=False)
    assert conn.params == {"bin_ms": 50.0, "binary": True, "backend": "fast"}
    counts = compute_connectivity(spikes, None, method="pearson", binary=False, verbose=False)
    assert not np.allclose(conn.matrices[0, 3], counts.matrices[0, 3])


def test_silent_and_always_active_units_are_zero():
    fs = 1000.0
    spikes = SpikeTrains([np.arange(0, 1000, 10), np.array([], dtype=np.int64), np.array([5, 305, 705])], fs, 0.0,
                         1.0, np.arange(3))  # fmt: skip
    r, _ = pearson_matrices(spikes, Windows([0.0], [1.0]), bin_ms=10.0, verbose=False)
    # unit 0 fills every 10 ms bin (constant), unit 1 is silent: both undefined -> 0, diagonal too
    np.testing.assert_array_equal(r[0, :2], 0.0)
    np.testing.assert_array_equal(r[0, :, :2], 0.0)
    assert r[0, 2, 2] == 1.0 and np.all(np.isfinite(r))


def test_partial_last_bin_warns_and_is_not_binned():
    fs = 1000.0
    spikes = SpikeTrains([np.array([10, 95, 98]), np.array([12, 96])], fs, 0.0, 0.1, np.arange(2))
    windows = Windows([0.0], [0.098])  # 98 ms: nine 10 ms bins + 8 ms not binned
    with pytest.warns(UserWarning, match="partial last bin"):
        r, extra = pearson_matrices(spikes, windows, bin_ms=10.0, verbose=False)
    assert extra["n_bins"][0] == 9
    # both units only have their first spike binned (bin 1): identical binned trains
    assert r[0, 0, 1] == pytest.approx(1.0)


def test_real_recording_matches_corrcoef():
    root = shared_data_dir()
    path = None if root is None else root / "hipsc_cultures" / "hiPSN_tc146_d21_spikes6sd.h5"
    if path is None or not path.exists():
        pytest.skip("shared real data not found")
    spikes = read_sjemea(path)
    windows = sliding_windows(0.0, 300.0, 120.0, 60.0)
    r, _ = pearson_matrices(spikes, windows, bin_ms=50.0, verbose=False, dtype=np.float64)
    np.testing.assert_allclose(r, _corrcoef_reference(spikes, windows, 50.0, True), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bin_ms, error", [(0.0, ValueError), (-5.0, ValueError), (float("nan"), ValueError),
                                           (30000.0, ValueError), (0.01, ValueError), ("50", TypeError)])  # fmt: skip
def test_bad_bins(bin_ms, error):
    spikes = _spikes()
    with pytest.raises(error):
        compute_connectivity(spikes, sliding_windows(0, 60, 20), method="pearson", bin_ms=bin_ms, verbose=False)


def test_non_integer_bin_width_matches_elephant():
    """At 32 kHz a 1.1 ms bin is 35.2 samples: binning uses float edges with Elephant's rounding tolerance."""
    rng = np.random.default_rng(5)
    fs = 32000.0
    trains = [np.sort(rng.integers(0, int(20 * fs), 300)) for _ in range(6)]
    trains[1] = np.sort(np.concatenate([trains[0][:150] + 20, trains[1][:100]]))
    spikes = SpikeTrains(trains, fs, 0.0, 20.0, np.arange(6))
    windows = sliding_windows(0.0, 20.0, 8.8, 4.4)
    fast, extra = pearson_matrices(spikes, windows, bin_ms=1.1, verbose=False, dtype=np.float64)
    ref, ref_extra = pearson_matrices_elephant(spikes, windows, bin_ms=1.1, verbose=False, dtype=np.float64)
    np.testing.assert_array_equal(extra["n_bins"], ref_extra["n_bins"])
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    assert fast[0, 0, 1] > 0.3
