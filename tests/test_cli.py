"""The `tavrnn` command: run on real MEA files, behaviour intervals, the demo, overwrite protection, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from spikeinterface_tavrnn.analyzer import load_sorting_analyzer
from spikeinterface_tavrnn.cli import main

from _data import shared_data_path

FAST = ["--epochs", "3", "--z-dim", "4", "--h-dim", "8", "--quiet"]


def test_run_on_sjemea_file_writes_analyzer_and_report(tmp_path, capsys):
    source = shared_data_path("hipsc_cultures", "hiPSN_tc06_d12_spikes6sd.h5")
    output = tmp_path / "out"
    assert main(["run", str(source), "--window-s", "120", "--step-s", "60", "--density", "0.2", "-o", str(output)] + FAST) == 0
    printed = capsys.readouterr().out
    assert str(output / "report" / "index.html") in printed
    analyzer = load_sorting_analyzer(output / "analyzer")
    embeddings = analyzer.get_extension("tavrnn_embeddings").get_data()
    assert embeddings.shape[0] == 9 and embeddings.shape[2] == 4
    html = (output / "report" / "index.html").read_text()
    for png in ("connectivity.png", "embedding_states.png", "loss.png"):
        assert png in html and (output / "report" / png).stat().st_size > 1000
    summary = json.loads((output / "report" / "summary.json").read_text())
    assert summary["recording"]["n_windows"] == 9

    # never overwritten without --overwrite, and nothing partial is left behind
    before = sorted(p.name for p in output.iterdir())
    assert main(["run", str(source), "-o", str(output)] + FAST) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in output.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]


@pytest.mark.filterwarnings("ignore:.*seems cut:UserWarning")  # the shipped example is 1 min of an 18-min section
def test_run_with_behaviour_intervals_and_zarr(tmp_path):
    source = shared_data_path("axion_spike_list", "exampleRecording_1012016_plate1_DIV3_spike_list.csv.gz")
    intervals = tmp_path / "epochs.csv"
    intervals.write_text("start_s,stop_s,label\n0,18,baseline\n18,36,stim\n36,54,baseline\n")
    output = tmp_path / "axion"
    args = ["run", str(source), "--intervals", str(intervals), "--method", "pearson", "--bin-ms", "20",
            "--threshold", "0.1", "--analyzer-format", "zarr", "-o", str(output)]
    assert main(args + FAST) == 0
    analyzer = load_sorting_analyzer(output / "analyzer.zarr")
    windows = analyzer.get_extension("functional_connectivity").get_windows()
    assert list(windows.labels) == ["baseline", "stim", "baseline"]


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    assert main(["run", str(unknown), "-o", str(tmp_path / "x")] + FAST) == 2
    error = capsys.readouterr().err
    assert "read" in error and "--format" in error and "format=" not in error and error.count("\n") == 1
    source = shared_data_path("hipsc_cultures", "hiPSN_tc06_d12_spikes6sd.h5")
    assert main(["run", str(source), "--window-s", "5000", "-o", str(tmp_path / "y")] + FAST) == 2
    assert "longer than the recording" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("begin,end\n0,1\n")
    assert main(["run", str(source), "--intervals", str(bad_csv), "-o", str(tmp_path / "z")] + FAST) == 2
    assert "start_s and stop_s" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_demo_runs_without_warnings_and_labels_its_stages(tmp_path):
    args = [sys.executable, "-m", "spikeinterface_tavrnn.cli", "demo", "--output", str(tmp_path / "demo"), "--epochs", "5",
            "--z-dim", "4", "--h-dim", "8"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    for stage in ("connectivity", "TAVRNN fit", "link scoring", "report"):
        assert stage in result.stderr
    assert (tmp_path / "demo" / "report" / "index.html").is_file()
    summary = json.loads((tmp_path / "demo" / "report" / "summary.json").read_text())
    assert summary["recording"]["n_units"] == 31
    assert np.isfinite(summary["model"]["final_loss"])
    quiet = subprocess.run(args[:5] + [str(tmp_path / "demo2")] + args[6:] + ["--quiet"], capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_run_embeds_with_a_saved_cross_recording_model(tmp_path):
    """``--model`` embeds a recording with a model trained elsewhere (structural features), without training."""
    import spikeinterface_tavrnn as st

    path = shared_data_path("hipsc_cultures", "hiPSN_tc146_d21_spikes6sd.h5")
    others = [shared_data_path("hipsc_cultures", name) for name in ("hiPSN_tc65_d27_spikes6sd.h5", "hiPSN_tc230_d42_spikes6sd.h5")]
    graphs = []
    for other in others:
        spikes = st.SpikeTrains.from_sorting(st.read_sorting(other)).active_units(min_spikes=10)
        windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=120.0, step_s=60.0)
        graphs.append(st.compute_connectivity(spikes, windows, method="sttc", verbose=False).to_graphs(density=0.1))
    model = st.TAVRNN(node_features="structural", z_dim=4, h_dim=8, epochs=3, seed=0).fit(graphs)
    model_file = tmp_path / "shared_model.npz"
    model.save(model_file)
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out), "--model", str(model_file), "--quiet"]) == 0
    analyzer = st.load_sorting_analyzer(out / "analyzer")
    ext = analyzer.get_extension("tavrnn_embeddings")
    assert ext.params["model_path"] == str(model_file.resolve())
    graphs_here = analyzer.get_extension("functional_connectivity").get_graphs()
    np.testing.assert_allclose(ext.get_data(), model.transform(graphs_here), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ext.get_data("loss_history"), model.loss_history_)  # not retrained
    assert main(["run", str(path), "-o", str(tmp_path / "x"), "--model", str(tmp_path / "missing.npz")]) == 2


def test_fit_trains_one_model_on_many_recordings(tmp_path):
    from spikeinterface_tavrnn.estimator import TAVRNN

    folder = shared_data_path("hipsc_cultures")
    pattern = str(folder / "hiPSN_tc146_d*_spikes6sd.h5")  # 4 recordings of one culture
    out = tmp_path / "models" / "shared.npz"
    args = ["fit", pattern, "-o", str(out), "--epochs", "3", "--h-dim", "8", "--z-dim", "4", "--quiet",
            "--recordings-per-step", "2"]  # fmt: skip
    assert main(args) == 0
    model = TAVRNN.load(out)
    assert model.n_recordings_ == 4 and model.feature_kind_ == "structural"
    assert "log_rate" in model.structural_features_  # graphs from spikes carry firing rates
    assert main(args) == 2  # exists: refused without --overwrite
    assert main(args + ["--overwrite"]) == 0
    assert main(["fit", str(folder / "nothing*.h5"), "-o", str(tmp_path / "m.npz")]) == 2
    assert not list((tmp_path / "models").glob(".*partial*"))
