"""SpikeTrains adapters: SpikeInterface sortings and analyzers, Neo, plain arrays, and bad input."""

import warnings

import numpy as np
import pytest

from spikeinterface_tavrnn.spiketrains import DEFAULT_SAMPLING_FREQUENCY_HZ, SpikeTrains


def test_from_sorting_matches_spikeinterface_per_unit():
    import spikeinterface.core as sc

    sorting = sc.generate_sorting(num_units=6, durations=[20.0, 5.0], seed=3)
    for segment in range(2):
        spikes = SpikeTrains.from_sorting(sorting, segment_index=segment)
        assert spikes.sampling_frequency == sorting.sampling_frequency
        assert list(spikes.unit_ids) == list(sorting.unit_ids)
        for i, unit_id in enumerate(sorting.unit_ids):
            np.testing.assert_array_equal(spikes.spike_samples[i], sorting.get_unit_spike_train(unit_id, segment))


def test_from_sorting_uses_recording_duration_and_properties():
    import spikeinterface.core as sc

    recording, sorting = sc.generate_ground_truth_recording(durations=[12.0], num_units=4, seed=0)
    sorting.register_recording(recording)
    sorting.set_property("region", np.array(["CA1", "CA1", "CA3", "CA3"]))
    sorting.set_property("location", np.arange(8, dtype=float).reshape(4, 2))
    spikes = SpikeTrains.from_sorting(sorting)
    assert spikes.t_stop_s == pytest.approx(12.0)
    assert list(spikes.unit_labels) == ["CA1", "CA1", "CA3", "CA3"]
    np.testing.assert_array_equal(spikes.unit_locations_um, np.arange(8).reshape(4, 2))

    analyzer = sc.create_sorting_analyzer(sorting, recording, sparse=False)
    analyzer.compute(["random_spikes", "templates", "unit_locations"])
    from_analyzer = SpikeTrains.from_sorting(analyzer, label_property=None)
    assert from_analyzer.t_stop_s == pytest.approx(12.0)
    assert from_analyzer.unit_labels is None
    np.testing.assert_allclose(from_analyzer.unit_locations_um, analyzer.get_extension("unit_locations").get_data())


def test_from_sorting_reads_duration_annotation_and_rejects_missing_property():
    import spikeinterface.core as sc

    sorting = sc.NumpySorting.from_samples_and_labels([np.array([10, 20, 30])], [np.array([0, 1, 0])], 1000.0)
    sorting.annotate(t_start_s=0.0, t_stop_s=60.0)
    spikes = SpikeTrains.from_sorting(sorting)
    assert (spikes.t_start_s, spikes.t_stop_s) == (0.0, 60.0)
    with pytest.raises(KeyError, match="no property 'region'"):
        SpikeTrains.from_sorting(sorting, label_property="region")


def test_neo_round_trip_keeps_times_and_units():
    import neo
    import quantities as pq

    trains = [
        neo.SpikeTrain([1.0, 250.5, 900.25] * pq.ms, t_start=0 * pq.s, t_stop=2 * pq.s, name="u1"),
        neo.SpikeTrain([0.1, 1.2] * pq.s, t_start=0 * pq.s, t_stop=2 * pq.s, name="u2"),
    ]
    block = neo.Block()
    segment = neo.Segment()
    segment.spiketrains.extend(trains)
    block.segments.append(segment)
    for obj in (block, segment, trains):
        spikes = SpikeTrains.from_neo(obj)
        assert list(spikes.unit_ids) == ["u1", "u2"]
        assert spikes.sampling_frequency == DEFAULT_SAMPLING_FREQUENCY_HZ
        np.testing.assert_allclose(spikes.spike_times_s(0), [0.001, 0.2505, 0.90025])
        assert spikes.t_stop_s == 2.0
    back = SpikeTrains.from_neo(spikes.to_neo())
    for a, b in zip(back.spike_samples, spikes.spike_samples):
        np.testing.assert_array_equal(a, b)


def test_neo_rounds_to_nearest_sample_not_down():
    import neo
    import quantities as pq

    train = neo.SpikeTrain([0.99999, 2.00001] * pq.ms, t_stop=1 * pq.s, sampling_rate=1 * pq.kHz)
    spikes = SpikeTrains.from_neo([train])
    np.testing.assert_array_equal(spikes.spike_samples[0], [1, 2])


def test_neo_rejects_mixed_sampling_rates_and_multi_segment_blocks():
    import neo
    import quantities as pq

    a = neo.SpikeTrain([0.1] * pq.s, t_stop=1 * pq.s, sampling_rate=20 * pq.kHz)
    b = neo.SpikeTrain([0.2] * pq.s, t_stop=1 * pq.s, sampling_rate=25 * pq.kHz)
    with pytest.raises(ValueError, match="different sampling rates"):
        SpikeTrains.from_neo([a, b])
    assert SpikeTrains.from_neo([a, b], sampling_frequency=50_000).sampling_frequency == 50_000
    block = neo.Block()
    block.segments.extend([neo.Segment(), neo.Segment()])
    with pytest.raises(ValueError, match="2 segments"):
        SpikeTrains.from_neo(block)


def test_to_sorting_round_trip():
    spikes = SpikeTrains.from_arrays(
        [np.array([0.5, 1.5]), np.array([]), np.array([0.25])], unit_ids=["a", "b", "c"], t_stop=3.0,
        sampling_frequency=1000.0, unit_labels=["x", "y", "y"],
    )
    again = SpikeTrains.from_sorting(spikes.to_sorting())
    assert again.t_stop_s == 3.0
    assert list(again.unit_labels) == ["x", "y", "y"]
    for a, b in zip(again.spike_samples, spikes.spike_samples):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(spike_times_s=[]), "empty"),
        (dict(spike_times_s=[np.array([0.1, np.nan])]), "NaN"),
        (dict(spike_times_s=[np.array([-0.1, 0.1])]), "negative"),
        (dict(spike_times_s=[np.array([0.1])], t_start=1.0, t_stop=0.5), "must be after"),
        (dict(spike_times_s=[np.array([0.1, 5.0])], t_stop=1.0), "outside the recording"),
        (dict(spike_times_s=[np.array([])]), "span is unknown"),
        (dict(spike_times_s=[np.array([0.1]), np.array([0.2])], unit_ids=[1, 1]), "unique"),
    ],
)
def test_from_arrays_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpikeTrains.from_arrays(**kwargs)


def test_empty_sorting_is_an_error():
    import spikeinterface.core as sc

    sorting = sc.NumpySorting.from_samples_and_labels([np.array([], dtype=int)], [np.array([], dtype=int)], 1000.0)
    with pytest.raises(ValueError, match="no units"):
        SpikeTrains.from_sorting(sorting)


def test_units_without_spikes_are_kept_and_can_be_dropped():
    spikes = SpikeTrains.from_arrays([np.array([0.1]), np.array([])], t_stop=1.0)
    np.testing.assert_array_equal(spikes.spike_counts, [1, 0])
    assert list(spikes.active_units().unit_ids) == [0]


def test_duplicate_policies():
    times = [np.array([0.1, 0.1, 0.2])]
    with pytest.warns(UserWarning, match="1 spikes fall on the same sample"):
        assert SpikeTrains.from_arrays(times, t_stop=1.0).spike_counts[0] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SpikeTrains.from_arrays(times, t_stop=1.0, duplicates="keep").spike_counts[0] == 3
        assert SpikeTrains.from_arrays(times, t_stop=1.0, duplicates="drop").spike_counts[0] == 2
    with pytest.raises(ValueError, match="duplicates='drop'"):
        SpikeTrains.from_arrays(times, t_stop=1.0, duplicates="error")


def test_select_units_keeps_metadata_in_order():
    spikes = SpikeTrains.from_arrays(
        [np.array([0.1]), np.array([0.2, 0.3])], unit_ids=["a", "b"], t_stop=1.0,
        unit_locations_um=np.array([[0.0, 1.0], [2.0, 3.0]]), unit_labels=["x", "y"],
    )
    picked = spikes.select_units(["b", "a"])
    assert list(picked.unit_labels) == ["y", "x"]
    np.testing.assert_array_equal(picked.unit_locations_um[0], [2.0, 3.0])
    with pytest.raises(KeyError, match="Unknown unit ids"):
        spikes.select_units(["z"])


def test_regions_from_probe_contact_annotations_of_an_analyzer():
    import spikeinterface.core as sc

    recording, sorting = sc.generate_ground_truth_recording(durations=[10.0], num_units=4, num_channels=8, seed=0)
    probe = recording.get_probe()
    probe.annotate_contacts(region=np.array(["CA1"] * 4 + ["CA3"] * 4))
    recording.set_probe(probe)
    analyzer = sc.create_sorting_analyzer(sorting, recording, sparse=False)
    main = analyzer.get_main_channels(outputs="index")
    spikes = SpikeTrains.from_sorting(analyzer)
    np.testing.assert_array_equal(spikes.unit_labels, np.where(main < 4, "CA1", "CA3"))
    assert spikes.metadata["label_property"] == "probe:region"
    sorting.set_property("region", np.array(["a", "b", "c", "d"]))  # a sorting property takes precedence
    assert list(SpikeTrains.from_sorting(sorting).unit_labels) == ["a", "b", "c", "d"]
