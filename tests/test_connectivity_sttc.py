"""STTC: exactness against brute force (synthetic and real MEA recordings), Elephant, shift invariance, bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from spikeinterface_tavrnn.connectivity import compute_connectivity, sttc_matrices
from spikeinterface_tavrnn.connectivity.binning import regular_grid, window_samples
from spikeinterface_tavrnn.spiketrains import SpikeTrains
from spikeinterface_tavrnn.windows import Windows, sliding_windows

from _data import shared_data_dir
from _reference import read_sjemea, sttc_pair_loops, sttc_reference_matrices

HIPSC_FILES = ["hiPSN_tc146_d21_spikes6sd.h5", "hiPSN_tc151_d28_spikes6sd.h5"]


def _hipsc(name: str, sampling_frequency: float = 25000.0) -> SpikeTrains:
    root = shared_data_dir()
    if root is None or not (root / "hipsc_cultures" / name).exists():
        pytest.skip("shared real data not found (set TAVRNN_SHARED_DATA)")
    return read_sjemea(root / "hipsc_cultures" / name, sampling_frequency)


def _synthetic(seed=0, n_units=9, duration_s=8.0, fs=10000.0, grid=1, t0=0.0) -> SpikeTrains:
    """Poisson-like trains, a correlated pair, a silent unit, a burst; times on a grid of `grid` samples."""
    rng = np.random.default_rng(seed)
    n_samples = int(duration_s * fs)
    trains = [np.unique(rng.integers(0, n_samples // grid, rng.integers(5, 120))) * grid for _ in range(n_units)]
    trains[1] = np.unique(np.concatenate([trains[0] + 3 * grid, trains[1]]))  # coincident with unit 0
    trains[1] = trains[1][trains[1] < n_samples]
    trains[2] = np.array([], dtype=np.int64)  # silent
    trains[3] = np.arange(99, 99 + 40 * grid * 30, 30 * grid)  # regular burst
    start = int(round(t0 * fs))
    return SpikeTrains([t + start for t in trains], fs, t0, t0 + duration_s, np.arange(n_units))


def test_docstring_example_value():
    spikes = SpikeTrains.from_arrays([np.array([0.100, 0.500]), np.array([0.102, 0.900])], t_start=0.0,
                                     t_stop=1.0, sampling_frequency=1000.0)  # fmt: skip
    m, extra = sttc_matrices(spikes, sliding_windows(0.0, 1.0, 1.0), dt_ms=5.0, verbose=False, dtype=np.float64)
    # P_A = P_B = 1/2, T_A = T_B = 20 / 1000
    assert m[0, 0, 1] == pytest.approx(0.5 * 2 * (0.5 - 0.02) / (1 - 0.5 * 0.02), abs=1e-15)
    assert extra["dt_samples"] == 5


def test_reference_implementations_agree():
    spikes = _synthetic(seed=3, n_units=5)
    w0, w1 = 0, int(8.0 * spikes.sampling_frequency)
    ref = sttc_reference_matrices(spikes, np.array([w0]), np.array([w1]), 50)
    for i in range(5):
        for j in range(i + 1, 5):
            loops = sttc_pair_loops(spikes.spike_samples[i].tolist(), spikes.spike_samples[j].tolist(), 50, w0, w1)
            assert (0.0 if np.isnan(loops) else loops) == pytest.approx(ref[0, i, j], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_synthetic(seed):
    spikes = _synthetic(seed=seed)
    windows = Windows([0.0, 1.3, 2.0, 0.0005, 7.9], [8.0, 5.3, 4.0, 0.2, 8.0])  # overlapping, odd, short
    m, _ = sttc_matrices(spikes, windows, dt_ms=5.0, verbose=False, dtype=np.float64)
    w0, w1 = window_samples(spikes, windows)
    ref = sttc_reference_matrices(spikes, w0, w1, 50)
    np.testing.assert_allclose(m, ref, rtol=0, atol=1e-12)
    assert np.array_equal(m, np.swapaxes(m, 1, 2))


def test_coincidence_interval_is_closed_in_samples():
    fs = 1000.0
    a = np.array([100, 300]), np.array([105, 306])  # 5 samples apart: counted; 6: not
    spikes = SpikeTrains(list(a), fs, 0.0, 1.0, np.arange(2))
    m, _ = sttc_matrices(spikes, Windows([0.0], [1.0]), dt_ms=5.0, verbose=False, dtype=np.float64)
    ref = sttc_pair_loops([100, 300], [105, 306], 5, 0, 1000)
    assert m[0, 0, 1] == pytest.approx(ref, abs=1e-15)
    # P_A = 1/2 (100~105), T = 20/1000 each
    assert m[0, 0, 1] == pytest.approx((0.5 - 0.02) / (1 - 0.01), abs=1e-15)


def test_silent_units_and_diagonal():
    spikes = _synthetic()
    windows = Windows([0.0, 7.99], [8.0, 8.0])  # the second window is nearly empty
    m, _ = sttc_matrices(spikes, windows, verbose=False, dtype=np.float64)
    assert np.all(m[:, 2, :] == 0) and np.all(m[:, :, 2] == 0)  # unit 2 never fires: row, column, diagonal 0
    counts = np.array([[((s >= w * 10000) & (s < e * 10000)).sum() for s in spikes.spike_samples]
                       for w, e in zip(windows.starts, windows.stops)])  # fmt: skip
    np.testing.assert_array_equal(np.diagonal(m, axis1=1, axis2=2), (counts > 0).astype(float))
    assert np.all(np.isfinite(m))


def test_full_tiling_zero_over_zero_is_one():
    # every sample of the window is within dt of unit 0's spikes (T_A = 1) and unit 1's spikes are all tiled
    fs = 1000.0
    a = np.arange(0, 1000, 8)
    spikes = SpikeTrains([a, np.array([50, 500])], fs, 0.0, 1.0, np.arange(2))
    m, _ = sttc_matrices(spikes, Windows([0.0], [1.0]), dt_ms=5.0, verbose=False, dtype=np.float64)
    ref = sttc_pair_loops(a.tolist(), [50, 500], 5, 0, 1000)
    assert m[0, 0, 1] == pytest.approx(ref, abs=1e-15)
    assert np.isfinite(m).all()


@pytest.mark.parametrize("name", HIPSC_FILES)
def test_matches_brute_force_on_real_recordings(name):
    spikes = _hipsc(name)
    windows = sliding_windows(0.0, 300.0, 60.0, 30.0)
    m, extra = sttc_matrices(spikes, windows, dt_ms=5.0, verbose=False, dtype=np.float64)
    w0, w1 = window_samples(spikes, windows)
    ref = sttc_reference_matrices(spikes, w0, w1, extra["dt_samples"])
    assert np.abs(ref).max() > 0.3  # real correlations, not a trivially empty case
    np.testing.assert_allclose(m, ref, rtol=0, atol=1e-9)


def test_public_float32_matches_reference():
    spikes = _synthetic(seed=5)
    windows = sliding_windows(0.0, 8.0, 4.0, 2.0)
    conn = compute_connectivity(spikes, windows, method="sttc", dt_ms=5.0, verbose=False)
    w0, w1 = window_samples(spikes, windows)
    assert conn.matrices.dtype == np.float32
    np.testing.assert_allclose(conn.matrices, sttc_reference_matrices(spikes, w0, w1, 50), atol=1e-6)
    assert conn.params == {"dt_ms": 5.0, "backend": "fast"}


def test_matches_elephant_near_time_zero():
    """Spikes on a 3-sample grid, dt = 50 samples: no pair is within Elephant's drift of dt, so Elephant is right."""
    from elephant.spike_train_correlation import spike_time_tiling_coefficient

    spikes = _synthetic(seed=2, n_units=7, duration_s=4.0, grid=3)
    windows = Windows([0.0, 1.0], [4.0, 3.0])
    fast, _ = sttc_matrices(spikes, windows, dt_ms=5.0, verbose=False, dtype=np.float64)
    conn = compute_connectivity(spikes, windows, method="sttc", backend="elephant", dt_ms=5.0, verbose=False)
    np.testing.assert_allclose(conn.matrices, fast, atol=1e-6)  # float32 public output
    # and Elephant's own function called directly, in float64
    trains = spikes.to_neo()
    for i, j in [(0, 1), (0, 3), (4, 5), (1, 6)]:
        direct = spike_time_tiling_coefficient(trains[i], trains[j], dt=0.005 * pq_s())
        assert direct == pytest.approx(fast[0, i, j], abs=1e-12)


def pq_s():
    import quantities as pq

    return pq.s


def test_elephant_backend_float64_matches_exactly():
    from spikeinterface_tavrnn.connectivity import sttc_matrices_elephant

    spikes = _synthetic(seed=4, n_units=6, duration_s=4.0, grid=3)
    windows = sliding_windows(0.0, 4.0, 2.0, 1.0)
    fast, _ = sttc_matrices(spikes, windows, verbose=False, dtype=np.float64)
    ref, _ = sttc_matrices_elephant(spikes, windows, verbose=False, dtype=np.float64)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


def test_matches_elephant_without_relative_tolerance_on_real_data(monkeypatch):
    """With np.isclose's rtol set to 0, Elephant equals the exact definition on a real recording.

    At 50 kHz the recording's 40 us grid falls on even samples and dt = 5.02 ms = 251 samples is odd, so no
    spike pair is exactly dt apart (where float rounding decides).
    """
    import quantities as pq
    from elephant import spike_train_correlation as stc

    spikes = _hipsc(HIPSC_FILES[0], sampling_frequency=50000.0)
    active = np.argsort(spikes.spike_counts)[::-1][:8]
    spikes = spikes.select_units(spikes.unit_ids[np.sort(active)].tolist())
    windows = Windows([120.0], [180.0])
    fast, extra = sttc_matrices(spikes, windows, dt_ms=5.02, verbose=False, dtype=np.float64)
    assert extra["dt_samples"] == 251
    monkeypatch.setattr(np, "isclose", functools.partial(np.isclose, rtol=0.0))
    trains = [t.time_slice(120.0 * pq.s, 180.0 * pq.s) for t in spikes.to_neo()]
    for i in range(len(trains)):
        for j in range(i + 1, len(trains)):
            value = stc.spike_time_tiling_coefficient(trains[i], trains[j], dt=5.02 * pq.ms)
            assert value == pytest.approx(fast[0, i, j], abs=1e-12), (i, j)


def test_shift_invariance_and_elephant_drift():
    """Shifting all times by +1000 s leaves the exact STTC unchanged; Elephant's value drifts."""
    import quantities as pq
    from elephant.spike_train_correlation import spike_time_tiling_coefficient

    spikes = _synthetic(seed=6, n_units=5, duration_s=4.0, grid=3)
    shifted = SpikeTrains([s + 10_000_000 for s in spikes.spike_samples], spikes.sampling_frequency, 1000.0,
                          1004.0, spikes.unit_ids)  # fmt: skip
    m0, _ = sttc_matrices(spikes, Windows([0.0], [4.0]), verbose=False, dtype=np.float64)
    m1, _ = sttc_matrices(shifted, Windows([1000.0], [1004.0]), verbose=False, dtype=np.float64)
    np.testing.assert_array_equal(m0, m1)
    near, far = spikes.to_neo(), shifted.to_neo()
    drift = [abs(spike_time_tiling_coefficient(far[i], far[j], dt=5 * pq.ms)
                 - spike_time_tiling_coefficient(near[i], near[j], dt=5 * pq.ms))
             for i, j in [(0, 3), (0, 4), (3, 4), (1, 4)]]  # fmt: skip
    assert max(drift) > 0.05  # Elephant's window grew by 1e-5 * 1000 s = 10 ms


@pytest.mark.parametrize("dt_ms, start, size, step", [(5.0, 0.0, 1.0, 0.25), (60.0, 0.35, 1.5, 0.6),
                                                      (300.0, 1.0, 2.0, 1.0)])  # fmt: skip
def test_shared_blocks_equal_one_window_at_a_time(dt_ms, start, size, step):
    """Sliding windows share per-block counts and correct their edges; it must equal each window on its own."""
    spikes = _synthetic(seed=7, n_units=11)
    windows = sliding_windows(start, 8.0, size, step)
    assert regular_grid(*window_samples(spikes, windows)) is not None
    all_at_once, _ = sttc_matrices(spikes, windows, dt_ms=dt_ms, verbose=False, dtype=np.float64)
    one_by_one = np.concatenate([sttc_matrices(spikes, windows[t], dt_ms=dt_ms, verbose=False, dtype=np.float64)[0]
                                 for t in range(len(windows))])  # fmt: skip
    np.testing.assert_array_equal(all_at_once, one_by_one)
    w0, w1 = window_samples(spikes, windows)
    ref = sttc_reference_matrices(spikes, w0, w1, int(round(dt_ms * 10)))
    np.testing.assert_allclose(all_at_once, ref, rtol=0, atol=1e-12)


def test_whole_recording_when_windows_none():
    spikes = _synthetic()
    conn = compute_connectivity(spikes, None, verbose=False)
    assert len(conn) == 1 and conn.windows.starts[0] == 0.0 and conn.windows.stops[0] == 8.0


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "dt_ms, error",
    [(float("nan"), ValueError), (-1.0, ValueError), (0.0, ValueError), (0.01, ValueError), ("5", TypeError),
     (None, TypeError), (9000.0, ValueError)],
)  # fmt: skip
def test_bad_dt(dt_ms, error):
    spikes = _synthetic()
    with pytest.raises(error):
        compute_connectivity(spikes, sliding_windows(0, 8, 4), dt_ms=dt_ms, verbose=False)


def test_dt_rounding_warns():
    spikes = _synthetic()  # 10 kHz: 5.04 ms is 50.4 samples
    with pytest.warns(UserWarning, match="not a whole number of samples"):
        compute_connectivity(spikes, None, dt_ms=5.04, verbose=False)


def test_windows_outside_recording():
    spikes = _synthetic()
    with pytest.raises(ValueError, match="outside the recording"):
        compute_connectivity(spikes, Windows([6.0], [9.0]), verbose=False)


def test_unknown_parameter_and_method():
    spikes = _synthetic()
    with pytest.raises(TypeError, match="Unknown parameter"):
        compute_connectivity(spikes, None, method="sttc", bin_ms=5, verbose=False)
    with pytest.raises(ValueError, match="Unknown connectivity method"):
        compute_connectivity(spikes, None, method="granger", verbose=False)
    with pytest.raises(ValueError, match="backend"):
        compute_connectivity(spikes, None, backend="gpu", verbose=False)
    with pytest.raises(TypeError, match="spikes must be"):
        compute_connectivity([np.array([0.1])], None, verbose=False)
