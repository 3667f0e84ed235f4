"""The two analyzer extensions, in the spirit of SpikeInterface's AnalyzerExtensionCommonTestSuite: every format,
reload (also in a fresh process), select / merge / split units, registration and bad input."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import spikeinterface.core as sc

import spikeinterface_tavrnn as st
from spikeinterface_tavrnn.analyzer import create_analyzer_from_spikes, load_sorting_analyzer

FORMATS = ["memory", "binary_folder", "zarr"]
FAST_MODEL = dict(z_dim=4, h_dim=8, epochs=3, seed=0)


def _sorting(num_units=8, duration_s=60.0, seed=0):
    sorting = sc.generate_sorting(num_units=num_units, durations=[duration_s], firing_rates=8.0, seed=seed)
    sorting.set_property("region", np.array(["A", "B"] * (num_units // 2)))
    sorting.annotate(t_start_s=0.0, t_stop_s=duration_s)
    return sorting


def _analyzer(format, tmp_path, name="analyzer"):
    folder = None if format == "memory" else tmp_path / (name + (".zarr" if format == "zarr" else ""))
    return create_analyzer_from_spikes(_sorting(), format=format, folder=folder)


def _compute_both(analyzer):
    analyzer.compute("functional_connectivity", method="sttc", window_s=20.0, step_s=10.0, dt_ms=5.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", **FAST_MODEL)


@pytest.mark.parametrize("format", FORMATS)
def test_compute_and_reload_in_every_format(format, tmp_path):
    analyzer = _analyzer(format, tmp_path)
    _compute_both(analyzer)
    connectivity = analyzer.get_extension("functional_connectivity")
    matrices = connectivity.get_data()
    assert matrices.shape == (5, 8, 8) and matrices.dtype == np.float32
    np.testing.assert_allclose(matrices, matrices.transpose(0, 2, 1))
    embeddings = analyzer.get_extension("tavrnn_embeddings").get_data()
    assert embeddings.shape == (5, 8, 4) and np.all(np.isfinite(embeddings))

    # the stored matrices are those of the public function with the same parameters
    spikes = st.SpikeTrains.from_sorting(analyzer)
    expected = st.compute_connectivity(spikes, connectivity.get_windows(), method="sttc", dt_ms=5.0, verbose=False)
    np.testing.assert_array_equal(matrices, expected.matrices)

    graphs = connectivity.get_graphs()
    assert len(graphs) == 5 and graphs.num_nodes == 8
    np.testing.assert_allclose(graphs.density(), 0.3, atol=0.05)

    if format != "memory":
        reloaded = load_sorting_analyzer(analyzer.folder)
        np.testing.assert_array_equal(reloaded.get_extension("functional_connectivity").get_data(), matrices)
        ext = reloaded.get_extension("tavrnn_embeddings")
        np.testing.assert_array_equal(ext.get_data(), embeddings)
        np.testing.assert_array_equal(ext.get_data(outputs="attention"), analyzer.get_extension("tavrnn_embeddings").get_data(outputs="attention"))
        # the stored model reproduces the stored embeddings
        np.testing.assert_allclose(ext.get_model().transform(graphs), embeddings, atol=1e-6)
        # no pickles anywhere
        if format == "binary_folder":
            assert not list(analyzer.folder.rglob("*.pkl"))


def test_reload_in_a_fresh_process(tmp_path):
    analyzer = _analyzer("binary_folder", tmp_path)
    _compute_both(analyzer)
    expected = analyzer.get_extension("tavrnn_embeddings").get_data()
    np.save(tmp_path / "expected.npy", expected)
    code = f"""
import numpy as np, spikeinterface.core as sc
import spikeinterface_tavrnn
analyzer = sc.load_sorting_analyzer(r"{analyzer.folder}")
emb = analyzer.get_extension("tavrnn_embeddings").get_data()
assert np.array_equal(emb, np.load(r"{tmp_path / 'expected.npy'}"))
print("OK", analyzer.get_extension("functional_connectivity").get_data().shape)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "OK (5, 8, 8)" in result.stdout


@pytest.mark.parametrize("format", ["memory", "binary_folder"])
def test_select_units_slices_both_extensions(format, tmp_path):
    analyzer = _analyzer(format, tmp_path)
    _compute_both(analyzer)
    keep = analyzer.unit_ids[[0, 2, 5]]
    folder = None if format == "memory" else tmp_path / "selected"
    selected = analyzer.select_units(keep, format=format, folder=folder)
    full = analyzer.get_extension("functional_connectivity").get_data()
    np.testing.assert_array_equal(selected.get_extension("functional_connectivity").get_data(), full[:, [0, 2, 5]][:, :, [0, 2, 5]])
    graphs = selected.get_extension("functional_connectivity").get_graphs()
    assert graphs.num_nodes == 3
    full_graphs = analyzer.get_extension("functional_connectivity").get_graphs()
    for t in range(len(graphs)):
        np.testing.assert_array_equal(graphs.to_dense(t), full_graphs.to_dense(t)[np.ix_([0, 2, 5], [0, 2, 5])])
    np.testing.assert_array_equal(
        selected.get_extension("tavrnn_embeddings").get_data(),
        analyzer.get_extension("tavrnn_embeddings").get_data()[:, [0, 2, 5]],
    )


def test_merge_recomputes_connectivity_and_marks_embeddings_stale():
    analyzer = create_analyzer_from_spikes(_sorting())
    _compute_both(analyzer)
    ids = analyzer.unit_ids
    with pytest.warns(UserWarning, match="stale"):
        merged = analyzer.merge_units([[ids[0], ids[1]]], new_id_strategy="append")
    new_ids = list(merged.unit_ids)
    matrices = merged.get_extension("functional_connectivity").get_data()
    assert matrices.shape == (5, 7, 7)
    spikes = st.SpikeTrains.from_sorting(merged)
    windows = merged.get_extension("functional_connectivity").get_windows()
    expected = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=5.0, verbose=False).matrices
    np.testing.assert_array_equal(matrices, expected)

    ext = merged.get_extension("tavrnn_embeddings")
    assert ext.is_stale()
    with pytest.warns(UserWarning, match="Recompute"):
        embeddings = ext.get_data()
    merged_index = [i for i, uid in enumerate(new_ids) if uid not in list(ids)]
    assert np.all(np.isnan(embeddings[:, merged_index]))
    kept = new_ids.index(ids[3])
    np.testing.assert_array_equal(embeddings[:, kept], analyzer.get_extension("tavrnn_embeddings").get_data()[:, 3])
    merged.compute("tavrnn_embeddings", **FAST_MODEL)
    assert not merged.get_extension("tavrnn_embeddings").is_stale()


def test_split_recomputes_connectivity():
    analyzer = create_analyzer_from_spikes(_sorting())
    _compute_both(analyzer)
    unit = analyzer.unit_ids[2]
    n_spikes = analyzer.sorting.get_unit_spike_train(unit).size
    halves = [np.arange(0, n_spikes, 2), np.arange(1, n_spikes, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        split = analyzer.split_units({unit: halves})
    assert split.get_extension("functional_connectivity").get_data().shape == (5, 9, 9)
    assert split.get_extension("tavrnn_embeddings").is_stale()


def test_behaviour_windows_and_labels_are_stored(tmp_path):
    analyzer = _analyzer("binary_folder", tmp_path)
    analyzer.compute(
        "functional_connectivity", method="pearson", bin_ms=50.0, window_starts_s=[0.0, 20.0, 40.0],
        window_stops_s=[15.0, 35.0, 55.0], window_labels=["rest", "run", "rest"], threshold=0.05,
    )
    reloaded = load_sorting_analyzer(analyzer.folder)
    windows = reloaded.get_extension("functional_connectivity").get_windows()
    assert list(windows.labels) == ["rest", "run", "rest"]
    np.testing.assert_allclose(windows.stops, [15.0, 35.0, 55.0])


def test_bad_parameters_fail_early():
    analyzer = create_analyzer_from_spikes(_sorting())
    with pytest.raises(ValueError, match="unknown connectivity method"):
        analyzer.compute("functional_connectivity", method="granger")
    with pytest.raises(ValueError, match="not both threshold and significance"):
        analyzer.compute("functional_connectivity", threshold=0.5, significance=0.05)
    analyzer.compute("functional_connectivity", window_s=20.0, threshold=0.5)  # the density default gives way
    params = analyzer.get_extension("functional_connectivity").params
    assert params["threshold"] == 0.5 and params["density"] is None
    with pytest.raises(ValueError, match="longer than the recording"):
        analyzer.compute("functional_connectivity", window_s=600.0)
    with pytest.raises(AssertionError, match="requires functional_connectivity"):
        analyzer.compute("tavrnn_embeddings", **FAST_MODEL)


def test_data_from_another_format_version_is_refused(tmp_path):
    analyzer = _analyzer("binary_folder", tmp_path)
    analyzer.compute("functional_connectivity", method="sttc", window_s=20.0, step_s=10.0, density=0.3)
    info_file = analyzer.folder / "extensions" / "functional_connectivity" / "format_info.json"
    info = json.loads(info_file.read_text())
    info["data_format_version"] = 999
    info_file.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="data format 999"):
        sc.load_sorting_analyzer(analyzer.folder).get_extension("functional_connectivity")


def test_registration_is_idempotent_and_names_are_free():
    import importlib

    from spikeinterface.core.sortinganalyzer import _builtin_extensions, _possible_extensions

    import spikeinterface_tavrnn.extensions as extensions

    importlib.reload(extensions)
    names = [ext.extension_name for ext in _possible_extensions]
    assert names.count("functional_connectivity") == 1 and names.count("tavrnn_embeddings") == 1
    assert not set(extensions.EXTENSION_NAMES) & set(_builtin_extensions)


def test_spike_time_analyzer_supports_spikeinterface_extensions(tmp_path):
    sorting = _sorting()
    locations = np.c_[np.arange(8) * 50.0, np.zeros(8)]
    analyzer = create_analyzer_from_spikes(sorting, format="zarr", folder=tmp_path / "a.zarr", unit_locations=locations)
    analyzer.compute(["correlograms", "isi_histograms"])
    reloaded = load_sorting_analyzer(tmp_path / "a.zarr")
    assert reloaded.get_extension("correlograms").get_data()[0].shape[:2] == (8, 8)
    np.testing.assert_array_equal(reloaded.sorting.get_property("location"), locations)
    assert st.is_placeholder_recording(reloaded)
    assert reloaded.get_num_samples(0) >= sorting.to_spike_vector()["sample_index"].max()


def test_analyzer_with_real_recording(tmp_path):
    recording, sorting = sc.generate_ground_truth_recording(durations=[40.0], num_units=6, seed=1)
    analyzer = sc.create_sorting_analyzer(sorting, recording, sparse=False)
    analyzer.compute(["random_spikes", "templates", "unit_locations"])
    analyzer.compute("functional_connectivity", method="pearson", bin_ms=20.0, window_s=20.0, step_s=10.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", **FAST_MODEL)
    assert analyzer.get_extension("tavrnn_embeddings").get_data().shape == (3, 6, 4)
    assert not st.is_placeholder_recording(analyzer)


def test_vgrnn_ablation_stores_identity_attention():
    analyzer = create_analyzer_from_spikes(_sorting())
    analyzer.compute("functional_connectivity", method="sttc", window_s=20.0, step_s=10.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", attention=False, **FAST_MODEL)
    np.testing.assert_array_equal(analyzer.get_extension("tavrnn_embeddings").get_data(outputs="attention"), np.eye(5))


def test_accessors_return_what_was_computed(tmp_path):
    """The extensions' methods (used by the report and widgets) against independent counts and the stored data."""
    from spikeinterface_tavrnn.extensions import CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION, EXTENSION_NAMES

    assert EXTENSION_NAMES == (CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION)
    analyzer = _analyzer("memory", tmp_path)
    _compute_both(analyzer)
    connectivity = analyzer.get_extension(CONNECTIVITY_EXTENSION)
    windows = connectivity.get_windows()
    # firing rates: stored at compute time, equal to a plain count of the sorting's spikes per window
    sorting = analyzer.sorting
    fs = sorting.get_sampling_frequency()
    expected = np.array(
        [
            [np.sum((sorting.get_unit_spike_train(u) / fs >= a) & (sorting.get_unit_spike_train(u) / fs < b)) / (b - a)
             for u in sorting.unit_ids]
            for a, b in zip(windows.starts, windows.stops)
        ]
    )
    np.testing.assert_allclose(connectivity.get_firing_rates(), expected)
    assert connectivity.get_method_params()["dt_ms"] == 5.0
    np.testing.assert_allclose(connectivity.get_edge_density(), connectivity.get_graphs().density())
    np.testing.assert_array_equal(connectivity.get_matrices(), connectivity.get_data())
    embeddings = analyzer.get_extension(EMBEDDINGS_EXTENSION)
    assert embeddings.get_embeddings().shape == (5, 8, 4)
    assert embeddings.get_attention_weights().shape == (5, 5)
    assert embeddings.get_loss_history().ndim == 1 and embeddings.get_loss_history().size >= 1
    assert embeddings.get_link_scores() is None and embeddings.is_stale() is False
    sliced = analyzer.select_units(analyzer.unit_ids[:3])
    np.testing.assert_allclose(sliced.get_extension(CONNECTIVITY_EXTENSION).get_firing_rates(), expected[:, :3])
