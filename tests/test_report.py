"""Tests of the HTML report writer."""

from __future__ import annotations

import json
from html.parser import HTMLParser
import re
import struct

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from spikeinterface_tavrnn import widgets
from spikeinterface_tavrnn.report import report_summary, write_report

from test_widgets import make_analyzer  # noqa: E402  (tests/ is on sys.path under pytest's default import mode)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_FIGURES = [
    "state_similarity.png",
    "embedding_states.png",
    "role_change.png",
    "attention.png",
    "connectivity.png",
    "window_summary.png",
    "loss.png",
]
MARKER = ".spikeinterface_tavrnn_output"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def analyzer():
    return make_analyzer()


@pytest.fixture(scope="module")
def report(analyzer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports") / "report"
    extra = {
        "Demo <cohort>": [{"well": "A1", "note": "<b>bold</b> & co"}, {"well": "A2", "n": 3}],
        "Settings": {"seed": 0},
    }
    index = write_report(analyzer, folder, title="Plate <1> & friends", extra_tables=extra)
    return folder, index


def test_figures_are_valid_pngs(report):
    folder, index = report
    assert index == folder / "index.html"
    for name in ALL_FIGURES + ["link_scores.png"]:
        path = folder / name
        assert path.stat().st_size > 5000, name
        width, height = _png_size(path)
        assert width > 300 and height > 200, name


def test_index_references_figures_and_escapes(report):
    folder, index = report
    text = index.read_text(encoding="utf-8")
    for name in ALL_FIGURES + ["link_scores.png"]:
        assert f'<img src="{name}"' in text
    assert set(re.findall(r'src="([^"]+)"', text)) == set(ALL_FIGURES + ["link_scores.png"])
    assert "<title>Plate &lt;1&gt; &amp; friends</title>" in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text and "<b>bold</b>" not in text
    assert "<h2>Demo &lt;cohort&gt;</h2>" in text
    assert "<style>" in text and "http" not in text  # self-contained
    assert "3.25" in text  # training time
    assert "detection_auc" in text
    expected_files = ALL_FIGURES + ["link_scores.png", "index.html", "summary.json", MARKER]
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected_files)
    assert not [p for p in folder.parent.iterdir() if ".partial-" in p.name or ".previous-" in p.name]


def test_summary_json_matches_analyzer(report, analyzer):
    folder, _ = report
    summary = json.loads((folder / "summary.json").read_text())
    connectivity = analyzer.get_extension("functional_connectivity")
    matrices = connectivity.get_data()
    n_windows, n_units = matrices.shape[:2]
    assert summary["title"] == "Plate <1> & friends"
    assert summary["recording"]["n_units"] == n_units == 9
    assert summary["recording"]["n_windows"] == n_windows == 8
    assert summary["recording"]["unit_label_counts"] == {"CA1": 3, "CA3": 3, "DG": 3}
    assert summary["connectivity"]["method"] == "sttc"
    assert summary["connectivity"]["window_s"] == 20.0 and summary["connectivity"]["step_s"] == 10.0
    assert summary["connectivity"]["window_step_median_s"] == 10.0
    assert summary["connectivity"]["threshold"] == 0.1
    assert summary["connectivity"]["runtime_s"] == 0.5
    model = summary["model"]
    assert model["z_dim"] == 4 and model["embeddings_shape"] == [8, 9, 4]
    loss = analyzer.get_extension("tavrnn_embeddings").get_loss_history()
    assert model["final_loss"] == pytest.approx(loss[-1]) and model["epochs_run"] == loss.size
    assert model["training_time_s"] == 3.25
    assert model["params"]["h_dim"] == 8
    assert summary["link_scores"] == {"detection_auc": 0.91, "detection_ap": 0.87, "prediction_auc": 0.8}
    offsets = connectivity.data["edge_offsets"]  # the stored layout, as an independent reference
    rows = summary["windows"]
    assert [row["index"] for row in rows] == list(range(n_windows))
    np.testing.assert_allclose([row["edge_density"] for row in rows], np.diff(offsets) / (n_units * (n_units - 1)))
    np.testing.assert_array_equal([row["n_edges"] for row in rows], np.diff(offsets) // 2)
    np.testing.assert_allclose([row["mean_abs_connectivity"] for row in rows], widgets.mean_abs_offdiagonal(matrices))
    np.testing.assert_allclose([row["start_s"] for row in rows], connectivity.data["window_starts"])
    assert rows[3]["label"] == "w3"
    assert summary["extra_tables"]["Settings"] == {"seed": 0}
    assert summary["figures"]["Temporal attention"] == "attention.png"


def test_no_attention_figure_without_attention(tmp_path):
    # the default model (VGRNN) stores the identity: every window attends to itself only, so there is nothing to draw
    analyzer = make_analyzer(n_windows=4, n_units=5)
    ext = analyzer.get_extension("tavrnn_embeddings")
    ext.data["attention_weights"] = np.eye(4, dtype=np.float32)
    ext.params["attention"] = False
    write_report(analyzer, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert "Temporal attention" not in summary["figures"] and not (tmp_path / "report" / "attention.png").exists()
    assert "state_similarity.png" in summary["figures"].values()
    assert "Attention is" not in (tmp_path / "report" / "index.html").read_text()


def test_refuses_to_overwrite(report, analyzer):
    folder, _ = report
    before = (folder / "index.html").read_bytes()
    with pytest.raises(ValueError, match="overwrite"):
        write_report(analyzer, folder)
    assert (folder / "index.html").read_bytes() == before


def test_overwrite_without_embeddings(tmp_path):
    folder = tmp_path / "report"
    analyzer = make_analyzer(embeddings=False, n_windows=3, n_units=4)
    write_report(analyzer, folder)
    (folder / "stale.txt").write_text("old")
    write_report(analyzer, folder, overwrite=True)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([MARKER, "connectivity.png", "index.html", "summary.json", "window_summary.png"])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["model"] is None and summary["link_scores"] is None and summary["title"] == "TAVRNN report"
    assert "No tavrnn_embeddings extension" in (folder / "index.html").read_text()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["report"]


def test_overwrite_refuses_a_folder_the_package_did_not_write(tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="report folder"):
        write_report(make_analyzer(embeddings=False, n_windows=3, n_units=4), folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("existing", [False, True])
def test_failure_leaves_no_partial_folder(tmp_path, monkeypatch, existing):
    analyzer = make_analyzer(n_windows=3, n_units=4)
    folder = tmp_path / "report"
    if existing:
        folder.mkdir()
        (folder / MARKER).write_text("{}")
        (folder / "index.html").write_text("previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    # the attention figure comes after three figures have been written
    monkeypatch.setattr(widgets, "plot_attention_weights", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(analyzer, folder, overwrite=existing)
    if existing:
        assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "index.html"])
        assert (folder / "index.html").read_text() == "previous report"
        assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["report"]
    else:
        assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_errors(tmp_path, analyzer):
    bare = make_analyzer(n_windows=2, n_units=3)
    bare.extensions.clear()
    with pytest.raises(ValueError, match=r"analyzer.compute\('functional_connectivity'"):
        write_report(bare, tmp_path / "a")
    with pytest.raises(TypeError, match="extra_tables"):
        write_report(analyzer, tmp_path / "b", extra_tables=[{"a": 1}])
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_report_summary_is_json_safe():
    analyzer = make_analyzer(n_windows=2, n_units=3)
    analyzer.get_extension("functional_connectivity").data["matrices"][:] = np.nan
    summary = report_summary(analyzer)
    assert all(row["mean_abs_connectivity"] is None for row in summary["windows"])
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize("attention", [False, True])
def test_full_pipeline_report(tmp_path, attention):
    """End to end with the real connectivity and model code; the default model (no attention) has no attention
    figure."""
    pytest.importorskip("spikeinterface_tavrnn.extensions")
    pytest.importorskip("spikeinterface_tavrnn.connectivity")
    pytest.importorskip("spikeinterface_tavrnn.estimator")
    import spikeinterface.core as sc

    from spikeinterface_tavrnn.analyzer import create_analyzer_from_spikes

    sorting = sc.generate_sorting(num_units=6, durations=[30.0], firing_rates=10.0, seed=0)
    analyzer = create_analyzer_from_spikes(sorting, unit_regions=["a", "a", "b", "b", "c", "c"])
    analyzer.compute("functional_connectivity", method="sttc", window_s=10.0, step_s=10.0, density=0.3)
    analyzer.compute("tavrnn_embeddings", z_dim=2, h_dim=8, epochs=5, device="cpu", attention=attention)
    index = write_report(analyzer, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["recording"]["n_units"] == 6
    assert summary["model"]["epochs_run"] == len(analyzer.get_extension("tavrnn_embeddings").get_loss_history())
    for name in ALL_FIGURES:
        if name == "attention.png" and not attention:
            assert f'src="{name}"' not in index.read_text() and not (tmp_path / "report" / name).exists()
            continue
        assert f'src="{name}"' in index.read_text()
        _png_size(tmp_path / "report" / name)


class _PageParser(HTMLParser):
    """Checks that every opened element is closed in order (void elements excepted) and collects image sources."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_page_is_well_formed_and_every_image_exists(report):
    folder, index = report
    parser = _PageParser()
    text = index.read_text(encoding="utf-8")
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert text.startswith("<!DOCTYPE html>")
    assert parser.images and all((folder / src).is_file() for src in parser.images)
    # findings come first, the parameters last
    assert text.index("What the recording shows") < text.index("<figure") < text.index("Appendix: parameters")
    assert "dt_ms (used)" in text  # the STTC coincidence window actually used is shown


def test_findings_with_labelled_windows(tmp_path):
    """Windows with repeated labels: the decoding comparison runs and its verdict is stated plainly."""
    analyzer = make_analyzer(n_windows=16, n_units=6)
    connectivity = analyzer.get_extension("functional_connectivity")
    labels = np.array(["run", "rest"] * 8)
    connectivity.data["window_labels"] = labels
    # embeddings that carry the label; rates that do not
    embeddings = analyzer.get_extension("tavrnn_embeddings")
    rng = np.random.default_rng(0)
    embeddings.data["embeddings"] = (rng.normal(size=(16, 6, 4)) + 3.0 * (labels == "run")[:, None, None]).astype(
        np.float32
    )
    index = write_report(analyzer, tmp_path / "report", n_permutations=9)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    decoding = summary["findings"]["decoding"]
    assert decoding["balanced_accuracy"]["embeddings"] > 0.9
    assert decoding["chance"] == 0.5
    assert set(decoding["balanced_accuracy"]) == {"embeddings", "firing_rates", "connectivity", "embeddings+rates"}
    first = summary["findings"]["sentences"][0]
    assert first.startswith("The graph adds information beyond firing rates here") or first.startswith(
        "The graph does not add information beyond firing rates here"
    )
    assert "McNemar" in first and decoding["adds_information"] == (
        decoding["gain_over_rates"] > 0 and decoding["gain_p_value"] <= 0.05 and decoding["paired_p_value"] <= 0.05
    )
    assert not any("{" in sentence or "}" in sentence for sentence in summary["findings"]["sentences"])  # all filled
    assert 'src="decoding.png"' in index.read_text()
    state = summary["findings"]["state"]
    assert state["same_label_similarity"] > state["different_label_similarity"]
