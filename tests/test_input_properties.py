"""Property-based tests: adapters, windows and connectivity on random and adversarial inputs.

Every input either gives a result that satisfies the stated property (checked against an independent
computation) or is refused with a TavrnnInputError; no other exception, no silent change of the user's data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _reference import sttc_reference_matrices
from spikeinterface_tavrnn import SpikeTrains, TavrnnInputError, Windows, compute_connectivity, sliding_windows
from spikeinterface_tavrnn.connectivity.sttc import dt_to_samples

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Adversarial floats: ordinary times, exact sample points, NaN, inf, negatives, values past the int64 grid.
spike_time = st.one_of(
    st.floats(0.0, 20.0, allow_nan=False),
    st.integers(0, 2000).map(lambda k: k / 100.0),
    st.sampled_from([np.nan, np.inf, -np.inf, -1e-3, 1e14, 1e300, 0.0]),
)
train = st.lists(spike_time, min_size=0, max_size=12)


@FAST
@given(trains=st.lists(train, min_size=1, max_size=5), fs=st.sampled_from([100.0, 1000.0, 30000.0]))
def test_from_arrays_keeps_every_spike_or_refuses(trains, fs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spikes = SpikeTrains.from_arrays([np.array(t, dtype=float) for t in trains], sampling_frequency=fs)
        except TavrnnInputError as error:
            assert "\n" not in str(error)
            flat = np.concatenate([np.array(t, dtype=float) for t in trains])
            # Refused only for a reason the input really has.
            assert (
                flat.size == 0
                or not np.all(np.isfinite(flat))
                or flat.min() < 0
                or flat.max() * fs > 2**53
            )
            return
    assert spikes.num_units == len(trains)
    for samples, times in zip(spikes.spike_samples, trains):
        expected = np.sort(np.rint(np.array(times, dtype=float) * fs).astype(np.int64))
        np.testing.assert_array_equal(samples, expected)  # nothing dropped, nothing moved but to the grid
        assert samples.size == 0 or (samples[0] >= spikes.t_start_sample and samples[-1] <= spikes.t_stop_sample)


@FAST
@given(n_trains=st.integers(1, 6), n_ids=st.integers(0, 6))
def test_from_arrays_never_pairs_ids_and_trains_by_truncation(n_trains, n_ids):
    trains = [np.array([0.1 * (i + 1)]) for i in range(n_trains)]
    ids = [f"u{i}" for i in range(n_ids)]
    if n_trains == n_ids:
        assert SpikeTrains.from_arrays(trains, unit_ids=ids, t_stop=1.0).unit_ids.tolist() == ids
    else:
        with pytest.raises(TavrnnInputError, match="unit ids"):
            SpikeTrains.from_arrays(trains, unit_ids=ids, t_stop=1.0)


number = st.one_of(
    st.floats(-10.0, 1000.0, allow_nan=False),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e-12, 1e12]),
)


@FAST
@given(t_start=number, t_stop=number, size_s=number, step_s=st.one_of(st.none(), number))
@example(t_start=0.0, t_stop=1.0, size_s=2.225073858507203e-309, step_s=None)  # subnormal: the count overflowed
@example(t_start=-10.0, t_stop=1e12, size_s=1e12, step_s=None)
@example(t_start=0.0, t_stop=1e12, size_s=2.0, step_s=1e12)  # a second window of 0 s was made
@example(t_start=0.0, t_stop=9.715148139107806e-79, size_s=1e-12, step_s=3.115246632660293e-248)
def test_sliding_windows_cover_the_span_or_refuse(t_start, t_stop, size_s, step_s):
    try:
        windows = sliding_windows(t_start, t_stop, size_s, step_s)
    except TavrnnInputError as error:
        assert "\n" not in str(error)
        return
    step = size_s if step_s is None else step_s
    # Absolute slack of a few float64 ulps of the largest time involved (spans up to 1e12 s are drawn).
    slack_s = 1e-9 + 1e-14 * max(abs(t_start), abs(t_stop))
    assert np.all(windows.starts >= t_start - slack_s) and np.all(windows.stops <= t_stop + slack_s)
    np.testing.assert_allclose(windows.durations_s, size_s, rtol=1e-9, atol=max(1e-6, slack_s))
    np.testing.assert_allclose(np.diff(windows.starts), step, rtol=1e-9, atol=max(1e-6, slack_s))
    # No room for one more window after the last.
    assert windows.starts[-1] + step + size_s > t_stop - max(1e-6, slack_s)


@FAST
@given(starts=st.lists(number, min_size=0, max_size=4), stops=st.lists(number, min_size=0, max_size=4))
def test_windows_from_bounds_are_valid_or_refused(starts, stops):
    try:
        windows = Windows(starts, stops)
    except TavrnnInputError:
        return
    assert len(windows) == len(starts) == len(stops) > 0
    assert np.all(np.isfinite(windows.starts)) and np.all(windows.stops > windows.starts)


# Small recordings on a 1 kHz grid, with adversarial structure: empty units, shared spikes, spikes on window edges.
sample_train = st.lists(st.integers(0, 2000), min_size=0, max_size=30).map(lambda s: np.array(sorted(s), dtype=float))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trains=st.lists(sample_train, min_size=2, max_size=5),
    size_samples=st.sampled_from([500, 1000, 2000]),
    dt_ms=st.sampled_from([1.0, 5.0, 20.0]),
)
def test_sttc_matches_the_reference_on_adversarial_trains(trains, size_samples, dt_ms):
    fs = 1000.0
    spikes = SpikeTrains.from_arrays(
        [t / fs for t in trains], t_start=0.0, t_stop=2.0, sampling_frequency=fs, duplicates="keep"
    )
    windows = sliding_windows(0.0, 2.0, size_samples / fs, size_samples / fs / 2)
    conn = compute_connectivity(spikes, windows, method="sttc", dt_ms=dt_ms, verbose=False)
    matrices = conn.matrices
    assert np.all(np.isfinite(matrices)) and np.all(np.abs(matrices) <= 1.0 + 1e-6)
    np.testing.assert_allclose(matrices, np.transpose(matrices, (0, 2, 1)))
    w0 = np.rint(windows.starts * fs).astype(np.int64)
    w1 = np.rint(windows.stops * fs).astype(np.int64)
    reference = sttc_reference_matrices(spikes, w0, w1, dt_to_samples(dt_ms, fs))
    off_diagonal = ~np.eye(spikes.num_units, dtype=bool)
    np.testing.assert_allclose(matrices[:, off_diagonal], reference[:, off_diagonal], atol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trains=st.lists(sample_train, min_size=2, max_size=4), method=st.sampled_from(["pearson", "crosscorr"]))
def test_binned_measures_are_bounded_and_symmetric(trains, method):
    spikes = SpikeTrains.from_arrays(
        [t / 1000.0 for t in trains], t_start=0.0, t_stop=2.0, sampling_frequency=1000.0, duplicates="keep"
    )
    params = {"bin_ms": 10.0} if method == "pearson" else {"bin_ms": 5.0, "max_lag_ms": 20.0}
    conn = compute_connectivity(spikes, sliding_windows(0.0, 2.0, 1.0, 0.5), method=method, verbose=False, **params)
    assert np.all(np.isfinite(conn.matrices)) and np.all(np.abs(conn.matrices) <= 1.0 + 1e-5)
    np.testing.assert_allclose(conn.matrices, np.transpose(conn.matrices, (0, 2, 1)), atol=1e-6)
