"""Bad input ends in one clear TavrnnInputError or a warning and a right result: never silence, a hang or a traceback.

Each case here failed before (silently wrong, ran for hours, or raised an internal error) and is pinned here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from spikeinterface_tavrnn import SpikeTrains, TavrnnInputError, compute_connectivity, sliding_windows
from spikeinterface_tavrnn import sanity


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and len(message) < 600
    return message


def _recording(n_units: int = 8, duration_s: float = 600.0, rate_hz: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    """Poisson trains with a 2 ms refractory period, as real units have."""
    rng = np.random.default_rng(seed)
    trains = []
    for _ in range(n_units):
        times = np.cumsum(0.002 + rng.exponential(1.0 / rate_hz, int(2 * rate_hz * duration_s) + 10))
        trains.append(times[times < duration_s])
    return trains


# ---------------------------------------------------------------- from_arrays: ambiguous shapes and values
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(spike_times_s=[np.array([0.1]), np.array([0.2]), np.array([0.3])], unit_ids=["x", "y"]), "3 spike trains but 2 unit ids"),
        (dict(spike_times_s=[np.array([0.1])], unit_ids=["x", "y"]), "1 spike trains but 2 unit ids"),
        (dict(spike_times_s=np.array([0.1, 0.2, 0.3])), "flat array of 3 numbers"),
        (dict(spike_times_s=[0.1, 0.2, 0.3]), "flat list of 3 numbers"),
        (dict(spike_times_s=np.array([[0.1, 0.2], [0.3, 0.4]])), "2-D array"),
        (dict(spike_times_s=[np.array([[0.1, 0.2], [0.3, 0.4]])]), "must be a 1-D array"),
        (dict(spike_times_s=[np.array([0.1, np.nan])]), "NaN or infinite"),
        (dict(spike_times_s=[np.array([0.1, np.inf])]), "NaN or infinite"),
        (dict(spike_times_s=[np.array([0.1, 1e14])]), "does not fit the sample grid"),
        (dict(spike_times_s=[np.array([0.1])], t_stop=1e14), "does not fit the sample grid"),
        (dict(spike_times_s=[np.array(["a", "b"])]), "numbers of seconds"),
        (dict(spike_times_s=[np.array([0.1])], t_stop=np.nan), "finite"),
        (dict(spike_times_s=[np.array([0.1])], sampling_frequency=0.0), "positive number of Hz"),
        (dict(spike_times_s={"a": [0.1]}, unit_ids=["b"]), "keys of the spike-times dict"),
        (dict(spike_times_s="0.1 0.2"), "list of per-unit arrays"),
    ],
)
def test_from_arrays_refuses_ambiguous_input(kwargs, message):
    with pytest.raises(TavrnnInputError, match=message) as error:
        SpikeTrains.from_arrays(**kwargs)
    _one_line(error)


def test_from_arrays_takes_a_dict_of_unit_times():
    spikes = SpikeTrains.from_arrays({"a": [0.1, 0.2], "b": np.array([0.3])}, t_stop=1.0, sampling_frequency=1000.0)
    assert spikes.unit_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(spikes.spike_samples[0], [100, 200])


def test_from_arrays_sorts_unsorted_times_and_names_the_unit():
    with pytest.warns(UserWarning, match=r"Unit 'b': 2 spike times are out of order; they were sorted"):
        spikes = SpikeTrains.from_arrays(
            [[0.1, 0.2], [0.5, 0.3, 0.4, 0.1]], unit_ids=["a", "b"], t_stop=1.0, sampling_frequency=1000.0
        )
    np.testing.assert_array_equal(spikes.spike_samples[1], [100, 300, 400, 500])


def test_from_arrays_accepts_object_array_of_trains():
    trains = np.empty(2, dtype=object)
    trains[0], trains[1] = np.array([0.1]), np.array([0.2, 0.3])
    spikes = SpikeTrains.from_arrays(trains, t_stop=1.0)
    assert spikes.spike_counts.tolist() == [1, 2]


# ---------------------------------------------------------------- sanity checks before connectivity
def test_one_spike_far_beyond_the_others_is_refused_before_any_work():
    times = _recording()
    times[3] = np.append(times[3], 1e6)  # a corrupt spike at +1e6 s on a 10-minute recording
    spikes = SpikeTrains.from_arrays(times, unit_ids=[f"u{i}" for i in range(8)], sampling_frequency=10000.0)
    windows = sliding_windows(spikes.t_start_s, spikes.t_stop_s, 120, 60)
    assert len(windows) > 16_000
    with pytest.raises(TavrnnInputError, match=r"Unit 'u3' has a spike at 1e\+06 s") as error:
        compute_connectivity(spikes, windows, verbose=False)
    assert "check_spike_times=False" in _one_line(error)


def test_flipped_exponent_bit_is_refused():
    times = _recording()
    value = np.array([times[0][-1]])
    value.view(np.uint64)[0] ^= np.uint64(1) << np.uint64(56)  # one bit of the exponent
    assert value[0] > 1e6
    times[0] = np.sort(np.append(times[0][:-1], value))
    with pytest.raises(TavrnnInputError, match="Unit 0 has a spike at"):
        sanity.check_spike_times(SpikeTrains.from_arrays(times))


def test_times_in_milliseconds_are_refused():
    times = [t * 1000.0 for t in _recording(duration_s=600.0)]
    spikes = SpikeTrains.from_arrays(times, sampling_frequency=1000.0)
    with pytest.raises(TavrnnInputError, match="look like milliseconds.*Divide the times by 1000") as error:
        compute_connectivity(spikes, sliding_windows(spikes.t_start_s, spikes.t_stop_s, 120_000, 60_000), verbose=False)
    _one_line(error)


def test_a_span_of_days_for_a_few_thousand_spikes_is_refused():
    rng = np.random.default_rng(2)
    times = [np.sort(rng.uniform(0, 5 * 86_400, 500)) for _ in range(4)]
    times[0][1] = times[0][0] + 0.003  # one close pair: these are not milliseconds
    with pytest.raises(TavrnnInputError, match=r"2000 spikes span 5.0 days"):
        sanity.check_spike_times(SpikeTrains.from_arrays(times))


def test_mostly_empty_windows_are_refused_before_connectivity():
    spikes = SpikeTrains.from_arrays(_recording(duration_s=60.0), t_stop=6000.0)
    windows = sliding_windows(0, 6000, 10, 10)
    with pytest.raises(TavrnnInputError, match="600 windows, 594 of them without a spike"):
        compute_connectivity(spikes, windows, verbose=False)


def test_check_spike_times_false_overrides():
    times = _recording(n_units=3, duration_s=60.0)
    times[0] = np.append(times[0], 5000.0)
    spikes = SpikeTrains.from_arrays(times, sampling_frequency=1000.0)
    with pytest.raises(TavrnnInputError):
        compute_connectivity(spikes, None, verbose=False)
    conn = compute_connectivity(spikes, None, verbose=False, check_spike_times=False)
    assert conn.matrices.shape == (1, 3, 3)


def test_plausible_recordings_pass_the_checks():
    for seed, (duration_s, rate_hz) in enumerate([(600.0, 4.0), (7200.0, 0.5), (30.0, 20.0)]):
        spikes = SpikeTrains.from_arrays(_recording(duration_s=duration_s, rate_hz=rate_hz, seed=seed))
        sanity.check_spike_times(spikes)
        sanity.check_window_occupancy(spikes, sliding_windows(spikes.t_start_s, spikes.t_stop_s, 1.0, 1.0))


# ---------------------------------------------------------------- from_sorting: span and segments
def test_from_sorting_warns_when_the_span_is_inferred_from_the_last_spike():
    import spikeinterface.core as sc

    sorting = sc.generate_sorting(num_units=4, durations=[30.0], seed=0)
    with pytest.warns(UserWarning, match="inferred from the last spike"):
        spikes = SpikeTrains.from_sorting(sorting)
    assert spikes.t_stop_s <= 30.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SpikeTrains.from_sorting(sorting, t_stop=30.0).t_stop_s == 30.0


def test_readme_script_path_and_analyzer_path_give_the_same_windows():
    import spikeinterface.core as sc

    from spikeinterface_tavrnn import create_analyzer_from_spikes

    recording, sorting = sc.generate_ground_truth_recording(durations=[300.0], num_units=4, seed=0)
    sorting.register_recording(recording)
    analyzer = create_analyzer_from_spikes(sorting)
    analyzer.compute("functional_connectivity", method="sttc", window_s=120, step_s=60, dt_ms=5, density=0.1)
    extension_windows = analyzer.get_extension("functional_connectivity").get_windows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spikes = SpikeTrains.from_sorting(sorting)  # README quick start 2
    windows = sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=120, step_s=60)
    assert len(windows) == 4
    np.testing.assert_allclose(windows.starts, np.asarray(extension_windows.starts))
    np.testing.assert_allclose(windows.stops, np.asarray(extension_windows.stops))


def test_multi_segment_sortings():
    import spikeinterface.core as sc

    sorting = sc.generate_sorting(num_units=3, durations=[20.0, 5.0], seed=1)
    with pytest.warns(UserWarning, match="2 segments; only segment 0 is used"):
        first = SpikeTrains.from_sorting(sorting, t_stop=20.0)
    assert first.metadata["segment_index"] == 0
    every = SpikeTrains.from_sorting(sorting, segment_index="all", t_stop=20.0)
    assert [s.metadata["segment_index"] for s in every] == [0, 1]
    for segment, spikes in enumerate(every):
        for i, unit_id in enumerate(sorting.unit_ids):
            np.testing.assert_array_equal(spikes.spike_samples[i], sorting.get_unit_spike_train(unit_id, segment))
    for bad in (2, -1, "first", 1.5):
        with pytest.raises(TavrnnInputError, match="from 0 to 1"):
            SpikeTrains.from_sorting(sorting, segment_index=bad, t_stop=20.0)


def test_one_segment_sorting_out_of_range_is_a_clear_error():
    import spikeinterface.core as sc

    sorting = sc.generate_sorting(num_units=3, durations=[10.0], seed=1)
    with pytest.raises(TavrnnInputError, match=r"1 segment\(s\); give an integer from 0 to 0"):
        SpikeTrains.from_sorting(sorting, segment_index=1, t_stop=10.0)


def test_analyzer_without_a_known_span_warns_like_the_script_path():
    import spikeinterface.core as sc

    from spikeinterface_tavrnn import create_analyzer_from_spikes

    sorting = sc.generate_sorting(num_units=3, durations=[30.0], seed=0)
    with pytest.warns(UserWarning, match="inferred from the last spike"):
        analyzer = create_analyzer_from_spikes(sorting)
    with pytest.warns(UserWarning, match="inferred from the last spike"):
        script = SpikeTrains.from_sorting(sorting)
    assert SpikeTrains.from_sorting(analyzer).t_stop_s == pytest.approx(script.t_stop_s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyzer = create_analyzer_from_spikes(sorting, durations_s=[30.0])
    assert SpikeTrains.from_sorting(analyzer).t_stop_s == 30.0
