"""Reliability ledger: the failure cases of the reliability issue, run end to end as a user would.

Every case runs in its own child process (the ``tavrnn`` command line, or a few lines of Python) on copies of
damaged inputs in a temporary folder (shared data is never modified), and its outcome is classified from what a
user sees:

- ``clear error``: exit status 2 and one ``error`` line, no traceback;
- ``warn and work``: exit status 0, a warning that names the problem, and a correct result;
- ``works``: a correct result (for cases that are not mistakes, e.g. a rerun);
- ``traceback``: a Python traceback reached the user;
- ``hang``: no end within the time limit;
- ``silent wrong result``: exit status 0 and no warning, but the result is wrong or the input was a mistake;
- ``data lost``: something that was on disk before the run (the user's files, a previous output or model) is
  gone or changed;
- ``debris``: hidden partial folders or temporary files that no later run removes;
- ``unclear error``: any other failure (another exit status, several lines, no message).

Each case says which outcomes are acceptable; the table marks the others ``FAIL``. Usage::

    python benchmarks/reliability_cases.py              # all cases, 4 at a time
    python benchmarks/reliability_cases.py -k model -j 2  # the cases whose name contains "model"

Shared data is read from ``$TAVRNN_SHARED_DATA`` (default: the first ``shared/data`` folder above the repository). The package
imported is the one of this checkout (``PYTHONPATH`` is set to the repository root).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAVRNN_SHARED_DATA", "")) if os.environ.get("TAVRNN_SHARED_DATA") else next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data"
)
MARKER = ".spikeinterface_tavrnn_output"

#: Settings that keep one run short: pearson connectivity, 60 s windows of a 600 s recording, 2 epochs.
FAST = ["--method", "pearson", "--window-s", "60", "--step-s", "60", "--epochs", "2", "--z-dim", "4",
        "--h-dim", "8", "-q"]

ERROR_OUTCOMES = {"clear error"}
WARN_OUTCOMES = {"warn and work", "clear error"}
WORK_OUTCOMES = {"works", "warn and work"}


@dataclass
class Result:
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool = False

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Outcome:
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Case:
    name: str
    what: str
    accept: set
    run: Callable[[Path, "Context"], Outcome]


@dataclass
class Context:
    timeout_s: float
    cuda: bool
    unshare: bool
    root: bool
    extra: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, what: str, accept: set = ERROR_OUTCOMES):
    def register(function):
        CASES.append(Case(name, what, set(accept), function))
        return function

    return register


# ----------------------------------------------------------------------------------------------- running


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def launch(command: list[str], cwd: Path, timeout_s: float, env: dict | None = None) -> Result:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env or environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout_s)
        return Result(process.returncode, out, err, time.perf_counter() - start)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return Result(None, out, err, time.perf_counter() - start, timed_out=True)


def tavrnn_command(*args) -> list[str]:
    return [sys.executable, "-m", "spikeinterface_tavrnn.cli", *map(str, args)]


def cli(tmp: Path, ctx: Context, *args, timeout_s: float | None = None) -> Result:
    return launch(tavrnn_command(*args), tmp, timeout_s or ctx.timeout_s)


PY_WRAPPER = """
import sys, traceback, warnings
warnings.simplefilter("default")
for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning):
    warnings.simplefilter("ignore", category)
try:
    exec(compile(sys.argv[1], "<case>", "exec"), {"__name__": "__case__"})
except Exception as error:
    if isinstance(error, ValueError):
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)
    traceback.print_exc()
    sys.exit(1)
"""


def python(tmp: Path, ctx: Context, code: str, timeout_s: float | None = None) -> Result:
    return launch([sys.executable, "-c", PY_WRAPPER, textwrap.dedent(code)], tmp, timeout_s or ctx.timeout_s)


NOISE = ("DeprecationWarning", "FutureWarning", "ResourceWarning", "PendingDeprecationWarning")


def warning_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if "warn" in line.lower() and not any(noise in line for noise in NOISE)]


def warned(result: Result) -> bool:
    return bool(warning_lines(result.err))


def first_line(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower() and line.strip():
            return line.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify(result: Result, expect_error: bool = True, lost: str = "", wrong: str = "", mention: str = "") -> Outcome:
    """The outcome a user sees; ``lost`` / ``wrong`` are what the case found on disk or in the result."""
    if result.timed_out:
        return Outcome("hang", f"no end after {result.seconds:.0f} s", result.seconds)
    if lost:
        return Outcome("data lost", lost, result.seconds)
    if "Traceback (most recent call last)" in result.text:
        lines = [line for line in result.err.splitlines() if line.strip()]
        return Outcome("traceback", lines[-1].strip() if lines else "", result.seconds)
    if result.rc == 2:
        errors = [line for line in result.err.splitlines() if "error" in line.lower()]
        if len(errors) == 1 and len(errors[0]) > len("tavrnn: error: ") + 10:
            if mention and not re.search(mention, errors[0], re.IGNORECASE):
                return Outcome("unclear error", f"does not say {mention!r}: {errors[0].strip()}", result.seconds)
            return Outcome("clear error", errors[0].strip(), result.seconds)
        return Outcome("unclear error", f"rc=2, {len(errors)} error lines: {first_line(result.err)}", result.seconds)
    if result.rc == 0:
        if wrong:
            return Outcome("silent wrong result" if not warned(result) else "unclear error",
                           wrong + (" (with a warning)" if warned(result) else ""), result.seconds)
        if expect_error:
            if warned(result):
                return Outcome("warn and work", first_line_matching(result.err, "warn"), result.seconds)
            return Outcome("silent wrong result", "accepted without an error or a warning", result.seconds)
        if warned(result):
            return Outcome("warn and work", first_line_matching(result.err, "warn"), result.seconds)
        return Outcome("works", "", result.seconds)
    return Outcome("unclear error", f"rc={result.rc}: {first_line(result.err)}", result.seconds)


def first_line_matching(text: str, word: str) -> str:
    lines = warning_lines(text)
    return lines[0] if lines else ""


# ----------------------------------------------------------------------------------------------- inputs


def write_sjemea(path: Path, trains: list[np.ndarray], recording_time: tuple | None = (0.0, 600.0)) -> Path:
    import h5py

    with h5py.File(path, "w") as h5:
        h5["spikes"] = np.concatenate(trains) if trains else np.zeros(0)
        h5["sCount"] = np.array([len(t) for t in trains])
        h5["names"] = np.array([f"A1_{11 + i}".encode() for i in range(len(trains))])
        if recording_time is not None:
            h5["recordingtime"] = np.array(recording_time, dtype=float)
    return path


def synthetic_trains(n_units: int = 12, duration_s: float = 600.0, seed: int = 0) -> list[np.ndarray]:
    """Poisson units that share a common drive (so connectivity has structure), on a 25 kHz grid."""
    rng = np.random.default_rng(seed)
    common = rng.uniform(0, duration_s, 600)
    trains = []
    for _ in range(n_units):
        own = rng.uniform(0, duration_s, int(rng.integers(300, 900)))
        shared = common[rng.random(common.size) < 0.5]
        t = np.unique(np.round(np.concatenate([own, shared]) * 25000) / 25000)
        trains.append(t[(t > 0) & (t < duration_s)])
    return trains


def recording(tmp: Path, name: str = "rec.h5", **kwargs) -> Path:
    return write_sjemea(tmp / name, synthetic_trains(), **kwargs)


def valid_model(tmp: Path, ctx: Context | None = None) -> Path:
    """A copy of a model trained by ``tavrnn fit`` on the synthetic recording (trained once per ledger)."""
    cached = Path(CACHE["model"])
    target = tmp / "model.npz"
    shutil.copyfile(cached, target)
    return target


CACHE: dict = {}


def train_model(workdir: Path, ctx: Context) -> None:
    rec = recording(workdir, "fit.h5")
    result = cli(workdir, ctx, "fit", rec, "-o", workdir / "trained_model.npz", *FAST)
    if result.rc != 0:
        raise RuntimeError(f"tavrnn fit failed: {first_line(result.err)}")
    CACHE["model"] = str(workdir / "trained_model.npz")


def rewrite_model(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    with np.load(source, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    change(arrays)
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)
    return target


def small_axion(tmp: Path, name: str = "plate_spike_list.csv", wells: tuple = ("C6", "D3", "D6")) -> tuple[Path, list]:
    """A plain-text Axion spike list with the real header block and the rows of a few wells; returns its lines."""
    source = SHARED / "axion_spike_list" / "exampleRecording_1012016_plate1_DIV3_spike_list.csv.gz"
    with gzip.open(source, "rt", newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        if fields[0].strip() or (len(fields) >= 4 and fields[3].split("_")[0] in wells):
            kept.append(line)  # the header block (its rows carry spikes too) and the rows of a few wells
    target = tmp / name
    target.write_text("".join(kept))
    return target, kept


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative path -> bytes), to tell whether a run changed or lost any."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {".": folder.read_bytes()}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def lost_between(before: dict, after: dict, what: str) -> str:
    missing = [name for name in before if name not in after]
    changed = [name for name in before if name in after and after[name] != before[name]]
    if missing or changed:
        return f"{what}: {len(missing)} files gone, {len(changed)} changed (e.g. {(missing + changed)[0]})"
    return ""


def make_output(tmp: Path, ctx: Context, name: str = "out") -> Path:
    """A finished output of the current code (for cases that replace one), made once and copied."""
    cached = ctx.extra.get("output")
    target = tmp / name
    if cached is None or not Path(cached).exists():
        result = cli(tmp, ctx, "run", recording(tmp, "base.h5"), "-o", target, *FAST)
        if result.rc != 0:
            raise RuntimeError(f"the base run failed: {first_line(result.err)}")
        keep = Path(ctx.extra["workdir"]) / "finished_output"
        if not keep.exists():
            shutil.copytree(target, keep, symlinks=True)
        ctx.extra["output"] = str(keep)
    else:
        shutil.copytree(cached, target, symlinks=True)
    return target


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(f".{name}.") and not p.name.endswith(".lock"))


# ----------------------------------------------------------------------------------------------- cases: baseline


@case("baseline_run", "an ordinary run on a synthetic 12-unit, 600 s sjemea file", WORK_OUTCOMES)
def _(tmp, ctx):
    result = cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", *FAST)
    wrong = "" if (tmp / "out" / "report" / "index.html").is_file() else "no report written"
    return classify(result, expect_error=False, wrong=wrong if result.rc == 0 else "")


@case("baseline_model", "run --model with a model saved by TAVRNN.save", WORK_OUTCOMES)
def _(tmp, ctx):
    result = cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--model", valid_model(tmp), *FAST)
    return classify(result, expect_error=False)


# ----------------------------------------------------------------------------------------------- damaged models


def model_case(name: str, what: str, damage: Callable[[Path, Path], Path]):
    @case(f"model_{name}", f"--model: {what}")
    def _(tmp, ctx):
        model = damage(valid_model(tmp), tmp / "damaged.npz")
        result = cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--model", model, *FAST)
        return classify(result)


def _truncated_zip(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _nan_weights(src, dst):
    def change(arrays):
        key = next(k for k in arrays if k.startswith("state.") and arrays[k].dtype.kind == "f")
        arrays[key] = np.full_like(arrays[key], np.nan)

    return rewrite_model(src, dst, change)


def _meta(value):
    def damage(src, dst):
        return rewrite_model(src, dst, lambda arrays: arrays.__setitem__("__meta__", np.array(value)))

    return damage


def _drop_weight(src, dst):
    def change(arrays):
        del arrays[next(k for k in arrays if k.startswith("state."))]

    return rewrite_model(src, dst, change)


def _drop_meta_key(src, dst):
    def change(arrays):
        meta = json.loads(str(arrays["__meta__"]))
        del meta["fitted"]
        arrays["__meta__"] = np.array(json.dumps(meta))

    return rewrite_model(src, dst, change)


def _bytes(data: bytes):
    def damage(src, dst):
        dst.write_bytes(data)
        return dst

    return damage


model_case("truncated_zip", "the first half of a saved model", _truncated_zip)
model_case("empty", "an empty file", _bytes(b""))
model_case("random_bytes", "4 KiB of random bytes", _bytes(np.random.default_rng(1).bytes(4096)))
model_case("json_file", "a JSON file, not a model", _bytes(b'{"z_dim": 8}'))
model_case("wrong_json", "__meta__ is not JSON", _meta("{not json"))
model_case("meta_list", "__meta__ is a JSON list", _meta("[1, 2, 3]"))
model_case("missing_fitted", "__meta__ lacks its 'fitted' entry", _drop_meta_key)
model_case("missing_weight", "one weight array missing", _drop_weight)
model_case("nan_weights", "one weight array is NaN", _nan_weights)


@case("model_missing_file", "--model names no file")
def _(tmp, ctx):
    return classify(cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--model", tmp / "nope.npz", *FAST))


@case("model_load_nan_python", "TAVRNN.load of a model with NaN weights (Python)")
def _(tmp, ctx):
    model = _nan_weights(valid_model(tmp), tmp / "nan.npz")
    return classify(python(tmp, ctx, f"""
        from spikeinterface_tavrnn import TAVRNN
        TAVRNN.load({str(model)!r})
    """))


@case("model_save_full_disk", "TAVRNN.save over an existing model when the disk is full (RLIMIT_FSIZE)")
def _(tmp, ctx):
    model = valid_model(tmp)
    before = snapshot(model)
    result = python(tmp, ctx, f"""
        import resource, signal
        from spikeinterface_tavrnn import TAVRNN
        model = TAVRNN.load({str(model)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        model.save({str(model)!r})
    """)
    lost = lost_between(before, snapshot(model), "the old model")
    return classify(result, lost=lost)


# ----------------------------------------------------------------------------------------------- intervals


def intervals_case(name: str, text: str, what: str):
    @case(f"intervals_{name}", f"--intervals: {what}")
    def _(tmp, ctx):
        (tmp / "intervals.csv").write_text(text)
        return classify(cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--intervals",
                            tmp / "intervals.csv", *FAST))


intervals_case("empty", "", "an empty file")
intervals_case("header_only", "start_s,stop_s,label\n", "a header and no rows")
intervals_case("short_row", "start_s,stop_s,label\n0,100,a\n100\n200,300,b\n", "a row with one field")
intervals_case("text_number", "start_s,stop_s,label\n0,100,a\n100,two hundred,b\n", "text in a number column")
intervals_case("missing_columns", "begin,end\n0,100\n", "no start_s / stop_s columns")
intervals_case("stop_before_start", "start_s,stop_s\n100,50\n200,300\n", "a window that ends before it starts")


@case("intervals_missing_file", "--intervals names no file")
def _(tmp, ctx):
    return classify(cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--intervals", tmp / "no.csv", *FAST))


# ----------------------------------------------------------------------------------------------- options


def option_case(name: str, options: list, what: str):
    @case(f"option_{name}", what)
    def _(tmp, ctx):
        args = [a for a in FAST]
        for flag in options[::2]:  # replace the fast settings the case overrides
            if flag in args:
                i = args.index(flag)
                del args[i: i + 2]
        return classify(cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", *args, *options))


option_case("epochs_0", ["--epochs", "0"], "--epochs 0")
option_case("epochs_negative", ["--epochs", "-3"], "--epochs -3")
option_case("z_dim_0", ["--z-dim", "0"], "--z-dim 0")
option_case("h_dim_0", ["--h-dim", "0"], "--h-dim 0")
option_case("bptt_windows_0", ["--bptt-windows", "0"], "--bptt-windows 0")
option_case("attention_window_0", ["--attention-window", "0"], "--attention-window 0")
option_case("segment_index_1", ["--segment-index", "1"], "--segment-index 1 on a one-segment recording")
option_case("window_s_0", ["--window-s", "0"], "--window-s 0")
option_case("step_s_negative", ["--step-s", "-60"], "--step-s -60")
option_case("window_longer_than_recording", ["--window-s", "5000"], "--window-s 5000 on a 600 s recording")
option_case("density_2", ["--density", "2"], "--density 2 (a fraction)")
option_case("bin_ms_0", ["--bin-ms", "0"], "--bin-ms 0")
option_case("method_unknown", ["--method", "granger"], "--method granger")
option_case("sampling_frequency_0", ["--sampling-frequency", "0"], "--sampling-frequency 0")


@case("option_device_cuda", "--device cuda on a machine without CUDA")
def _(tmp, ctx):
    if ctx.cuda:
        return Outcome("n/a", "this machine has CUDA")
    return classify(cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "out", "--device", "cuda", *FAST))


# ----------------------------------------------------------------------------------------------- inputs


@case("input_missing", "an input path that does not exist")
def _(tmp, ctx):
    return classify(cli(tmp, ctx, "run", tmp / "nope.h5", "-o", tmp / "out", *FAST))


@case("input_empty_file", "an empty input file")
def _(tmp, ctx):
    (tmp / "rec.h5").write_bytes(b"")
    return classify(cli(tmp, ctx, "run", tmp / "rec.h5", "-o", tmp / "out", *FAST))


@case("input_truncated_h5", "an sjemea HDF5 file cut in half")
def _(tmp, ctx):
    data = recording(tmp, "full.h5").read_bytes()
    (tmp / "rec.h5").write_bytes(data[: len(data) // 2])
    return classify(cli(tmp, ctx, "run", tmp / "rec.h5", "-o", tmp / "out", *FAST))


def sjemea_case(name: str, what: str, change: Callable[[list], list], recording_time=None, accept=WARN_OUTCOMES):
    @case(f"sjemea_{name}", f"sjemea: {what}", accept)
    def _(tmp, ctx):
        trains = change(synthetic_trains())
        write_sjemea(tmp / "rec.h5", trains, recording_time=recording_time)
        return classify(cli(tmp, ctx, "run", tmp / "rec.h5", "-o", tmp / "out", *FAST))


def _far_spike(trains):
    trains[3] = np.append(trains[3], 1e6)
    return trains


def _flipped_exponent(trains):
    bits = trains[5].copy().view(np.uint64)
    bits[len(bits) // 2] ^= np.uint64(1) << np.uint64(57)  # one flipped exponent bit: x 2**32
    trains[5] = bits.view(np.float64)
    return trains


def _milliseconds(trains):
    return [t * 1000.0 for t in trains]


def _nan_time(trains):
    trains[2] = np.append(trains[2][:-1], np.nan)
    return trains


sjemea_case("spike_at_1e6_s", "one spike at +1e6 s in a 600 s recording without /recordingtime", _far_spike)
sjemea_case("flipped_exponent_bit", "one spike time with a flipped exponent bit", _flipped_exponent)
sjemea_case("times_in_ms", "spike times stored in milliseconds", _milliseconds)
sjemea_case("nan_time", "a NaN spike time", _nan_time, accept=ERROR_OUTCOMES)
sjemea_case("spike_beyond_recordingtime", "one spike at +1e6 s with /recordingtime [0, 600]", _far_spike,
            recording_time=(0.0, 600.0))


@case("axion_truncated_gz", "an Axion .csv.gz whose gzip stream is cut", WARN_OUTCOMES)
def _(tmp, ctx):
    plain, _ = small_axion(tmp)
    compressed = gzip.compress(plain.read_bytes())
    (tmp / "plate_spike_list.csv.gz").write_bytes(compressed[: len(compressed) * 2 // 3])
    return classify(cli(tmp, ctx, "run", tmp / "plate_spike_list.csv.gz", "-o", tmp / "out", *FAST[:-3],
                        "--window-s", "10", "--step-s", "10", "-q"))


def axion_reader_case(name: str, what: str, edit: Callable[[list], tuple[list, str]]):
    """Read a damaged Axion spike list with read_sorting and compare with what the intact rows hold."""

    @case(f"axion_{name}", f"Axion CSV: {what}", WARN_OUTCOMES)
    def _(tmp, ctx):
        _, lines = small_axion(tmp)
        lines, expected = edit(lines)
        (tmp / "damaged_spike_list.csv").write_text("".join(lines))
        result = python(tmp, ctx, f"""
            from spikeinterface_tavrnn.io import read_sorting
            sorting = read_sorting({str(tmp / 'damaged_spike_list.csv')!r})
            print("units", sorting.get_num_units(), "spikes", sum(sorting.count_num_spikes_per_unit().values()))
        """)
        return classify(result, expect_error=True)


def _cut_at_line(lines):
    return lines[: len(lines) // 2], "half the rows"


def _nul_and_blank_rows(lines):
    middle = len(lines) // 2
    return lines[:middle] + ["\x00\x00\x00\x00\n", "\n", ",,,,\n", "garbage line\n"] + lines[middle:], "all rows"


def _cut_mid_line(lines):
    text = "".join(lines)
    return [text[: len(text) // 2 + 7]], "half the rows, last one cut"


axion_reader_case("cut_at_line_boundary", "the file cut at a line boundary", _cut_at_line)
axion_reader_case("cut_mid_line", "the file cut in the middle of a line", _cut_mid_line)
axion_reader_case("nul_and_blank_rows", "NUL, blank and garbage rows in the middle", _nul_and_blank_rows)


# ----------------------------------------------------------------------------------------------- from_arrays


def arrays_case(name: str, what: str, call: str, mention: str = ""):
    @case(f"from_arrays_{name}", f"SpikeTrains.from_arrays: {what}")
    def _(tmp, ctx):
        result = python(tmp, ctx, f"""
            import numpy as np
            from spikeinterface_tavrnn import SpikeTrains
            spikes = {call}
            print("units", spikes.num_units if hasattr(spikes, "num_units") else len(spikes.unit_ids))
        """)
        return classify(result, mention=mention)


arrays_case("count_mismatch", "3 arrays and 2 unit ids",
            "SpikeTrains.from_arrays([np.array([0.1, 0.2]), np.array([0.3]), np.array([0.5])], unit_ids=['x', 'y'])")
arrays_case("flat_array", "one flat array of times where a list of arrays is expected",
            "SpikeTrains.from_arrays(np.array([0.1, 0.5, 0.9, 1.3]))")
arrays_case("2d_array", "a 2-D array for one unit",
            "SpikeTrains.from_arrays([np.array([[0.1, 0.2], [0.3, 0.4]])])")
arrays_case("overflow", "times near 1e14 s (beyond the int64 sample grid)",
            "SpikeTrains.from_arrays([np.array([1.0, 2.0]), np.array([1e14, 1e14 + 1.0])])",
            mention="overflow|too large|too late|too far|sample grid|exceed|beyond|implausib")


# ----------------------------------------------------------------------------------------------- outputs


@case("output_existing_no_overwrite", "an existing output without --overwrite")
def _(tmp, ctx):
    out = make_output(tmp, ctx)
    before = snapshot(out)
    result = cli(tmp, ctx, "run", recording(tmp), "-o", out, *FAST)
    return classify(result, lost=lost_between(before, snapshot(out), "the old output"))


@case("output_overwrite_file", "--overwrite onto a path that is a file")
def _(tmp, ctx):
    (tmp / "notes.txt").write_text("my notes")
    result = cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "notes.txt", "--overwrite", *FAST)
    lost = "" if (tmp / "notes.txt").is_file() and (tmp / "notes.txt").read_text() == "my notes" else "notes.txt gone"
    return classify(result, lost=lost)


@case("output_dot_overwrite", "-o . --overwrite in a folder of the user's files")
def _(tmp, ctx):
    work = tmp / "project"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    (work / "data").mkdir()
    rec = recording(work / "data")
    before = snapshot(work)
    result = launch(tavrnn_command("run", rec, "-o", ".", "--overwrite", *FAST), work, ctx.timeout_s)
    after = {k: v for k, v in snapshot(work).items() if not k.startswith(".")}
    return classify(result, lost=lost_between(before, after, "the current folder"))


@case("output_foreign_overwrite", "--overwrite onto a folder of the user's own files")
def _(tmp, ctx):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "results.xlsx").write_bytes(b"important")
    before = snapshot(tmp / "mine")
    result = cli(tmp, ctx, "run", recording(tmp), "-o", tmp / "mine", "--overwrite", *FAST)
    return classify(result, lost=lost_between(before, snapshot(tmp / "mine"), "the user's folder"))


@case("output_contains_input", "--overwrite onto an old output folder that holds the input")
def _(tmp, ctx):
    out = make_output(tmp, ctx)
    rec = recording(out, "rec.h5")
    before = snapshot(rec)
    result = cli(tmp, ctx, "run", rec, "-o", out, "--overwrite", *FAST)
    return classify(result, lost=lost_between(before, snapshot(rec), "the input"))


def in_namespace(tmp: Path, ctx: Context, size: str, read_only: bool, with_old: bool) -> tuple[Result, str]:
    """Run tavrnn with its output on a small (or read-only) tmpfs, in a user namespace."""
    disk = tmp / "disk"
    disk.mkdir()
    rec = recording(tmp)
    old = ""
    if with_old:
        template = make_output(tmp, ctx, "template")
        old = f" && cp -a {template} {disk}/out"
        used = sum(p.stat().st_size + 4096 for p in template.rglob("*"))
        size = f"{int(used * 1.5) // 1024 + 64}k"  # room for the old output, not for a second one beside it
    remount = f" && mount -o remount,ro {disk}" if read_only else ""
    command = " ".join(tavrnn_command("run", rec, "-o", disk / "out", "--overwrite", *FAST))
    script = (f"mount -t tmpfs -o size={size} none {disk}{old}{remount} && {command}; rc=$?; "
              f"find {disk} -type f -exec md5sum {{}} + | sort > {tmp}/after.txt; exit $rc")
    result = launch(["unshare", "-rm", "sh", "-c", script], tmp, ctx.timeout_s)
    lost = ""
    if with_old:
        before = sorted(f"{p.relative_to(template)}" for p in template.rglob("*") if p.is_file())
        after_text = (tmp / "after.txt").read_text() if (tmp / "after.txt").exists() else ""
        gone = [name for name in before if f"{disk}/out/{name}" not in after_text]
        if gone:
            lost = f"the old output: {len(gone)} of {len(before)} files gone (e.g. {gone[0]})"
    return result, lost


@case("output_read_only_disk", "the output's file system is read-only")
def _(tmp, ctx):
    if not ctx.unshare:
        return Outcome("n/a", "unshare -rm is not allowed here")
    result, lost = in_namespace(tmp, ctx, "4m", read_only=True, with_old=False)
    return classify(result, lost=lost)


@case("output_full_disk", "the output's disk fills up (a tmpfs 1.5 times the size of the old output it holds)")
def _(tmp, ctx):
    if not ctx.unshare:
        return Outcome("n/a", "unshare -rm is not allowed here")
    result, lost = in_namespace(tmp, ctx, "", read_only=False, with_old=True)
    return classify(result, lost=lost)


@case("concurrent_runs", "two runs into the same new --output at once", {"clear error"})
def _(tmp, ctx):
    rec = recording(tmp)
    out = tmp / "out"
    env = environment()
    start = time.perf_counter()
    processes = [subprocess.Popen(tavrnn_command("run", rec, "-o", out, *FAST, "--seed", str(seed)), cwd=tmp, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
                 for seed in (1, 2)]
    results = []
    for process in processes:
        try:
            o, e = process.communicate(timeout=ctx.timeout_s)
            results.append(Result(process.returncode, o, e, time.perf_counter() - start))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            o, e = process.communicate()
            results.append(Result(None, o, e, time.perf_counter() - start, timed_out=True))
    codes = sorted(r.rc for r in results if r.rc is not None)
    complete = (out / "report" / "index.html").is_file()
    if any(r.timed_out for r in results):
        return Outcome("hang", "a run did not end", time.perf_counter() - start)
    if codes == [0, 0]:
        return Outcome("data lost", "both runs succeeded: the later replaced the earlier's result",
                       time.perf_counter() - start)
    if not complete:
        return Outcome("data lost", f"exit codes {codes} and no complete output", time.perf_counter() - start)
    loser = next(r for r in results if r.rc != 0)
    outcome = classify(loser)
    outcome.seconds = time.perf_counter() - start
    if leftovers(tmp, "out"):
        return Outcome("debris", f"left {leftovers(tmp, 'out')}", outcome.seconds)
    return outcome


@case("kill_during_write", "kill -9 of a run replacing an old output (--overwrite), then a rerun", WORK_OUTCOMES)
def _(tmp, ctx):
    out = make_output(tmp, ctx)
    before = snapshot(out)
    rec = recording(tmp)
    start = time.perf_counter()
    process = subprocess.Popen(tavrnn_command("run", rec, "-o", out, "--overwrite", *FAST), cwd=tmp,
                               env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + ctx.timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        partial = [p for p in tmp.iterdir() if p.name.startswith(".out.partial")]
        if partial and any(partial[0].rglob("*")):
            time.sleep(1.0)  # let it write for a moment
            break
        time.sleep(0.05)
    if process.poll() is not None:
        return Outcome("unclear error", f"the run ended (rc={process.returncode}) before it could be killed",
                       time.perf_counter() - start)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    lost = lost_between(before, {k: v for k, v in snapshot(out).items()}, "the old output after kill -9")
    if lost:
        return Outcome("data lost", lost, time.perf_counter() - start)
    rerun = cli(tmp, ctx, "run", rec, "-o", out, "--overwrite", *FAST)
    outcome = classify(rerun, expect_error=False)
    outcome.seconds = time.perf_counter() - start
    if outcome.outcome in WORK_OUTCOMES and leftovers(tmp, "out"):
        return Outcome("debris", f"after the rerun: {leftovers(tmp, 'out')}", outcome.seconds)
    if outcome.outcome in WORK_OUTCOMES:
        outcome.detail = "old output intact after kill -9; rerun completed, nothing left over"
    return outcome


@case("fit_output_is_folder", "tavrnn fit -o onto a folder of the user's files, with --overwrite")
def _(tmp, ctx):
    (tmp / "models").mkdir()
    (tmp / "models" / "notes.txt").write_text("mine")
    before = snapshot(tmp / "models")
    result = cli(tmp, ctx, "fit", recording(tmp), "-o", tmp / "models", "--overwrite", *FAST)
    return classify(result, lost=lost_between(before, snapshot(tmp / "models"), "the user's folder"))


@case("batch_rerun_after_half_replace", "tavrnn batch rerun after a run killed between setting the old output "
      "aside and moving the new one in", WORK_OUTCOMES)
def _(tmp, ctx):
    (tmp / "plate").mkdir()
    rec = recording(tmp / "plate", "rec.h5")
    batch = ["batch", rec, "-o", tmp / "out", "--n-workers", "1", *FAST]
    first = cli(tmp, ctx, *batch)
    if first.rc != 0:
        return classify(first, expect_error=False)
    finished = tmp / "out" / "rec"
    before = snapshot(finished / "report")
    shutil.copytree(finished, tmp / "out" / ".rec.ready-1-00000001")  # the complete new output, not yet in place
    finished.rename(tmp / "out" / ".rec.previous-1-00000000")  # the old output, set aside
    rerun = cli(tmp, ctx, *batch)
    outcome = classify(rerun, expect_error=False)
    if outcome.outcome in WORK_OUTCOMES:
        if not (finished / "report" / "index.html").is_file():
            return Outcome("data lost", "no output after the rerun", rerun.seconds)
        if leftovers(tmp / "out", "rec"):
            return Outcome("debris", f"after the rerun: {leftovers(tmp / 'out', 'rec')}", rerun.seconds)
        if snapshot(finished / "report") != before:
            outcome.detail = "recomputed instead of resuming"
    return outcome


# ----------------------------------------------------------------------------------------------- main


def run_case(item: Case, ctx: Context, keep: bool) -> tuple[Case, Outcome]:
    tmp = Path(tempfile.mkdtemp(prefix=f"tavrnn_{item.name}_", dir=ctx.extra["workdir"]))
    try:
        outcome = item.run(tmp, ctx)
    except Exception as error:  # a broken case must not stop the ledger
        outcome = Outcome("case failed", f"{type(error).__name__}: {error}")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return item, outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the cases whose name contains this")
    parser.add_argument("-j", "--jobs", type=int, default=4, help="cases run at once (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="a case that runs longer is a hang")
    parser.add_argument("--keep", action="store_true", help="keep each case's folder (printed) for inspection")
    parser.add_argument("--json", type=Path, default=None, help="also write the table to this JSON file")
    args = parser.parse_args(argv)

    selected = [c for c in CASES if args.k in c.name]
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True, env=environment())
    try:
        unshare = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        unshare = False
    workdir = Path(tempfile.mkdtemp(prefix="tavrnn_reliability_"))
    ctx = Context(timeout_s=args.timeout_s, cuda=probe.stdout.strip() == "True", unshare=unshare,
                  root=os.geteuid() == 0, extra={"workdir": str(workdir)})
    print(f"{len(selected)} cases, {args.jobs} at a time, hang after {args.timeout_s:.0f} s; package from {ROOT}")
    start = time.perf_counter()
    # the cases that need a finished output share one, made first
    if any("output" in c.name or "kill" in c.name for c in selected):
        make_output(workdir, ctx, "first_output")
    if any("model" in c.name for c in selected):
        train_model(workdir, ctx)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda c: run_case(c, ctx, args.keep), selected))
    elapsed = time.perf_counter() - start

    width = max(len(c.name) for c, _ in results)
    print(f"\n{'case':<{width}}  {'outcome':<20} {'':4} {'s':>5}  detail")
    failures = 0
    for item, outcome in results:
        ok = outcome.outcome in item.accept or outcome.outcome == "n/a"
        failures += not ok
        detail = outcome.detail.replace("\n", " ")
        print(f"{item.name:<{width}}  {outcome.outcome:<20} {'ok' if ok else 'FAIL':4} {outcome.seconds:5.0f}  "
              f"{detail[:110]}")
    counts: dict[str, int] = {}
    for _, outcome in results:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    print(f"\n{len(results)} cases in {elapsed:.0f} s: {failures} not as they should be")
    for name in ("clear error", "warn and work", "works", "traceback", "hang", "silent wrong result", "data lost",
                 "debris", "unclear error", "case failed", "n/a"):
        if counts.get(name):
            print(f"  {name:<20} {counts[name]}")
    if args.json is not None:
        rows = [dict(case=c.name, what=c.what, outcome=o.outcome, ok=o.outcome in c.accept or o.outcome == "n/a",
                     seconds=round(o.seconds, 1), detail=o.detail) for c, o in results]
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"case folders kept under {workdir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
