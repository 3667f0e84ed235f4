"""PipelineOptions and run_pipeline: one set of defaults everywhere, results as values, outputs written safely."""

import inspect

import numpy as np
import pytest

import spikeinterface.core as si
from spikeinterface.core import get_default_analyzer_extension_params

from spikeinterface_tavrnn.cli import build_parser
from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.estimator import TAVRNN
from spikeinterface_tavrnn.outputs import MARKER_NAME
from spikeinterface_tavrnn.pipeline import PipelineOptions, run_pipeline

FAST = dict(window_s=25.0, step_s=25.0, epochs=2, z_dim=2, h_dim=4, seed=0, quiet=True)


def _sorting(n_units=6, duration_s=100.0, seed=0):
    rng = np.random.default_rng(seed)
    samples = [np.sort(rng.uniform(0, duration_s, 150)) for _ in range(n_units)]
    labels = np.concatenate([np.full(s.size, u) for u, s in enumerate(samples)])
    samples = (np.concatenate(samples) * 10_000).astype(np.int64)
    order = np.argsort(samples, kind="stable")
    return si.NumpySorting.from_samples_and_labels([samples[order]], [labels[order]], 10_000.0)


def test_class_extension_cli_and_options_defaults_agree():
    """The model defaults exist once (the TAVRNN signature): the extension, the CLI and PipelineOptions agree."""
    model = {
        name: p.default for name, p in inspect.signature(TAVRNN).parameters.items()
        if name not in ("verbose", "num_threads", "recordings_per_step")
    }  # fmt: skip
    extension = get_default_analyzer_extension_params("tavrnn_embeddings")
    options = PipelineOptions()
    cli = vars(build_parser().parse_args(["run", "recording.h5"]))
    for name, default in model.items():
        assert extension[name] == default, name
        assert getattr(options.model, name) == default, name
        if name in cli:
            assert cli[name] == default, name
    cli_model_flags = {"z_dim", "h_dim", "epochs", "attention", "attention_window", "node_features", "reconstruction",
                       "bptt_windows", "preset", "device", "seed", "train_recurrence", "decoder", "edge_dropout",
                       "use_edge_weight"}  # fmt: skip
    assert cli_model_flags <= set(cli) and cli_model_flags <= set(model)
    from spikeinterface_tavrnn.cli import _options_from_args

    trained = build_parser().parse_args(["run", "recording.h5", "--train-recurrence"])
    assert _options_from_args(trained).model.train_recurrence is True
    distance = build_parser().parse_args(["run", "recording.h5", "--decoder", "distance"])
    assert _options_from_args(distance).model.decoder == "distance"
    no_dropout = build_parser().parse_args(["run", "recording.h5", "--edge-dropout", "0"])
    assert _options_from_args(no_dropout).model.edge_dropout == 0.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "recording.h5", "--edge-dropout", "1"])
    for flag, expected in (("--attention", True), ("--no-attention", False)):
        parsed = build_parser().parse_args(["run", "recording.h5", flag])
        assert _options_from_args(parsed).model.attention is expected, flag
    assert extension["score_links"] is False and cli["score_links"] is False

    connectivity = get_default_analyzer_extension_params("functional_connectivity")
    assert connectivity["density"] == 0.1  # reported as stored
    flat = options.flat()
    for name in ("method", "window_s", "step_s", "threshold", "density", "significance", "dt_ms", "bin_ms",
                 "check_spike_times"):  # fmt: skip
        assert flat[name] == connectivity[name], name
        assert cli[name] == connectivity[name], name
    assert flat["segment_index"] == connectivity["segment_index"] and cli["segment_index"] is None


def test_options_from_flat_names_and_unknown_names():
    options = PipelineOptions.from_dict(dict(method="pearson", threshold=0.2, epochs=7), output="somewhere")
    assert options.connectivity.method == "pearson" and options.graph.threshold == 0.2
    assert options.model.epochs == 7 and str(options.output.folder) == "somewhere"
    assert options.connectivity_params()["density"] == 0.1  # the extension drops it when a threshold is given
    with pytest.raises(TavrnnInputError, match="unknown pipeline option 'epoch'"):
        PipelineOptions.from_dict(epoch=3)
    with pytest.raises(TavrnnInputError, match="epochs"):
        PipelineOptions.from_dict(epochs=0).validate()


def test_run_pipeline_returns_values_and_replaces_only_its_own_output(tmp_path):
    sorting = _sorting()
    in_memory = run_pipeline(sorting, PipelineOptions.from_dict(FAST))
    assert in_memory.folder is None and in_memory.summary["n_windows"] == 3 and in_memory.summary["n_units"] == 6
    assert np.isfinite(in_memory.summary["final_loss"])
    params = in_memory.analyzer.get_extension("functional_connectivity").params
    assert params["density"] == 0.1 and params["threshold"] is None

    folder = tmp_path / "result"
    first = run_pipeline(sorting, PipelineOptions.from_dict(FAST, output=folder))
    assert (folder / MARKER_NAME).is_file() and first.report_index.is_file()
    assert first.analyzer.get_extension("tavrnn_embeddings").get_data().shape == (3, 6, 2)
    with pytest.raises(TavrnnInputError, match="overwrite"):
        run_pipeline(sorting, PipelineOptions.from_dict(FAST, output=folder))
    again = run_pipeline(sorting, PipelineOptions.from_dict({**FAST, "threshold": 0.05}, output=folder, overwrite=True))
    assert again.analyzer.get_extension("functional_connectivity").params["threshold"] == 0.05
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["result"]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(TavrnnInputError, match="did not write"):
        run_pipeline(sorting, PipelineOptions.from_dict(FAST, output=mine, overwrite=True))
    assert (mine / "notes.txt").read_text() == "keep"
