"""Every mistake on the `tavrnn` command line: one line on stderr naming the flag, exit status 2, no traceback, and
nothing computed or written. A traceback only with --debug."""

import gzip
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import spikeinterface.core as si

import spikeinterface_tavrnn.pipeline as pipeline
from spikeinterface_tavrnn.cli import main
from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.outputs import mark_output

FAST = ["--epochs", "2", "--z-dim", "2", "--h-dim", "4", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small recording (8 units, 100 s, one segment) saved as a SpikeInterface folder, and damaged files."""
    root = tmp_path_factory.mktemp("cli_inputs")
    rng = np.random.default_rng(0)
    samples, labels = [], []
    for unit in range(8):
        times = np.sort(rng.uniform(0, 100, 200))
        samples.append((times * 10_000).astype(np.int64))
        labels.append(np.full(times.size, unit))
    order = np.argsort(np.concatenate(samples), kind="stable")
    sorting = si.NumpySorting.from_samples_and_labels(
        [np.concatenate(samples)[order]], [np.concatenate(labels)[order]], 10_000.0
    )
    sorting.save(folder=root / "recording")
    paths = {"recording": root / "recording"}

    def write(name, data):
        path = root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    paths["model_empty"] = write("empty.npz", b"")
    paths["model_garbage"] = write("garbage.npz", b"this is not a model file at all" * 10)
    np.savez(root / "full.npz", weights=np.ones(1000), __meta__=np.array('{"params": {}}'))
    paths["model_truncated"] = write("truncated.npz", (root / "full.npz").read_bytes()[:300])
    np.savez(root / "no_meta.npz", weights=np.ones(3))
    paths["model_no_meta"] = root / "no_meta.npz"
    np.savez(root / "bad_json.npz", __meta__=np.array("{not json"))
    paths["model_bad_json"] = root / "bad_json.npz"
    np.savez(root / "bad_keys.npz", __meta__=np.array('{"something": 1}'))
    paths["model_bad_keys"] = root / "bad_keys.npz"
    with zipfile.ZipFile(root / "wrong_zip.npz", "w") as archive:
        archive.writestr("readme.txt", "a zip of something else")
    paths["model_wrong_zip"] = root / "wrong_zip.npz"
    paths["intervals_empty"] = write("empty.csv", "")
    paths["intervals_header"] = write("header.csv", "start_s,stop_s,label\n")
    paths["intervals_short"] = write("short.csv", "start_s,stop_s,label\n0,10,a\n20\n")
    paths["intervals_text"] = write("text.csv", "start_s,stop_s\n0,ten\n")
    paths["intervals_columns"] = write("columns.csv", "begin,end\n0,1\n")
    paths["intervals_reversed"] = write("reversed.csv", "start_s,stop_s\n10,5\n")
    paths["intervals_binary"] = write("binary.csv", b"\x00\x01\x02\xff\xfe")
    paths["text_input"] = write("notes.txt", "hello")
    payload = gzip.compress(("Well,Electrode,Time (s)\n" + "A1,A1_11,0.5\n" * 2000).encode())
    paths["truncated_gz"] = write("cut_spike_list.csv.gz", payload[: len(payload) // 2])
    paths["a_file"] = write("a_file", "not a folder")
    foreign = root / "my_thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious")
    paths["foreign"] = foreign
    ours = root / "earlier_output"
    ours.mkdir()
    mark_output(ours)
    paths["ours"] = ours
    return paths


# (case id, arguments after `run RECORDING`, text the one-line message must contain)
CASES = [
    ("epochs-0", ["--epochs", "0"], "--epochs"),
    ("z-dim-0", ["--z-dim", "0"], "--z-dim"),
    ("h-dim-0", ["--h-dim", "0"], "--h-dim"),
    ("bptt-windows-0", ["--bptt-windows", "0"], "--bptt-windows"),
    ("attention-window-0", ["--attention-window", "0"], "--attention-window"),
    ("epochs-text", ["--epochs", "ten"], "--epochs"),
    ("segment-out-of-range", ["--segment-index", "1"], "--segment-index"),
    ("segment-negative", ["--segment-index", "-5"], "--segment-index"),
    ("device-unknown", ["--device", "tpu"], "--device"),
    ("model-missing", ["--model", "{root}/missing.npz"], "--model"),
    ("model-empty", ["--model", "{model_empty}"], "--model"),
    ("model-garbage", ["--model", "{model_garbage}"], "--model"),
    ("model-truncated", ["--model", "{model_truncated}"], "--model"),
    ("model-no-meta", ["--model", "{model_no_meta}"], "--model"),
    ("model-bad-json", ["--model", "{model_bad_json}"], "--model"),
    ("model-bad-keys", ["--model", "{model_bad_keys}"], "--model"),
    ("model-wrong-zip", ["--model", "{model_wrong_zip}"], "--model"),
    ("intervals-missing", ["--intervals", "{root}/missing.csv"], "intervals file"),
    ("intervals-empty", ["--intervals", "{intervals_empty}"], "empty"),
    ("intervals-header-only", ["--intervals", "{intervals_header}"], "no intervals"),
    ("intervals-short-row", ["--intervals", "{intervals_short}"], "line 3"),
    ("intervals-text", ["--intervals", "{intervals_text}"], "line 2"),
    ("intervals-columns", ["--intervals", "{intervals_columns}"], "start_s and stop_s"),
    ("intervals-reversed", ["--intervals", "{intervals_reversed}"], "not after"),
    ("intervals-binary", ["--intervals", "{intervals_binary}"], "intervals file"),
    ("window-longer-than-recording", ["--window-s", "500"], "--window-s"),
    ("window-zero", ["--window-s", "0"], "--window-s"),
    ("density-above-1", ["--density", "1.5"], "--density"),
    ("threshold-nan", ["--threshold", "nan"], "--threshold"),
    ("threshold-and-density", ["--threshold", "0.1", "--density", "0.2"], "--density"),
    ("method-unknown", ["--method", "granger"], "--method"),
    ("format-unknown", ["--format", "xls"], "--format"),
    ("sampling-frequency-0", ["--sampling-frequency", "0"], "--sampling-frequency"),
    ("output-current-folder", ["-o", ".", "--overwrite"], "--output"),
    ("output-is-a-file", ["-o", "{a_file}", "--overwrite"], "not a folder"),
    ("output-foreign-folder", ["-o", "{foreign}", "--overwrite"], "did not write"),
    ("output-exists", ["-o", "{ours}"], "--overwrite"),
    ("output-contains-input", ["-o", "{root}", "--overwrite"], "--output"),
]
INPUT_CASES = [
    ("input-missing", "{root}/nothing.h5", "no such file"),
    ("input-unknown-format", "{text_input}", "--format"),
    ("input-truncated-gz", "{truncated_gz}", "truncated"),
]


def _fill(text, files):
    values = {key: str(value) for key, value in files.items()}
    values["root"] = str(files["recording"].parent)
    return text.format(**values)


def _run_and_check(argv, capsys, monkeypatch, expected):
    started = []
    monkeypatch.setattr(pipeline, "_compute", lambda *a, **k: started.append(1))
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own checks
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert not started, "work started before the mistake was reported"
    return lines[0]


@pytest.mark.parametrize("argv, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_mistake_is_one_line_exit_2_before_any_work(argv, expected, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [_fill(a, files) for a in argv]
    output = [] if "-o" in argv else ["-o", str(tmp_path / "out")]
    _run_and_check(["run", str(files["recording"])] + FAST + output + argv, capsys, monkeypatch, expected)
    assert not (tmp_path / "out").exists()
    assert (files["foreign"] / "chapter1.tex").read_text() == "precious"
    assert files["a_file"].read_text() == "not a folder"


@pytest.mark.parametrize("source, expected", [(c[1], c[2]) for c in INPUT_CASES], ids=[c[0] for c in INPUT_CASES])
def test_bad_input_file_is_one_line_exit_2(source, expected, files, tmp_path, capsys, monkeypatch):
    _run_and_check(["run", _fill(source, files), "-o", str(tmp_path / "out")] + FAST, capsys, monkeypatch, expected)
    assert not (tmp_path / "out").exists()


def test_cuda_device_without_cuda_is_refused_at_start(files, tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = _run_and_check(["run", str(files["recording"]), "--device", "cuda", "-o", str(tmp_path / "o")] + FAST,
                          capsys, monkeypatch, "--device")  # fmt: skip
    assert "no CUDA" in line


def test_messages_speak_in_flags_not_python(files, tmp_path, capsys, monkeypatch):
    line = _run_and_check(["run", str(files["text_input"]), "-o", str(tmp_path / "o")], capsys, monkeypatch, "--format")
    assert "format=" not in line
    line = _run_and_check(["run", str(files["recording"]), "--window-s", "900", "-o", str(tmp_path / "o")],
                          capsys, monkeypatch, "--window-s")  # fmt: skip
    assert "window_s" not in line and "size_s" not in line


def test_debug_prints_the_traceback(files, tmp_path):
    with pytest.raises(TavrnnInputError):
        main(["run", str(files["recording"]), "--intervals", str(files["intervals_text"]), "-o", str(tmp_path / "o"), "--debug"])
    result = subprocess.run(
        [sys.executable, "-m", "spikeinterface_tavrnn.cli", "run", str(files["recording"]), "--epochs", "0", "--debug"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "--epochs" in result.stderr  # argparse errors have no traceback to show
    result = subprocess.run(
        [sys.executable, "-m", "spikeinterface_tavrnn.cli", "run", str(files["recording"]), "-o", str(tmp_path / "o"),
         "--intervals", str(files["intervals_text"]), "--debug"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr and "TavrnnInputError" in result.stderr


def test_help_lists_methods_and_output_default(capsys):
    from spikeinterface_tavrnn import available_methods

    for command, default in (("run", "INPUT_NAME_tavrnn"), ("demo", "tavrnn_demo"), ("batch", "tavrnn_batch")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(method in text for method in available_methods())
        assert default in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--no-spike-time-checks" in capsys.readouterr().out
