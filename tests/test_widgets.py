"""Tests of the plotting widgets: array inputs, analyzer inputs (extension data set directly) and errors."""

from __future__ import annotations

import importlib.util
import io
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from spikeinterface_tavrnn import widgets as W  # noqa: E402

REGIONS = np.array(["DG", "CA1", "CA3"])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _matrices(n_windows: int = 10, n_units: int = 9, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrices = rng.normal(0.0, 0.1, (n_windows, n_units, n_units))
    matrices = (matrices + matrices.transpose(0, 2, 1)) / 2
    matrices[:, np.arange(n_units), np.arange(n_units)] = 1.0
    return matrices.astype(np.float32)


def _png_bytes(widget) -> bytes:
    buffer = io.BytesIO()
    widget.figure.savefig(buffer, format="png", dpi=50)
    return buffer.getvalue()


def make_analyzer(
    n_windows: int = 8, n_units: int = 9, z_dim: int = 4, link_scores: bool = True, embeddings: bool = True
):
    """A spike-time-only analyzer whose two extensions hold synthetic data (no connectivity or model code runs).

    Skips the calling test when :mod:`spikeinterface_tavrnn.extensions` cannot be imported.
    """
    extensions = pytest.importorskip("spikeinterface_tavrnn.extensions")
    import spikeinterface.core as sc

    from spikeinterface_tavrnn.analyzer import create_analyzer_from_spikes

    rng = np.random.default_rng(1)
    sorting = sc.generate_sorting(num_units=n_units, durations=[10.0 * n_windows + 10.0], seed=0)
    analyzer = create_analyzer_from_spikes(sorting, unit_regions=REGIONS[np.arange(n_units) % 3])
    matrices = _matrices(n_windows, n_units)
    rows, cols = np.triu_indices(n_units, 1)
    edge_index, edge_weight, offsets = [], [], [0]
    for t in range(n_windows):
        keep = np.abs(matrices[t][rows, cols]) >= 0.1
        i, j = rows[keep], cols[keep]
        edge_index.append(np.stack([np.r_[i, j], np.r_[j, i]]))
        edge_weight.append(np.r_[matrices[t][i, j], matrices[t][i, j]])
        offsets.append(offsets[-1] + 2 * int(keep.sum()))
    format_info = {"package_version": "0.1.0", "data_format_version": extensions.DATA_FORMAT_VERSION}

    connectivity = extensions.ComputeFunctionalConnectivity(analyzer)
    connectivity.params = dict(
        method="sttc", window_s=20.0, step_s=10.0, window_starts_s=None, window_stops_s=None, window_labels=None,
        dt_ms=5.0, bin_ms=50.0, binary=True, max_lag_ms=100.0, method_kwargs={}, backend="fast", threshold=0.1,
        density=None, significance=None, jitter_ms=25.0, n_surrogates=100, seed=0, segment_index=0,
        label_property="auto",
    )  # fmt: skip
    connectivity.data = dict(
        matrices=matrices,
        window_starts=np.arange(n_windows) * 10.0,
        window_stops=np.arange(n_windows) * 10.0 + 20.0,
        window_labels=np.array([f"w{t}" for t in range(n_windows)]),
        edge_index=np.concatenate(edge_index, axis=1).astype(np.int64),
        edge_weight=np.concatenate(edge_weight).astype(np.float32),
        edge_offsets=np.asarray(offsets, dtype=np.int64),
        firing_rates_hz=rng.gamma(2.0, 2.0, (n_windows, n_units)),
        format_info=format_info,
    )
    connectivity.run_info = {"run_completed": True, "runtime_s": 0.5}
    analyzer.extensions["functional_connectivity"] = connectivity
    if not embeddings:
        return analyzer

    model = extensions.ComputeTAVRNNEmbeddings(analyzer)
    model.params = dict(z_dim=z_dim, h_dim=8, epochs=40, attention=True, seed=0, score_links=link_scores)
    attention = np.tril(rng.random((n_windows, n_windows)))
    model.data = dict(
        embeddings=rng.normal(size=(n_windows, n_units, z_dim)).astype(np.float32),
        attention_weights=(attention / attention.sum(axis=1, keepdims=True)).astype(np.float32),
        loss_history=np.geomspace(100.0, 2.0, 40),
        stale_units=np.zeros(n_units, dtype=bool),
        format_info=format_info,
    )
    if link_scores:
        model.data["link_scores"] = {"detection_auc": 0.91, "detection_ap": 0.87, "prediction_auc": 0.8}
    model.run_info = {"run_completed": True, "runtime_s": 3.25}
    analyzer.extensions["tavrnn_embeddings"] = model
    return analyzer


# ---------------------------------------------------------------------------------------------- helpers
def test_select_windows():
    assert W.select_windows(10, None).tolist() == [0, 2, 4, 5, 7, 9]
    assert W.select_windows(3, None).tolist() == [0, 1, 2]
    assert W.select_windows(10, 2).tolist() == [0, 9]
    assert W.select_windows(10, [1, -1]).tolist() == [1, 9]
    with pytest.raises(IndexError):
        W.select_windows(4, [4])
    with pytest.raises(ValueError):
        W.select_windows(4, [0.5])


def test_mean_abs_offdiagonal_and_edge_density():
    matrices = np.array([[[1.0, -0.5], [-0.5, 1.0]], [[1.0, np.nan], [0.25, 1.0]]])
    np.testing.assert_allclose(W.mean_abs_offdiagonal(matrices), [0.5, 0.25])
    # 3 units, both directions stored: 2 directed entries = 1 undirected edge out of 3 pairs
    np.testing.assert_allclose(W.edge_density_from_offsets([0, 2, 2, 8], 3), [1 / 3, 0.0, 1.0])


# ---------------------------------------------------------------------------------------------- connectivity
def test_connectivity_matrices_grouped_by_label():
    matrices = _matrices(n_windows=10, n_units=9)
    labels = REGIONS[np.arange(9) % 3]
    widget = W.plot_connectivity_matrices(matrices, labels=labels, backend="matplotlib")
    dp = widget.data_plot
    assert dp["indices"].tolist() == [0, 2, 4, 5, 7, 9]
    order = np.argsort(labels, kind="stable")
    expected = matrices[0].astype(float)[order][:, order]
    np.fill_diagonal(expected, np.nan)
    np.testing.assert_array_equal(dp["matrices"][0], expected)
    assert dp["group_names"].tolist() == ["CA1", "CA3", "DG"]
    assert dp["group_starts"].tolist() == [0, 3, 6]
    assert dp["vmin"] == -dp["vmax"] and dp["cmap"] == "RdBu_r"
    axes = [ax for ax in widget.figure.axes if ax.get_images()]
    assert len(axes) == 6
    # two boundaries, each drawn horizontally and vertically
    assert len(axes[0].get_lines()) == 4
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["CA1", "CA3", "DG"]
    assert len(_png_bytes(widget)) > 2000


def test_connectivity_matrices_options_and_errors():
    matrices = np.abs(_matrices(n_windows=3, n_units=5))
    widget = W.plot_connectivity_matrices(
        matrices, windows=[2], order_by_label=False, window_starts=[0, 1, 2], window_stops=[1, 2, 3]
    )
    assert widget.data_plot["cmap"] == "viridis" and widget.data_plot["vmin"] == 0.0
    assert widget.data_plot["titles"] == ["window 2\n2-3 s"]
    assert W.plot_connectivity_matrices(matrices[0]).data_plot["matrices"].shape == (1, 5, 5)
    with pytest.raises(ValueError, match="one entry per unit"):
        W.plot_connectivity_matrices(matrices, labels=["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        W.plot_connectivity_matrices(np.zeros((2, 3, 4)))
    fig, axes = plt.subplots(1, 2)
    widget = W.plot_connectivity_matrices(matrices, windows=[0, 1], axes=axes)
    assert widget.figure is fig


# ---------------------------------------------------------------------------------------------- embeddings
def test_embeddings_projection_is_shared_across_windows():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(7, 12, 5))
    labels = REGIONS[np.arange(12) % 3]
    widget = W.plot_embeddings(embeddings, windows=[1, 5], labels=labels, seed=0)
    expected = PCA(n_components=2, random_state=0).fit_transform(embeddings.reshape(-1, 5)).reshape(7, 12, 2)
    np.testing.assert_allclose(widget.data_plot["points"], expected[[1, 5]], atol=1e-8)
    axes = [ax for ax in widget.figure.axes if ax.collections]
    assert len(axes) == 2 and axes[0].get_xlim() == axes[1].get_xlim()
    legend_texts = [t.get_text() for t in widget.figure.legends[0].get_texts()]
    assert legend_texts == ["CA1", "CA3", "DG"]


def test_embeddings_nan_units_and_small_z():
    embeddings = np.random.default_rng(1).normal(size=(3, 6, 1))
    embeddings[:, 2] = np.nan  # a stale unit
    points, label = W.project_embeddings_2d(embeddings)
    assert label == "PC" and points.shape == (3, 6, 2)
    assert np.all(np.isnan(points[:, 2])) and np.all(np.isfinite(points[:, [0, 1, 3, 4, 5]]))
    widget = W.plot_embeddings(embeddings, labels=np.arange(6))
    assert len(_png_bytes(widget)) > 2000


def test_embeddings_tsne_and_fit_on_shown():
    from threadpoolctl import threadpool_limits

    embeddings = np.random.default_rng(2).normal(size=(4, 8, 3))
    # OpenMP threads spin-waiting on a busy machine make this tiny t-SNE take seconds instead of milliseconds
    with threadpool_limits(limits=1):
        widget = W.plot_embeddings(
            embeddings, windows=[0, 3], method="tsne", fit_on="shown", method_kwargs={"max_iter": 250}
        )
    assert widget.data_plot["points"].shape == (2, 8, 2)
    assert widget.data_plot["axis_label"] == "t-SNE "


def test_embeddings_umap_missing_gives_clear_error(monkeypatch):
    if importlib.util.find_spec("umap") is not None:
        monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail
    with pytest.raises(ImportError, match="umap-learn"):
        W.plot_embeddings(np.zeros((2, 4, 3)), method="umap")
    with pytest.raises(ValueError, match="method"):
        W.project_embeddings_2d(np.zeros((2, 4, 3)), method="isomap")


# ---------------------------------------------------------------------------------------------- attention, loss
def test_attention_weights_heatmap():
    attention = np.tril(np.ones((4, 4)))
    attention /= attention.sum(axis=1, keepdims=True)
    widget = W.plot_attention_weights(attention, window_labels=["a", "b", "c", "d"])
    image = widget.ax.get_images()[0]
    np.testing.assert_array_equal(image.get_array(), attention)
    assert widget.ax.get_xlabel() == "key window" and widget.ax.get_ylabel() == "query window"
    assert len(widget.ax.texts) == 16
    assert len(W.plot_attention_weights(np.eye(20)).ax.texts) == 0
    with pytest.raises(ValueError, match="n_windows, n_windows"):
        W.plot_attention_weights(np.zeros((2, 3)))


def test_loss_history_scale():
    widget = W.plot_loss_history(np.geomspace(10.0, 0.1, 30))
    assert widget.ax.get_yscale() == "log"
    assert W.plot_loss_history(np.linspace(5.0, -1.0, 30)).ax.get_yscale() == "linear"
    widget = W.plot_loss_history({"total": [3.0, 2.0, 1.0], "kl": [0.3, 0.2, 0.1]}, log_scale=False)
    assert len(widget.ax.get_lines()) == 2 and widget.ax.get_yscale() == "linear"
    with pytest.raises(ValueError, match="1-D"):
        W.plot_loss_history(np.zeros((2, 2)))


# ---------------------------------------------------------------------------------------------- link scores
def test_link_scores_grouping():
    scores = {"detection_auc": 0.9, "detection_ap": 0.8, "prediction_roc_auc": 0.7, "prediction_ap": 0.6, "n_test": 40}
    widget = W.plot_link_scores(scores)
    assert widget.data_plot["tasks"] == {
        "detection": {"AUC": 0.9, "AP": 0.8},
        "prediction": {"AUC": 0.7, "AP": 0.6},
    }
    heights = sorted(round(p.get_height(), 6) for p in widget.ax.patches)
    assert heights == [0.6, 0.7, 0.8, 0.9]
    assert [t.get_text() for t in widget.ax.get_xticklabels()] == ["detection", "prediction"]
    # names without a recognised metric each get a bar
    unrecognised = W.plot_link_scores({"hits": 3.0, "misses": 1.0}).data_plot["tasks"]
    assert unrecognised == {"hits": {"": 3.0}, "misses": {"": 1.0}}
    with pytest.raises(ValueError):
        W.plot_link_scores({})


def test_window_summary_arrays():
    matrices = _matrices(n_windows=5, n_units=4)
    widget = W.plot_window_summary(matrices, edge_density=[0.1, 0.2, 0.3, 0.2, 0.1])
    axes = [ax for ax in widget.figure.axes if ax.get_lines()]
    assert len(axes) == 2
    np.testing.assert_allclose(axes[1].get_lines()[0].get_ydata(), W.mean_abs_offdiagonal(matrices))
    assert len([ax for ax in W.plot_window_summary(matrices).figure.axes if ax.get_lines()]) == 1


# ---------------------------------------------------------------------------------------------- analyzer input
def test_widgets_from_analyzer():
    analyzer = make_analyzer()
    connectivity = W.plot_connectivity_matrices(analyzer, windows=[0, 7])
    assert connectivity.data_plot["group_names"].tolist() == ["CA1", "CA3", "DG"]
    assert connectivity.data_plot["titles"][1] == "window 7: w7\n70-90 s"
    embeddings = W.plot_embeddings(analyzer, windows=2)
    assert embeddings.data_plot["labels"].tolist() == REGIONS[np.arange(9) % 3].tolist()
    assert embeddings.data_plot["points"].shape == (2, 9, 2)
    attention = W.plot_attention_weights(analyzer)
    assert attention.data_plot["window_labels"][0] == "w0"
    assert W.plot_loss_history(analyzer).ax.get_yscale() == "log"
    assert W.plot_link_scores(analyzer).data_plot["tasks"]["detection"] == {"AUC": 0.91, "AP": 0.87}
    summary = W.plot_window_summary(analyzer)
    assert summary.data_plot["x_label"] == "window centre (s)"
    offsets = analyzer.get_extension("functional_connectivity").data["edge_offsets"]
    np.testing.assert_allclose(summary.data_plot["edge_density"], np.diff(offsets) / (9 * 8))


def test_missing_extensions_errors():
    analyzer = make_analyzer(embeddings=False)
    for plot in (W.plot_embeddings, W.plot_attention_weights, W.plot_loss_history, W.plot_link_scores):
        with pytest.raises(ValueError, match=r"compute it first with analyzer.compute\('tavrnn_embeddings'"):
            plot(analyzer)
    analyzer.extensions.pop("functional_connectivity")
    with pytest.raises(ValueError, match=r"analyzer.compute\('functional_connectivity'"):
        W.plot_connectivity_matrices(analyzer)
    with pytest.raises(ValueError, match="score_links=True"):
        W.plot_link_scores(make_analyzer(link_scores=False))


def test_full_pipeline_widgets():
    """End to end with the real connectivity and model code (skipped until they are importable)."""
    pytest.importorskip("spikeinterface_tavrnn.extensions")
    pytest.importorskip("spikeinterface_tavrnn.connectivity")
    pytest.importorskip("spikeinterface_tavrnn.estimator")
    import spikeinterface.core as sc

    from spikeinterface_tavrnn.analyzer import create_analyzer_from_spikes

    sorting = sc.generate_sorting(num_units=8, durations=[40.0], firing_rates=10.0, seed=0)
    analyzer = create_analyzer_from_spikes(sorting, unit_regions=REGIONS[np.arange(8) % 3])
    analyzer.compute("functional_connectivity", method="sttc", window_s=10.0, step_s=10.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", z_dim=2, h_dim=8, epochs=5, device="cpu")
    n_windows = analyzer.get_extension("functional_connectivity").get_data().shape[0]
    assert W.plot_connectivity_matrices(analyzer).data_plot["matrices"].shape[1:] == (8, 8)
    assert W.plot_embeddings(analyzer).data_plot["points"].shape == (min(n_windows, 6), 8, 2)
    assert W.plot_attention_weights(analyzer).data_plot["attention"].shape == (n_windows, n_windows)
    assert W.plot_loss_history(analyzer).data_plot["curves"]["loss"].size > 0
    W.plot_window_summary(analyzer)


def test_connectivity_matrices_of_thousands_of_units_are_block_averaged_for_display():
    from spikeinterface_tavrnn.widgets import plot_connectivity_matrices
    from spikeinterface_tavrnn.widgets.base import pool_for_display

    rng = np.random.default_rng(0)
    n = 2050  # pooled by 3 -> 684 x 684 (the last block padded)
    matrix = rng.random((n, n)).astype(np.float32)
    matrix = (matrix + matrix.T) / 2
    widget = plot_connectivity_matrices(matrix[None], order_by_label=False, backend="matplotlib")
    image = widget.axes.flat[0].images[0]
    shown = np.asarray(image.get_array())
    assert shown.shape == (684, 684)
    assert image.get_extent() == [-0.5, n - 0.5, n - 0.5, -0.5]  # axes stay in unit coordinates
    off = matrix.copy()
    np.fill_diagonal(off, np.nan)
    np.testing.assert_allclose(shown[1, 2], off[3:6, 6:9].mean(), rtol=1e-5)
    np.testing.assert_allclose(shown[0, 0], np.nanmean(off[:3, :3]), rtol=1e-5)  # diagonal left out
    assert np.isnan(shown[683, 683])  # the last block holds only unit 2049's own (diagonal) entry
    np.testing.assert_allclose(shown[0, 683], off[:3, 2049].mean(), rtol=1e-5)  # padding ignored
    small = rng.random((2, 40, 40)).astype(np.float32)
    assert pool_for_display(small, 1024) is small
