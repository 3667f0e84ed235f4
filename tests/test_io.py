"""Tests of the MEA export readers, format detection and ``read_sorting``."""

import gzip
import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from spikeinterface.core import NumpySorting, load

from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.io import (
    AxionSpikeListSortingExtractor,
    SjemeaHDF5SortingExtractor,
    detect_format,
    infer_sampling_frequency,
    read_axion_experiment_log,
    read_axion_spike_list,
    read_sjemea_hdf5,
    read_sorting,
)

from _data import requires_shared_data, shared_data_dir, shared_data_path


# ---------------------------------------------------------------------------------------------------------------
# writers of small synthetic files in the real layouts


def write_sjemea(path, trains, fs=25000.0, names=True, epos="2xn", recordingtime=None, meta=None, plate=False):
    """Write an sjemea HDF5 file; ``trains`` are lists of spike times in seconds (put on the ``fs`` grid)."""
    trains = [np.round(np.asarray(t, dtype=float) * fs) / fs for t in trains]
    n = len(trains)
    with h5py.File(path, "w") as f:
        f["spikes"] = np.concatenate(trains) if n else np.zeros(0)
        f["sCount"] = np.array([len(t) for t in trains], dtype=np.int32)
        if names is True:
            labels = [f"A{1 + i % 2}_{11 + i}" for i in range(n)] if plate else [f"ch_{i}_unit_0" for i in range(n)]
            f["names"] = np.array(labels, dtype="S")
        elif names is not None:
            f["names"] = np.array(names, dtype="S")
        if isinstance(epos, str):
            f["epos"] = np.vstack([np.arange(n) * 200.0, np.arange(n) * 100.0])
        elif epos is not None:
            f["epos"] = epos
        f["array"] = np.array([b"test_array"])
        if recordingtime is not None:
            f["recordingtime"] = np.asarray(recordingtime, dtype=float)
        for key, value in (meta or {}).items():
            f[f"meta/{key}"] = value
        if plate:
            f["well"] = np.array([b"A1", b"A2"])
            f["treatment"] = np.array([b"control", b"drug"])
            f["dose"] = np.array([b"0", b"10"])
    return path


AXION_SETTINGS = [
    ("Investigator", ""),
    ("Maestro Settings", ""),
    ("   Sampling Frequency", "12500 Hz"),
    ("   Plate Type", "Maestro 48-Well (Transparent)"),
    ("   AxIS Version", "2.0.3.3"),
]


def write_axion(path, rows, settings=AXION_SETTINGS, compress=False, newline="\r\n"):
    """Write an Axion spike list: ``rows`` are (time_s, electrode, amplitude_mV)."""
    lines = ["Investigator,,Time (s),Electrode,Amplitude(mV)"]
    for i, (t, el, amp) in enumerate(rows):
        key, value = settings[i + 1] if i + 1 < len(settings) else ("", "")
        lines.append(f"{key},{value},{t},{el},{amp}")
    text = newline.join(lines)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(text.encode())
    else:
        Path(path).write_text(text)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def sjemea_file(tmp_path, rng):
    trains = [np.sort(rng.uniform(0.5, 10, k)) for k in (50, 0, 120)]
    return write_sjemea(tmp_path / "rec.h5", trains, meta={"age": 14, "region": b"ctx"}), trains


# ---------------------------------------------------------------------------------------------------------------
# sampling-rate inference


@pytest.mark.parametrize("fs", [12500.0, 20000.0, 25000.0, 30000.0])
def test_infer_sampling_frequency(fs, rng):
    times = rng.integers(0, int(600 * fs), 500) / fs
    if fs == 25000.0:
        times[0] = 1 / fs  # an odd sample, so the 12.5 kHz grid does not hold every time
    assert infer_sampling_frequency(times) == fs


def test_infer_sampling_frequency_off_grid_and_empty(rng):
    assert infer_sampling_frequency(rng.uniform(0, 10, 100)) is None
    assert infer_sampling_frequency(np.array([])) is None


# ---------------------------------------------------------------------------------------------------------------
# sjemea HDF5


def test_sjemea_basic(sjemea_file):
    path, trains = sjemea_file
    sorting = read_sjemea_hdf5(path)
    assert isinstance(sorting, SjemeaHDF5SortingExtractor)
    assert sorting.sampling_frequency == 25000.0
    assert sorting.get_annotation("sampling_frequency_source") == "inferred"
    assert list(sorting.unit_ids) == ["ch_0_unit_0", "ch_1_unit_0", "ch_2_unit_0"]
    counts = sorting.count_num_spikes_per_unit()
    assert [counts[u] for u in sorting.unit_ids] == [50, 0, 120]  # the silent electrode stays a unit
    for uid, t in zip(sorting.unit_ids, trains):
        got = sorting.get_unit_spike_train(uid, segment_index=0) / sorting.sampling_frequency
        np.testing.assert_allclose(got, t, atol=0.5 / 25000.0)
    np.testing.assert_array_equal(sorting.get_property("location"), [[0, 0], [200, 100], [400, 200]])
    assert list(sorting.get_property("electrode")) == list(sorting.unit_ids)
    assert "well" not in sorting.get_property_keys()
    assert sorting.get_annotation("t_start_s") == 0.0
    assert sorting.get_annotation("t_stop_s") == pytest.approx(max(t.max() for t in trains if t.size), abs=1e-4)
    metadata = sorting.get_annotation("metadata")
    assert metadata["age"] == 14 and metadata["region"] == "ctx" and metadata["array"] == "test_array"


def test_sjemea_recordingtime_nearest_rounding_and_user_rate(tmp_path):
    fs = 20000.0
    # 0.7 samples after 1 s: a floor would give sample 20000, nearest gives 20001
    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as f:
        f["spikes"] = np.array([1.0 + 0.7 / fs, 2.0])
        f["sCount"] = np.array([2])
        f["recordingtime"] = np.array([0.5, 30.0])
    with pytest.raises(ValueError, match="sampling_frequency"):
        read_sjemea_hdf5(path)
    sorting = read_sjemea_hdf5(path, sampling_frequency=fs)
    assert list(sorting.unit_ids) == ["ch0"]
    np.testing.assert_array_equal(sorting.get_unit_spike_train("ch0", segment_index=0), [20001, 40000])
    assert sorting.get_annotation("t_start_s") == 0.5 and sorting.get_annotation("t_stop_s") == 30.0
    assert sorting.get_annotation("sampling_frequency_source") == "user"


def test_sjemea_multiwell_properties(tmp_path, rng):
    trains = [np.sort(rng.uniform(0, 5, 30)) for _ in range(4)]
    sorting = read_sjemea_hdf5(write_sjemea(tmp_path / "p.h5", trains, fs=12500.0, plate=True))
    assert sorting.sampling_frequency == 12500.0
    assert list(sorting.get_property("well")) == ["A1", "A2", "A1", "A2"]
    assert list(sorting.get_property("treatment")) == ["control", "drug", "control", "drug"]
    assert list(sorting.get_property("dose")) == ["0", "10", "0", "10"]


def test_sjemea_unsorted_times_are_sorted_with_warning(tmp_path):
    path = tmp_path / "u.h5"
    with h5py.File(path, "w") as f:
        f["spikes"] = np.array([3.0, 1.0, 2.0, 0.5]) + 0.00004
        f["sCount"] = np.array([3, 1])
    with pytest.warns(UserWarning, match="not sorted"):
        sorting = read_sjemea_hdf5(path, sampling_frequency=25000.0)
    assert np.all(np.diff(sorting.get_unit_spike_train("ch0", segment_index=0)) > 0)


@pytest.mark.parametrize(
    "spikes, counts, match",
    [
        (np.array([1.0, 2.0, 3.0]), np.array([1, 1]), "adds up to 2"),
        (np.array([1.0, np.nan]), np.array([2]), "NaN"),
        (np.array([-1.0, 2.0]), np.array([2]), "negative"),
        (np.array([1.0, np.inf]), np.array([2]), "infinite"),
        (np.array([1.0, 1e15]), np.array([2]), "beyond the int64 sample grid"),  # a flipped exponent bit
    ],
)
def test_sjemea_bad_layout(tmp_path, spikes, counts, match):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["spikes"] = spikes
        f["sCount"] = counts
    with pytest.raises(TavrnnInputError, match=match):
        read_sjemea_hdf5(path, sampling_frequency=25000.0)


def test_sjemea_missing_file_and_wrong_content(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_sjemea_hdf5(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="sCount|spikes"):
        read_sjemea_hdf5(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="HDF5"):
        read_sjemea_hdf5(tmp_path / "text.h5")


def test_sjemea_bad_epos_warns(tmp_path, rng):
    trains = [np.sort(rng.uniform(0, 5, 10)) for _ in range(3)]
    path = write_sjemea(tmp_path / "e.h5", trains, epos=np.zeros((3, 3)))
    with pytest.warns(UserWarning, match="epos"):
        sorting = read_sjemea_hdf5(path)
    assert "location" not in sorting.get_property_keys()


def test_sjemea_serialisation_round_trips(sjemea_file, tmp_path):
    path, _ = sjemea_file
    sorting = read_sjemea_hdf5(path)
    assert sorting.check_serializability("json") and sorting.check_serializability("pickle")
    for copy in (load(sorting.to_dict()), pickle.loads(pickle.dumps(sorting))):
        assert isinstance(copy, SjemeaHDF5SortingExtractor)
        assert list(copy.unit_ids) == list(sorting.unit_ids)
        assert copy.get_annotation("t_stop_s") == sorting.get_annotation("t_stop_s")
    saved = sorting.save(folder=tmp_path / "saved")
    reloaded = load(tmp_path / "saved")
    for uid in sorting.unit_ids:
        np.testing.assert_array_equal(
            reloaded.get_unit_spike_train(uid, segment_index=0), sorting.get_unit_spike_train(uid, segment_index=0)
        )
    assert reloaded.get_annotation("t_stop_s") == sorting.get_annotation("t_stop_s")
    np.testing.assert_array_equal(reloaded.get_property("location"), sorting.get_property("location"))
    assert saved.get_num_units() == 3


# ---------------------------------------------------------------------------------------------------------------
# Axion spike list


@pytest.fixture
def axion_rows():
    return [
        (0.01048, "B2_11", 0.05),
        (0.01064, "A1_21", 0.04),
        (0.0208, "B2_11", 0.07),
        (0.02088, "A10_12", 0.02),
        (0.5, "A1_21", 0.06),
    ]


@pytest.mark.parametrize("compress", [False, True])
def test_axion_basic(tmp_path, axion_rows, compress):
    path = write_axion(tmp_path / ("s.csv.gz" if compress else "s.csv"), axion_rows, compress=compress)
    sorting = read_axion_spike_list(path)
    assert isinstance(sorting, AxionSpikeListSortingExtractor)
    assert sorting.sampling_frequency == 12500.0
    assert sorting.get_annotation("sampling_frequency_source") == "header"
    assert list(sorting.unit_ids) == ["A1_21", "A10_12", "B2_11"]  # by row, then column number
    assert list(sorting.get_property("well")) == ["A1", "A10", "B2"]
    np.testing.assert_array_equal(sorting.get_unit_spike_train("B2_11", segment_index=0), [131, 260])
    np.testing.assert_allclose(sorting.get_property("median_amplitude_mV"), [0.05, 0.02, 0.06])
    assert sorting.get_annotation("t_stop_s") == 0.5
    assert sorting.get_annotation("metadata")["Plate Type"] == "Maestro 48-Well (Transparent)"
    copy = load(sorting.to_dict())
    assert list(copy.unit_ids) == list(sorting.unit_ids)


def test_axion_without_header_infers_rate_and_experiment_log(tmp_path, axion_rows):
    path = write_axion(tmp_path / "s.csv", axion_rows, settings=[], newline="\n")
    sorting = read_axion_spike_list(path)
    assert sorting.sampling_frequency == 12500.0 and sorting.get_annotation("sampling_frequency_source") == "inferred"
    log_path = tmp_path / "log.csv"
    log_path.write_text(
        "Project,Experiment Date,Plate SN,DIV,Well,Treatment,Size,Dose ,Units\r"
        "p,1,plate1,3,A1,drugX,,10,uM\rp,1,plate1,3,B2,,,,\r"
    )
    log = read_axion_experiment_log(log_path)
    assert log["A1"]["treatment"] == "drugX" and log["A1"]["dose"] == "10" and log["B2"]["treatment"] == ""
    sorting = read_axion_spike_list(path, experiment_log=log_path)
    assert list(sorting.get_property("treatment")) == ["drugX", "", ""]
    sorting = read_axion_spike_list(path, experiment_log={"b2": {"treatment": "ctl"}}, t_stop_s=60.0)
    assert list(sorting.get_property("treatment")) == ["", "", "ctl"]
    assert sorting.get_annotation("t_stop_s") == 60.0
    assert load(sorting.to_dict()).get_annotation("t_stop_s") == 60.0


def test_axion_errors(tmp_path, axion_rows):
    with pytest.raises(FileNotFoundError):
        read_axion_spike_list(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="Time \\(s\\)"):
        read_axion_spike_list(tmp_path / "other.csv")
    bad_name = write_axion(tmp_path / "n.csv", axion_rows + [(0.6, "electrode7", 0.1)])
    with pytest.raises(ValueError, match="<well>_<electrode>"):
        read_axion_spike_list(bad_name)
    bad_time = write_axion(tmp_path / "t.csv", axion_rows + [("abc", "A1_21", 0.1)])
    with pytest.raises(ValueError, match="line 7"):
        read_axion_spike_list(bad_time)
    with pytest.raises(ValueError, match="before the last spike"):
        read_axion_spike_list(write_axion(tmp_path / "ok.csv", axion_rows), t_stop_s=0.1)
    (tmp_path / "log.csv").write_text("Well,Dose\nA1,3\n")
    with pytest.raises(ValueError, match="Treatment"):
        read_axion_experiment_log(tmp_path / "log.csv")


# ---------------------------------------------------------------------------------------------------------------
# detection and read_sorting


def _write_phy(folder, fs=30000.0):
    folder.mkdir()
    (folder / "params.py").write_text(f"dat_path = 'x.dat'\nn_channels_dat = 4\ndtype = 'int16'\nsample_rate = {fs}\n")
    np.save(folder / "spike_times.npy", np.array([10, 50, 90, 120], dtype=np.uint64))
    np.save(folder / "spike_clusters.npy", np.array([0, 1, 0, 1], dtype=np.int32))
    return folder


def _write_neo_mat(path, fs=20000.0):
    import neo
    import quantities as pq

    block = neo.Block()
    segment = neo.Segment()
    block.segments.append(segment)
    # 0.7 samples past sample 100: nearest -> 101 (from_neo_spiketrain_list would floor to 100)
    times = np.array([100.7, 250.0, 4000.2]) / fs
    for name in ("u_a", "u_b"):
        train = neo.SpikeTrain(times * pq.s, t_start=0 * pq.s, t_stop=1.0 * pq.s, sampling_rate=fs * pq.Hz, name=name)
        segment.spiketrains.append(train)
    neo.io.NeoMatlabIO(str(path)).write_block(block)
    return path


def test_detect_format(tmp_path, sjemea_file, axion_rows):
    path, _ = sjemea_file
    assert detect_format(path) == "sjemea_hdf5"
    renamed = tmp_path / "spikes.bin"  # content, not extension
    renamed.write_bytes(Path(path).read_bytes())
    assert detect_format(renamed) == "sjemea_hdf5"
    assert detect_format(write_axion(tmp_path / "a.txt.gz", axion_rows, compress=True)) == "axion_spike_list"
    assert detect_format(write_axion(tmp_path / "a.csv", axion_rows)) == "axion_spike_list"
    assert detect_format(_write_phy(tmp_path / "phy")) == "phy"
    assert detect_format(_write_neo_mat(tmp_path / "neo.mat")) == "neo"
    (tmp_path / "notes.xyz").write_text("hello")
    assert detect_format(tmp_path / "notes.xyz") is None
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(2)
    assert detect_format(tmp_path / "plain.h5") is None
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "absent")


def test_read_sorting_dispatch(tmp_path, sjemea_file, axion_rows):
    path, _ = sjemea_file
    assert isinstance(read_sorting(path), SjemeaHDF5SortingExtractor)
    assert isinstance(read_sorting(write_axion(tmp_path / "a.csv", axion_rows)), AxionSpikeListSortingExtractor)
    read_sjemea_hdf5(path).save(folder=tmp_path / "si_saved")
    assert detect_format(tmp_path / "si_saved") == "spikeinterface"
    saved = read_sorting(tmp_path / "si_saved")
    assert saved.get_num_units() == 3 and saved.get_annotation("t_stop_s") is not None

    neo_sorting = read_sorting(_write_neo_mat(tmp_path / "neo.mat"))
    assert isinstance(neo_sorting, NumpySorting)
    assert list(neo_sorting.unit_ids) == ["u_a", "u_b"] and neo_sorting.sampling_frequency == 20000.0
    np.testing.assert_array_equal(neo_sorting.get_unit_spike_train("u_a", segment_index=0), [101, 250, 4000])
    assert neo_sorting.get_annotation("t_stop_s") == 1.0

    (tmp_path / "notes.xyz").write_text("hello")
    with pytest.raises(ValueError, match="format="):
        read_sorting(tmp_path / "notes.xyz")
    scipy_mat = tmp_path / "not_neo.mat"  # claimed by Neo's MATLAB reader by extension, but holds no Neo block
    scipy.io.savemat(scipy_mat, {"x": np.arange(3)})
    with pytest.raises(ValueError, match="format="):
        read_sorting(scipy_mat)
    with pytest.raises(ValueError, match="Unknown format"):
        read_sorting(path, format="blackrock_typo")


def test_read_sorting_phy(tmp_path):
    folder = _write_phy(tmp_path / "phy")
    pytest.importorskip("pandas", reason="SpikeInterface's phy reader needs pandas")
    sorting = read_sorting(folder)
    assert sorting.get_num_units() == 2 and sorting.sampling_frequency == 30000.0
    np.testing.assert_array_equal(sorting.get_unit_spike_train(0, segment_index=0), [10, 90])


# ---------------------------------------------------------------------------------------------------------------
# real data (skipped when ../shared/data is absent)


def _check_against_h5(sorting, path):
    with h5py.File(path, "r") as f:
        spikes = f["spikes"][()]
        counts = f["sCount"][()].astype(int)
        names = [n.decode() for n in f["names"][()]] if "names" in f else None
    assert sorting.count_total_num_spikes() == spikes.size
    per_unit = sorting.count_num_spikes_per_unit()
    assert [per_unit[u] for u in sorting.unit_ids] == counts.tolist()
    if names is not None:
        assert list(sorting.unit_ids) == names
    fs = sorting.sampling_frequency
    vector = sorting.to_spike_vector()
    # unit by unit, each in time order: the layout of /spikes (whose trains are sorted in these files)
    got = vector["sample_index"][np.argsort(vector["unit_index"], kind="stable")] / fs
    np.testing.assert_array_less(np.abs(got - spikes), 0.5 / fs + 1e-12)
    assert sorting.get_annotation("t_stop_s") == pytest.approx(spikes.max())
    assert sorting.get_property("location").shape == (sorting.get_num_units(), 2)


@requires_shared_data
def test_real_epa_plate_files():
    files = sorted((shared_data_dir() / "epa_multiwell_plate53").glob("*.h5"))
    if not files:
        pytest.skip("no EPA plate files")
    for path in files:
        sorting = read_sorting(path)
        assert sorting.sampling_frequency == 12500.0  # Axion Maestro
        _check_against_h5(sorting, path)
        wells = sorting.get_property("well")
        assert all(u.startswith(w + "_") for u, w in zip(sorting.unit_ids, wells))
        assert set(sorting.get_property("treatment")) <= {"control", ""} | set(
            sorting.get_annotation("metadata")["treatment"]
        )
        assert sorting.get_annotation("metadata")["array"] == "Axion 48 well"


@requires_shared_data
@pytest.mark.parametrize(
    "name", ["hiPSN_tc06_d12_spikes6sd.h5", "hiPSN_tc146_d21_spikes6sd.h5", "hiPSN_tc75_d34_spikes6sd.h5"]
)
def test_real_hipsc_files(name):
    path = shared_data_path("hipsc_cultures", name)
    sorting = read_sorting(path)
    assert sorting.sampling_frequency == 25000.0
    _check_against_h5(sorting, path)
    metadata = sorting.get_annotation("metadata")
    assert metadata["species"] == "human" and isinstance(metadata["age"], int)
    assert "well" not in sorting.get_property_keys()


@requires_shared_data
@pytest.mark.parametrize("div", [3, 4])
def test_real_axion_files(div):
    folder = shared_data_path("axion_spike_list")
    path = folder / f"exampleRecording_1012016_plate1_DIV{div}_spike_list.csv.gz"
    log = folder / "exampleRecording_1012016_plate1_expLog.csv.gz"
    assert detect_format(path) == "axion_spike_list"
    # The shipped examples hold about a minute of an 18-minute section ("Actual File Section Run, 0s to 18m2s").
    with pytest.warns(UserWarning, match="seems cut: its settings state a recorded section of 1082 s"):
        sorting = read_sorting(path, experiment_log=log)
    with gzip.open(path, "rt") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    times = np.array([float(r[2]) for r in rows])
    electrodes = np.array([r[3] for r in rows])
    assert sorting.sampling_frequency == 12500.0
    assert sorting.count_total_num_spikes() == len(rows)
    names, counts = np.unique(electrodes, return_counts=True)
    per_unit = sorting.count_num_spikes_per_unit()
    assert sorted(sorting.unit_ids) == sorted(names) and all(per_unit[n] == c for n, c in zip(names, counts))
    some = names[np.argmax(counts)]
    got = sorting.get_unit_spike_train(some, segment_index=0) / 12500.0
    np.testing.assert_array_less(np.abs(got - np.sort(times[electrodes == some])), 0.5 / 12500.0)
    treatments = dict(zip(sorting.get_property("well"), sorting.get_property("treatment")))
    expected = read_axion_experiment_log(log)
    assert all(expected[w]["treatment"] == t for w, t in treatments.items())
    assert {"treatX", "treatY", "untreated"} <= set(treatments.values())
    assert sorting.get_annotation("metadata")["AxIS Version"] == "2.0.3.3"


@pytest.mark.filterwarnings("ignore:The extractor is not serializable")
def test_read_sorting_spikeinterface_zarr_and_analyzer(tmp_path):
    from spikeinterface.core import SortingAnalyzer, create_sorting_analyzer, generate_recording

    sorting = NumpySorting.from_unit_dict({"a": np.array([1, 5, 9]), "b": np.array([2, 3])}, 30000.0)
    sorting.save(folder=tmp_path / "s.zarr", format="zarr")
    assert detect_format(tmp_path / "s.zarr") == "spikeinterface"
    assert list(read_sorting(tmp_path / "s.zarr").unit_ids) == ["a", "b"]
    recording = generate_recording(durations=[1.0], num_channels=2)
    create_sorting_analyzer(sorting, recording, format="binary_folder", folder=tmp_path / "an", sparse=False)
    assert detect_format(tmp_path / "an") == "spikeinterface"
    analyzer = read_sorting(tmp_path / "an")  # passed on unchanged: the caller takes analyzer.sorting
    assert isinstance(analyzer, SortingAnalyzer) and list(analyzer.sorting.unit_ids) == ["a", "b"]


# ---------------------------------------------------------------------------------------------------------------
# damaged files: each case ends in a clear TavrnnInputError or a warning that counts what was skipped


def _axion_text(rows, section=None):
    lines = ["Investigator,,Time (s),Electrode,Amplitude(mV)", "   Sampling Frequency,12500 Hz,,,"]
    if section is not None:
        lines.append(f"Actual File Section Run,{section},,,")
    lines += [f",,{t},{el},{amp}" for t, el, amp in rows]
    return "\r\n".join(lines) + "\r\n"


def _read_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_axion_spike_list(path, **kwargs)


def test_axion_clean_file_reads_without_warnings(tmp_path, axion_rows):
    path = tmp_path / "clean.csv"
    path.write_text(_axion_text(axion_rows))
    assert _read_quietly(path).count_total_num_spikes() == len(axion_rows)


def test_axion_truncated_gzip_is_a_clear_error(tmp_path, axion_rows):
    path = write_axion(tmp_path / "s.csv.gz", axion_rows * 200, compress=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TavrnnInputError, match="truncated or damaged gzip"):
        read_axion_spike_list(path)
    with pytest.raises(TavrnnInputError, match="truncated or damaged gzip"):
        read_sorting(path)


def test_axion_cut_last_line_is_skipped_with_a_warning(tmp_path, axion_rows):
    path = tmp_path / "cut.csv"
    path.write_text(_axion_text(axion_rows) + ",,0.61,B2")  # cut inside the electrode column, no final newline
    with pytest.warns(UserWarning, match="skipped 1 truncated last row"):
        sorting = read_axion_spike_list(path)
    assert sorting.count_total_num_spikes() == len(axion_rows)


def test_axion_complete_last_line_without_newline_is_kept_silently(tmp_path, axion_rows):
    path = tmp_path / "nonl.csv"
    path.write_text(_axion_text(axion_rows) + ",,0.61,B2_11,0.05")
    assert _read_quietly(path).count_total_num_spikes() == len(axion_rows) + 1


@pytest.mark.parametrize(
    "junk, reason, count",
    [
        ("\r\n\r\n,,,,\r\n", "blank", 3),
        ("\x00\x00\x00\x00\r\n\x00\x00\r\n", "NUL-byte", 2),
        (",,0.3,,0.05\r\n", "time-without-electrode", 1),
    ],
)
def test_axion_damaged_rows_are_counted_in_a_warning(tmp_path, axion_rows, junk, reason, count):
    text = _axion_text(axion_rows[:3]) + junk + _axion_text(axion_rows[3:]).split("\r\n", 2)[2]
    path = tmp_path / "junk.csv"
    path.write_text(text)
    with pytest.warns(UserWarning, match=f"skipped {count} {reason} row"):
        sorting = read_axion_spike_list(path)
    assert sorting.count_total_num_spikes() == len(axion_rows)


def test_axion_undecodable_rows_are_counted(tmp_path, axion_rows):
    path = tmp_path / "bytes.csv"
    path.write_bytes(_axion_text(axion_rows).encode() + b"\xff\xfe\x81garbage\r\n")
    with pytest.warns(UserWarning, match="skipped 1 undecodable row"):
        assert read_axion_spike_list(path).count_total_num_spikes() == len(axion_rows)


def test_axion_cut_at_a_line_boundary_seems_cut(tmp_path, axion_rows):
    path = tmp_path / "short.csv"
    path.write_text(_axion_text(axion_rows, section="0s to 10m0s"))
    with pytest.warns(UserWarning, match="seems cut.*600 s.*t_stop_s=600"):
        sorting = read_axion_spike_list(path)
    assert sorting.get_annotation("t_stop_s") == 0.5
    assert _read_quietly(path, t_stop_s=600.0).get_annotation("t_stop_s") == 600.0
    full = tmp_path / "full.csv"
    full.write_text(_axion_text(axion_rows + [(599.0, "A1_21", 0.05)], section="0s to 10m0s"))
    assert _read_quietly(full).get_annotation("t_stop_s") == 599.0


def test_axion_overflowing_time_is_a_clear_error(tmp_path, axion_rows):
    path = tmp_path / "huge.csv"
    path.write_text(_axion_text(axion_rows + [(1e16, "A1_21", 0.05)]))
    with pytest.raises(TavrnnInputError, match="unit 'A1_21' has spike time 1e\\+16 s"):
        read_axion_spike_list(path, sampling_frequency=12500.0)


def test_axion_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TavrnnInputError, match="empty"):
        read_axion_spike_list(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("Investigator,,Time (s),Electrode,Amplitude(mV)\r\n")
    sorting = read_axion_spike_list(tmp_path / "header.csv", sampling_frequency=12500.0)
    assert sorting.get_num_units() == 0


def test_sjemea_spike_after_recordingtime_names_the_unit(tmp_path):
    path = write_sjemea(tmp_path / "late.h5", [[0.5, 1.0], [0.2, 5000.0]], recordingtime=[0.0, 600.0])
    with pytest.warns(UserWarning, match="1 spike\\(s\\) of 1 unit\\(s\\).*unit 'ch_1_unit_0' at 5000 s"):
        read_sjemea_hdf5(path, sampling_frequency=25000.0)


def test_unsorted_warning_names_the_unit(tmp_path, axion_rows):
    path = tmp_path / "unsorted.csv"
    path.write_text(_axion_text(axion_rows + [(0.001, "B2_11", 0.05)]))
    with pytest.warns(UserWarning, match="unit 'B2_11' were not sorted \\(1 step"):
        read_axion_spike_list(path)


def test_truncated_hdf5_is_named_as_damaged(sjemea_file, tmp_path):
    path, _ = sjemea_file
    raw = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(TavrnnInputError, match="starts like an HDF5 file but cannot be opened"):
        read_sorting(cut)
    with pytest.raises(TavrnnInputError, match="not a readable HDF5 file"):
        read_sjemea_hdf5(cut)


@pytest.mark.parametrize("recordingtime", [[0.0, np.nan], [0.0, 1.0, 2.0], [5.0, 5.0]])
def test_sjemea_unusable_recordingtime_is_reported(tmp_path, recordingtime):
    path = write_sjemea(tmp_path / "rt.h5", [[0.5, 1.0]], recordingtime=recordingtime)
    with pytest.warns(UserWarning, match="recordingtime .* is ignored"):
        sorting = read_sjemea_hdf5(path, sampling_frequency=25000.0)
    assert sorting.get_annotation("t_stop_s") == 1.0


# ---------------------------------------------------------------------------------------------------------------
# property test: however an Axion spike list is damaged, reading it ends in a sorting or in one TavrnnInputError,
# never in another exception; a read without warnings loses no spike of the undamaged rows


def _damaged_axion(data, n_rows):
    from hypothesis import strategies as st

    electrodes = data.draw(st.lists(st.sampled_from(["A1_11", "A1_12", "B2_21"]), min_size=n_rows, max_size=n_rows))
    samples = sorted(data.draw(st.lists(st.integers(1, 10**6), min_size=n_rows, max_size=n_rows)))
    lines = ["Investigator,,Time (s),Electrode,Amplitude(mV)", "   Sampling Frequency,12500 Hz,,,"]
    lines += [f",,{s / 12500.0!r},{e},0.05" for s, e in zip(samples, electrodes)]
    raw = bytearray(("\r\n".join(lines) + "\r\n").encode())
    damage = data.draw(st.sampled_from(["none", "flip", "truncate", "nul", "junk_line", "gzip_truncate"]))
    if damage == "flip":
        for position in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=5)):
            raw[position] = data.draw(st.integers(0, 255))
    elif damage == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif damage == "nul":
        start = data.draw(st.integers(0, len(raw) - 1))
        raw[start : start + data.draw(st.integers(1, 64))] = b"\0" * 16
    elif damage == "junk_line":
        junk = data.draw(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b))
        raw = raw + junk + b"\r\n"
    compressed = damage == "gzip_truncate"
    if compressed:
        packed = gzip.compress(bytes(raw))
        raw = packed[: data.draw(st.integers(0, len(packed) - 1))]
    return bytes(raw), damage, compressed, len(samples)


def test_axion_reader_never_ends_in_a_traceback(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data(), n_rows=st.integers(1, 30))
    def check(data, n_rows):
        raw, damage, compressed, n_spikes = _damaged_axion(data, n_rows)
        path = tmp_path / ("fuzz.csv.gz" if compressed else "fuzz.csv")
        path.write_bytes(raw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sorting = read_axion_spike_list(path)
            except TavrnnInputError as error:
                assert "\n" not in str(error)
                return
        if damage == "none":
            assert not caught and sorting.count_total_num_spikes() == n_spikes
        elif damage == "truncate":
            assert sorting.count_total_num_spikes() <= n_spikes  # a cut never invents spikes

    check()


@pytest.mark.filterwarnings("ignore:The extractor is not serializable")
def test_damaged_folders_of_other_formats_are_one_line_errors(tmp_path):
    pytest.importorskip("pandas", reason="SpikeInterface's phy reader needs pandas")
    phy = _write_phy(tmp_path / "phy")
    (phy / "spike_clusters.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(TavrnnInputError, match="looks like a phy folder but could not be read") as info:
        read_sorting(phy)
    assert "\n" not in str(info.value)
    saved = NumpySorting.from_samples_and_labels([np.array([5, 9])], [np.array([0, 1])], 1000.0).save(
        folder=tmp_path / "si"
    )
    assert detect_format(tmp_path / "si") == "spikeinterface"
    for name in ("si_folder.json", "provenance.json"):
        if (tmp_path / "si" / name).exists():
            (tmp_path / "si" / name).write_text("{not json")
    with pytest.raises(TavrnnInputError, match="looks like a spikeinterface folder but could not be read"):
        read_sorting(tmp_path / "si")


def test_experiment_log_damage(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"Well,Treatment\r\nA1,drugX\r\n\x00\x00\x00\r\nB2,ctl\r\n")
    with pytest.warns(UserWarning, match="skipped 1 NUL-byte row"):
        log = read_axion_experiment_log(path)
    assert log == {"A1": {"well": "A1", "treatment": "drugX"}, "B2": {"well": "B2", "treatment": "ctl"}}
    packed = gzip.compress(path.read_bytes() * 50)
    (tmp_path / "log.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(TavrnnInputError, match="truncated or damaged gzip"):
        read_axion_experiment_log(tmp_path / "log.csv.gz")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(TavrnnInputError, match="is empty"):
        read_axion_experiment_log(tmp_path / "blank.csv")
