"""Batch processing of several real recordings on a local Dask cluster."""

import json
import shutil

import pytest

from spikeinterface_tavrnn.batch import expand_inputs, output_folder_for, run_batch
from spikeinterface_tavrnn.cli import main

from _data import shared_data_path

FAST = dict(method="sttc", window_s=100.0, step_s=100.0, epochs=3, z_dim=4, h_dim=8, density=0.2)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    names = ["hiPSN_tc06_d12_spikes6sd.h5", "hiPSN_tc153_d89_spikes6sd.h5", "hiPSN_tc223_d57_spikes6sd.h5"]
    for name in names:
        shutil.copy(shared_data_path("hipsc_cultures", name), folder / name)
    (folder / "broken.h5").write_bytes(b"this is not an HDF5 file")
    return folder


def test_batch_on_local_cluster_reports_failures_and_skips_finished(recordings, tmp_path):
    output = tmp_path / "out"
    rows = run_batch(str(recordings / "*.h5"), output, options=FAST, n_workers=2, verbose=False)
    assert [row["status"] for row in rows] == ["failed", "done", "done", "done"]  # sorted: broken.h5 first
    assert "broken.h5" in rows[0]["input"] and rows[0]["error"]
    for row in rows[1:]:
        assert (output_folder_for(recordings / row["input"].split("/")[-1], output) / "report" / "index.html").is_file()
        assert row["n_units"] > 0 and row["n_windows"] >= (6 if "tc06" in row["input"] else 2)
    table = (output / "batch_summary.csv").read_text().splitlines()
    assert table[0].startswith("input,output,status,time_s") and len(table) == 5

    again = run_batch(str(recordings / "*.h5"), output, options=FAST, n_workers=1, verbose=False)
    assert [row["status"] for row in again] == ["failed", "skipped", "skipped", "skipped"]
    assert json.loads((output / "batch_summary.json").read_text())[1]["status"] == "skipped"


def test_batch_command_exit_status(recordings, tmp_path, capsys):
    good = str(recordings / "hiPSN_tc06_d12_spikes6sd.h5")
    args = ["batch", good, "--output", str(tmp_path / "b"), "--epochs", "2", "--window-s", "100", "--step-s", "100",
            "--n-workers", "1", "--quiet"]
    assert main(args) == 0
    assert "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    assert main(args[:2] + [str(recordings / "broken.h5")] + args[2:]) == 1
    assert "failed:" in capsys.readouterr().err


def test_expand_inputs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No input matches"):
        expand_inputs(str(tmp_path / "*.h5"))


def test_batch_task_embeds_with_a_shared_model(tmp_path):
    """A batch task given ``model`` embeds with the saved model instead of training one per recording."""
    import numpy as np

    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.batch import process_recording

    rng = np.random.default_rng(0)
    graphs = []
    for n in (12, 20):
        upper = [np.triu(rng.random((n, n)) < 0.3, 1) for _ in range(3)]
        graphs.append(st.GraphSequence.from_adjacency([(u | u.T).astype(float) for u in upper],
                                                      firing_rates_hz=rng.gamma(2.0, 2.0, (3, n))))  # fmt: skip
    model = st.TAVRNN(node_features="structural", z_dim=4, h_dim=8, epochs=2, seed=0).fit(graphs)
    model.save(tmp_path / "shared.npz")
    source = shared_data_path("hipsc_cultures", "hiPSN_tc06_d12_spikes6sd.h5")
    row = process_recording(source, tmp_path / "out", {"model_path": tmp_path / "shared.npz", "quiet": True})
    assert row["status"] == "done", row.get("error")
    analyzer = st.load_sorting_analyzer(tmp_path / "out" / "analyzer")
    extension = analyzer.get_extension("tavrnn_embeddings")
    assert extension.params["model_path"] == str((tmp_path / "shared.npz").resolve())
    assert extension.get_data().shape[2] == 4


def _synthetic_recordings(folder, n=2):
    import numpy as np
    import spikeinterface.core as si

    paths = []
    for k in range(n):
        rng = np.random.default_rng(k)
        samples = [np.sort(rng.uniform(0, 60, 120)) for _ in range(5)]
        labels = np.concatenate([np.full(s.size, u) for u, s in enumerate(samples)])
        samples = (np.concatenate(samples) * 10_000).astype(np.int64)
        order = np.argsort(samples, kind="stable")
        sorting = si.NumpySorting.from_samples_and_labels([samples[order]], [labels[order]], 10_000.0)
        paths.append(folder / f"rec{k}")
        sorting.save(folder=paths[-1])
    return paths


def test_batch_results_are_values_and_a_rerun_resumes(tmp_path):
    """Rows come from the pipeline's results; a rerun after a run killed mid-replace restores and completes it."""
    from spikeinterface_tavrnn.pipeline import PipelineOptions

    paths = _synthetic_recordings(tmp_path)
    options = PipelineOptions.from_dict(window_s=20.0, step_s=20.0, epochs=2, z_dim=2, h_dim=4, seed=0)
    output = tmp_path / "out"
    rows = run_batch([str(p) for p in paths], output, options=options, n_workers=1, verbose=False)
    assert [row["status"] for row in rows] == ["done", "done"], [row["error"] for row in rows]
    assert all(row["n_windows"] == 2 and row["n_units"] == 5 for row in rows)
    table = (output / "batch_summary.csv").read_text().splitlines()
    assert len(table) == 3 and not [p for p in output.iterdir() if p.name.startswith(".batch_summary")]

    # a killed run left rec0's old output set aside (not yet replaced) and removed rec1's output entirely
    (output / "rec0").rename(output / ".rec0.previous-0123456789ab")
    shutil.rmtree(output / "rec1")
    again = run_batch([str(p) for p in paths], output, options=options, n_workers=1, verbose=False)
    # rec0's finished output is put back and reused, not recomputed; rec1 is computed again
    assert [row["status"] for row in again] == ["skipped", "done"], [row["error"] for row in again]
    assert sorted(p.name for p in output.iterdir() if not p.name.endswith(".lock")) == [
        "batch_summary.csv", "batch_summary.json", "rec0", "rec1"]  # fmt: skip
    third = run_batch([str(p) for p in paths], output, options=options, n_workers=1, verbose=False)
    assert [row["status"] for row in third] == ["skipped", "skipped"]
    assert [row["n_windows"] for row in third] == [2, 2]  # the numbers of a finished run, from its analyzer


def test_batch_does_not_import_the_command_line():
    import subprocess
    import sys

    code = "import sys, spikeinterface_tavrnn.batch; print('spikeinterface_tavrnn.cli' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
