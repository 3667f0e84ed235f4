"""Tests of the shipped linear-track dataset and the track-visit helpers."""

import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from spikeinterface_tavrnn.datasets import (
    Position,
    fit_track_axis,
    linear_track_visit_intervals,
    linear_track_visit_windows,
    linearize_position,
    load_linear_track,
)

from _data import shared_data_path

N_UNITS = 31
N_SPIKES = 28829
FS = 30000.0


@pytest.fixture(scope="module")
def linear_track():
    return load_linear_track()


def test_shipped_file_is_small_and_not_pickled():
    path = resources.files("spikeinterface_tavrnn").joinpath("data", "linear_track.npz")
    assert path.is_file()
    assert path.stat().st_size < 1_000_000
    with path.open("rb") as f:
        data = np.load(f, allow_pickle=False)  # would raise on object arrays
        assert data["spike_samples"].dtype == np.int64
    assert resources.files("spikeinterface_tavrnn").joinpath("data", "LICENSE-nelpy").is_file()


def test_sorting(linear_track):
    sorting, _ = linear_track
    assert sorting.get_num_units() == N_UNITS
    assert sorting.sampling_frequency == FS
    assert sorting.count_total_num_spikes() == N_SPIKES
    assert all(u.startswith("tetrode") and "_cluster" in u for u in sorting.unit_ids)
    assert set(sorting.get_property("tetrode")) == {1, 3, 4, 9, 10, 13}
    assert sorting.get_annotation("t_start_s") == 0.0
    assert sorting.get_annotation("t_stop_s") == pytest.approx(1968.2732)
    assert sorting.get_annotation("t_offset_s") == pytest.approx(4396.9975)
    assert "nelpy" in sorting.get_annotation("source")
    vector = sorting.to_spike_vector()
    assert vector["sample_index"].min() >= 0
    assert vector["sample_index"].max() <= sorting.get_annotation("t_stop_s") * FS
    assert all(v > 0 for v in sorting.count_num_spikes_per_unit().values())


def test_position(linear_track):
    sorting, position = linear_track
    assert len(position) == len(position.x) == len(position.y) > 100_000
    assert np.all(np.diff(position.times_s) > 0)
    assert position.x.dtype == np.float32 and position.units == "px"
    valid = position.valid
    assert 0.3 < valid.mean() < 0.7  # about half of the frames lost the LED (all of the rest epoch)
    assert np.all(np.isnan(position.x[~valid]))
    first, last = sorting.get_annotation("run_epoch_s")
    assert first == pytest.approx(position.times_s[valid][0]) and 900 < last < 1000
    assert not np.any(valid[position.times_s > last])
    assert np.nanmin(position.x) >= 0 and np.nanmax(position.x) < 640 and np.nanmax(position.y) < 480
    # the position sampling rate is the 60 Hz camera
    assert np.median(np.diff(position.times_s)) == pytest.approx(1 / 60, rel=0.02)


def test_track_geometry_and_linearisation(linear_track):
    _, position = linear_track
    geometry = fit_track_axis(position)
    assert 350 < geometry.length < 500  # pixels
    assert np.linalg.norm(geometry.direction) == pytest.approx(1.0)
    linear = linearize_position(position, geometry)
    assert np.array_equal(np.isnan(linear), ~position.valid)
    assert np.nanmin(linear) == 0.0 and np.nanmax(linear) == 1.0
    assert np.nanmean(linear < 0.2) > 0.1 and np.nanmean(linear > 0.8) > 0.1  # the rat spends time at both ends


def test_visits_on_the_real_track(linear_track):
    sorting, position = linear_track
    starts, stops, labels = linear_track_visit_intervals(position, min_duration_s=0.5)
    assert set(labels) == {"start", "middle", "end"}
    assert np.all(stops - starts >= 0.5)
    assert np.all(np.diff(starts) > 0) and np.all(starts[1:] >= stops[:-1])  # sorted, no overlap
    first, last = sorting.get_annotation("run_epoch_s")
    assert starts.min() >= first and stops.max() <= last
    n_start, n_end = np.sum(labels == "start"), np.sum(labels == "end")
    assert n_start >= 15 and n_end >= 15
    ends = labels[labels != "middle"]
    assert np.mean(ends[1:] != ends[:-1]) > 0.8  # laps: start and end visits alternate
    windows = linear_track_visit_windows(position)
    assert len(windows) == len(starts)
    np.testing.assert_array_equal(np.asarray(windows.starts), starts)
    assert list(windows.labels) == list(labels)


def _back_and_forth(n_laps=4, lap_s=10.0, fs=60.0):
    """Position running along a diagonal from 0 to 1 and back, n_laps times."""
    t = np.arange(0, n_laps * lap_s, 1 / fs)
    phase = (t % lap_s) / lap_s
    s = np.where(phase < 0.5, 2 * phase, 2 - 2 * phase)  # 0 -> 1 -> 0
    return t, s


def test_visits_synthetic_laps():
    t, s = _back_and_forth()
    position = Position(t, (100 + 300 * s).astype(np.float32), (50 + 200 * s).astype(np.float32))
    starts, stops, labels = linear_track_visit_intervals(position, min_duration_s=0.5, max_gap_s=0.1)
    # each lap: one end visit in the middle of the lap, start visits joined across lap boundaries
    assert np.sum(labels == "end") == 4
    assert np.sum(labels == "start") == 5  # t = 0, between laps (3x), end of the recording
    end_durations = (stops - starts)[labels == "end"]
    np.testing.assert_allclose(end_durations, 0.4 * 5.0, atol=2 / 60)  # 20 % of the track each way at 1/5 s^-1
    assert list(labels[:4]) == ["start", "middle", "end", "middle"]


def test_visits_merge_short_tracking_gaps():
    t, s = _back_and_forth(n_laps=1)
    x = (100 + 300 * s).astype(np.float32)
    y = (50 + 200 * s).astype(np.float32)
    end_samples = np.flatnonzero(s > 0.8)
    x_gap, y_gap = x.copy(), y.copy()
    x_gap[end_samples[10:14]] = np.nan  # a 4-frame (67 ms) drop-out inside the end visit
    y_gap[end_samples[10:14]] = np.nan
    args = dict(min_duration_s=0.5, max_gap_s=0.1)
    geometry = fit_track_axis(Position(t, x, y))
    _, _, labels = linear_track_visit_intervals(Position(t, x_gap, y_gap), geometry=geometry, **args)
    assert np.sum(labels == "end") == 1
    _, _, labels = linear_track_visit_intervals(
        Position(t, x_gap, y_gap), geometry=geometry, min_duration_s=0.05, max_gap_s=0.01
    )
    assert np.sum(labels == "end") == 2


def test_visit_options_and_errors():
    t, s = _back_and_forth(n_laps=2)
    position = Position(t, 300 * s, 0 * s + 5)
    starts, stops, labels = linear_track_visit_intervals(position, boundaries=(0.5,), labels=("left", "right"))
    assert set(labels) == {"left", "right"}
    with pytest.raises(ValueError, match="boundaries"):
        linear_track_visit_intervals(position, boundaries=(0.8, 0.2))
    with pytest.raises(ValueError, match="labels"):
        linear_track_visit_intervals(position, labels=("a", "b"))
    with pytest.raises(ValueError, match="max_gap_s"):
        linear_track_visit_intervals(position, max_gap_s=-1)
    with pytest.raises(ValueError, match="NaN"):
        fit_track_axis(Position(t, np.full(t.size, np.nan), np.full(t.size, np.nan)))
    with pytest.raises(ValueError, match="same length"):
        Position(t, s[:-1], s)


# ---------------------------------------------------------------------------------------------------------------
# against the original files (skipped without ../shared/data)


def _raw_units(path):
    cell = scipy.io.loadmat(path)["spikes"]
    while cell.dtype == object and cell.size == 1:
        cell = cell.flat[0]
    units = {}
    for t in range(cell.size):
        for c in range(cell.flat[t].size):
            entry = cell.flat[t].flat[c]
            if entry.size and entry.dtype.names and entry["time"].flat[0].size:
                units[f"tetrode{t + 1}_cluster{c + 1}"] = entry["time"].flat[0].ravel()
    return units


def test_matches_raw_spikes(linear_track):
    raw = _raw_units(shared_data_path("nelpy_linear_track", "spikes.mat"))
    sorting, _ = linear_track
    assert len(raw) == N_UNITS and sum(v.size for v in raw.values()) == N_SPIKES
    assert sorted(raw) == sorted(sorting.unit_ids)
    offset = sorting.get_annotation("t_offset_s")
    for uid, times in raw.items():
        got = sorting.get_unit_spike_train(uid, segment_index=0) / FS + offset
        np.testing.assert_allclose(got, np.sort(times), atol=0.5 / FS)


def test_matches_raw_position(linear_track):
    path = shared_data_path("nelpy_linear_track", "trajectory.videoPositionTracking")
    raw = path.read_bytes()
    body = raw[raw.index(b"<End settings>\n") + 15 :]
    records = np.frombuffer(body, dtype=[("t", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
    sorting, position = linear_track
    samples = records["t"].astype(np.int64) - round(sorting.get_annotation("t_offset_s") * FS)
    tracked = ~np.isin(records["y"], (8, 479))
    # every tracked frame of the file is in the shipped position, with the same coordinates
    shipped_samples = np.round(position.times_s * FS).astype(np.int64)
    idx = np.searchsorted(shipped_samples, samples[tracked])
    np.testing.assert_array_equal(shipped_samples[idx], samples[tracked])
    np.testing.assert_array_equal(position.x[idx], records["x"][tracked])
    np.testing.assert_array_equal(position.y[idx], records["y"][tracked])
    assert position.valid.sum() == np.unique(records["t"][tracked]).size


def test_build_script_reproduces_shipped_file(tmp_path):
    source = shared_data_path("nelpy_linear_track")
    script = Path(__file__).resolve().parents[1] / "scripts" / "build_linear_track_dataset.py"
    spec = importlib.util.spec_from_file_location("build_linear_track_dataset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.build(source, tmp_path / "lt.npz")
    assert summary["units"] == N_UNITS and summary["spikes"] == N_SPIKES
    shipped = resources.files("spikeinterface_tavrnn").joinpath("data", "linear_track.npz")
    with shipped.open("rb") as f, np.load(tmp_path / "lt.npz") as rebuilt:
        original = np.load(f)
        assert set(original.files) == set(rebuilt.files)
        for key in original.files:
            np.testing.assert_array_equal(original[key], rebuilt[key], err_msg=key)
