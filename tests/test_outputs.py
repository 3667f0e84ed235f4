"""Output folders: refused targets, atomic replacement, kill -9 at every step, two runs at once, full disks."""

import json
import os
import resource
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.outputs import (
    MARKER_NAME,
    check_output_target,
    is_package_output,
    lock_for,
    output_folder,
    recover_output,
)

ROOT = Path(__file__).resolve().parents[1]


def child(code: str, *args: str, wait: bool = True):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-c", code, *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def write_output(path, content: str, overwrite: bool = False, **kwargs) -> None:
    with output_folder(path, overwrite=overwrite, **kwargs) as staging:
        (staging / "report").mkdir()
        (staging / "report" / "result.txt").write_text(content)
        (staging / "analyzer.bin").write_text(content * 100)


def content_of(path: Path) -> str | None:
    """The content of a complete output, or None; fails on a half-written one."""
    if not path.exists():
        return None
    text = (path / "report" / "result.txt").read_text()
    assert (path / "analyzer.bin").read_text() == text * 100, "half-written output"
    assert (path / MARKER_NAME).is_file()
    return text


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


# ---------------------------------------------------------------- refusals


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", [".", "..", "~", "/", "./", ""])
def test_current_home_and_root_folders_are_refused(in_tmp, path):
    (in_tmp / "precious.txt").write_text("mine")
    with pytest.raises(TavrnnInputError, match="current, home or root folder") as caught:
        with output_folder(path, overwrite=True):
            pass
    message = str(caught.value)
    assert "\n" not in message and "--output results_tavrnn" in message
    assert (in_tmp / "precious.txt").read_text() == "mine"


def test_a_folder_holding_the_current_folder_is_refused(in_tmp, monkeypatch):
    (in_tmp / "sub").mkdir()
    monkeypatch.chdir(in_tmp / "sub")
    with pytest.raises(TavrnnInputError, match="contains the current or home folder"):
        check_output_target(in_tmp, overwrite=True)


def test_foreign_folder_is_refused_even_with_overwrite(in_tmp):
    (in_tmp / "mine").mkdir()
    (in_tmp / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(TavrnnInputError, match="did not write") as caught:
        write_output("mine", "x", overwrite=True)
    assert "overwrite=True (--overwrite)" in str(caught.value)
    assert (in_tmp / "mine" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (in_tmp / "mine").iterdir()) == ["thesis.tex"]
    assert leftovers(in_tmp) == []


def test_file_and_link_targets_are_refused(in_tmp):
    (in_tmp / "results").write_text("a file")
    with pytest.raises(TavrnnInputError, match="exists and is not a folder"):
        write_output("results", "x", overwrite=True)
    assert (in_tmp / "results").read_text() == "a file"
    (in_tmp / "elsewhere").mkdir()
    (in_tmp / "link").symlink_to(in_tmp / "elsewhere")
    with pytest.raises(TavrnnInputError, match="not a folder"):
        write_output("link", "x", overwrite=True)
    with pytest.raises(TavrnnInputError, match="which is a file"):
        write_output("results/sub", "x")


def test_output_holding_the_input_is_refused(in_tmp):
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "rec.h5").write_bytes(b"spikes")
    write_output("data/out", "x")  # inside a folder is fine: the input is not replaced
    for path in ("data", "data/rec.h5"):
        with pytest.raises(TavrnnInputError, match="contains the input"):
            write_output(path, "x", overwrite=True, inputs=["data/rec.h5"])
    assert (in_tmp / "data" / "rec.h5").read_bytes() == b"spikes"


def test_existing_output_needs_overwrite_and_is_replaced_with_it(in_tmp):
    write_output("out", "old")
    with pytest.raises(TavrnnInputError, match=r"exists; pass overwrite=True \(--overwrite\)"):
        write_output("out", "new")
    assert content_of(in_tmp / "out") == "old"
    write_output("out", "new", overwrite=True)
    assert content_of(in_tmp / "out") == "new"
    assert leftovers(in_tmp) == []
    assert json.loads((in_tmp / "out" / MARKER_NAME).read_text())["package"] == "spikeinterface_tavrnn"


def test_outputs_of_releases_before_the_marker_may_be_replaced(in_tmp):
    (in_tmp / "old" / "report").mkdir(parents=True)
    (in_tmp / "old" / "analyzer").mkdir()
    assert is_package_output(in_tmp / "old")
    write_output("old", "new", overwrite=True)
    assert content_of(in_tmp / "old") == "new"


def test_failure_in_the_block_keeps_old_output(in_tmp):
    write_output("out", "old")
    with pytest.raises(RuntimeError):
        with output_folder("out", overwrite=True) as staging:
            (staging / "half").write_text("x")
            raise RuntimeError("training diverged")
    assert content_of(in_tmp / "out") == "old"
    assert leftovers(in_tmp) == []


# ---------------------------------------------------------------- kill -9

KILL_CHILD = """
import os, pathlib, shutil, signal, sys
from spikeinterface_tavrnn.outputs import output_folder
target, point = sys.argv[1], sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
renames = [0]
rename = pathlib.Path.rename
def counting_rename(self, other):
    renames[0] += 1
    if point == f'before-rename-{renames[0]}':
        die()
    return rename(self, other)
pathlib.Path.rename = counting_rename
rmtree = shutil.rmtree
def dying_rmtree(path, *args, **kwargs):  # the old output set aside is being deleted: delete a part, then die
    if point == 'during-delete' and '.previous-' in str(path):
        rmtree(path, *args, **kwargs)
        die()
    return rmtree(path, *args, **kwargs)
shutil.rmtree = dying_rmtree
import spikeinterface_tavrnn.outputs as outputs
remove = outputs._remove_ours
def dying_remove(folder):
    if point == 'before-delete' and '.previous-' in folder.name:
        die()
    return remove(folder)
outputs._remove_ours = dying_remove
with output_folder(target, overwrite=True) as staging:
    (staging / 'report').mkdir()
    (staging / 'report' / 'result.txt').write_text('new')
    if point == 'during-write':
        die()
    (staging / 'analyzer.bin').write_text('new' * 100)
"""

# where a kill leaves the output (before any rerun): the old one, the new one, or set aside (finished by a rerun)
KILL_POINTS = {
    "during-write": "old",
    "before-rename-1": "old",  # the new output is complete, not yet marked ready
    "before-rename-2": "old",  # ready, old not yet set aside
    "before-rename-3": None,  # old set aside, new not yet in place: recovery finishes the swap
    "before-delete": "new",
    "during-delete": "new",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_during_write_or_replace_loses_nothing_and_rerun_completes(in_tmp, point):
    write_output("out", "old")
    result = child(KILL_CHILD, str(in_tmp / "out"), point)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert content_of(in_tmp / "out") == KILL_POINTS[point]
    assert leftovers(in_tmp) != []  # the killed run's hidden folder(s)
    recovered = recover_output(in_tmp / "out")
    assert recovered in ("finished", "cleaned")
    assert content_of(in_tmp / "out") == ("new" if point == "before-rename-3" else KILL_POINTS[point])
    assert leftovers(in_tmp) == []
    write_output("out", "rerun", overwrite=True)  # the lock of the killed run does not block
    assert content_of(in_tmp / "out") == "rerun"
    assert leftovers(in_tmp) == []


def test_rerun_after_a_half_replaced_swap_resumes_without_overwrite(in_tmp):
    """A rerun without --overwrite finds the finished output (not a refusal over a missing one)."""
    write_output("out", "old")
    assert child(KILL_CHILD, str(in_tmp / "out"), "before-rename-3").returncode == -signal.SIGKILL
    assert not (in_tmp / "out").exists()
    with pytest.raises(TavrnnInputError, match="exists"):
        check_output_target("out")  # recovery put the complete new output in place
    assert content_of(in_tmp / "out") == "new"
    assert leftovers(in_tmp) == []


def test_killed_first_run_leaves_nothing_that_blocks(in_tmp):
    result = child(KILL_CHILD, str(in_tmp / "out"), "during-write")
    assert result.returncode == -signal.SIGKILL
    assert not (in_tmp / "out").exists()
    write_output("out", "second")  # no --overwrite needed: nothing was published
    assert content_of(in_tmp / "out") == "second"
    assert leftovers(in_tmp) == []


def test_foreign_hidden_folders_with_similar_names_are_kept(in_tmp):
    foreign = in_tmp / ".out.partial-mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not the package's")
    write_output("out", "x")
    assert (foreign / "notes.txt").read_text() == "not the package's"


# ---------------------------------------------------------------- two runs at once

HOLD_CHILD = """
import sys, time, pathlib
from spikeinterface_tavrnn.outputs import output_folder
target, started = sys.argv[1], pathlib.Path(sys.argv[2])
with output_folder(target, overwrite=True) as staging:
    (staging / 'report').mkdir()
    (staging / 'report' / 'result.txt').write_text('first')
    started.write_text('1')
    time.sleep(float(sys.argv[3]))
    (staging / 'analyzer.bin').write_text('first' * 100)
print('done')
"""


def wait_for(path: Path, process) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_second_run_on_the_same_output_refuses_and_nothing_is_lost(in_tmp):
    write_output("out", "old")
    first = child(HOLD_CHILD, str(in_tmp / "out"), str(in_tmp / "started"), "1.5", wait=False)
    try:
        wait_for(in_tmp / "started", first)
        with pytest.raises(TavrnnInputError, match="another run is writing") as caught:
            check_output_target("out", overwrite=True)  # refused before any work
        assert "\n" not in str(caught.value)
        with pytest.raises(TavrnnInputError, match="another run is writing"):
            write_output("out", "second", overwrite=True)
        assert content_of(in_tmp / "out") == "old"
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "done" in out, err
    assert content_of(in_tmp / "out") == "first"
    assert leftovers(in_tmp) == []


def test_second_run_without_overwrite_never_replaces_the_first(in_tmp):
    first = child(HOLD_CHILD, str(in_tmp / "out"), str(in_tmp / "started"), "0.5", wait=False)
    try:
        wait_for(in_tmp / "started", first)
        with pytest.raises(TavrnnInputError):
            write_output("out", "second")
    finally:
        first.communicate(timeout=60)
    with pytest.raises(TavrnnInputError, match="exists"):
        write_output("out", "second")
    assert content_of(in_tmp / "out") == "first"


def test_lock_of_a_killed_process_does_not_block(in_tmp):
    code = (
        "import os, signal, sys\n"
        "from spikeinterface_tavrnn.outputs import lock_for\n"
        "lock_for(sys.argv[1]).acquire()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert child(code, str(in_tmp / "out")).returncode == -signal.SIGKILL
    assert (in_tmp / ".out.lock").exists()
    lock = lock_for(in_tmp / "out")
    lock.acquire()
    lock.release()
    write_output("out", "x")
    assert content_of(in_tmp / "out") == "x"


# ---------------------------------------------------------------- disks that refuse


def test_full_disk_keeps_old_output_with_one_line(in_tmp):
    write_output("out", "old")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(TavrnnInputError, match="file-size limit") as caught:
            with output_folder("out", overwrite=True) as staging:
                (staging / "analyzer.bin").write_bytes(b"x" * (2 << 20))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert isinstance(caught.value, OSError) and "\n" not in str(caught.value)
    assert content_of(in_tmp / "out") == "old"
    assert leftovers(in_tmp) == []


TMPFS_CHILD = """
import sys
from pathlib import Path
from spikeinterface_tavrnn.errors import TavrnnInputError
from spikeinterface_tavrnn.outputs import output_folder
target = Path(sys.argv[1]) / 'out'
try:
    with output_folder(target, overwrite=True) as staging:
        (staging / 'analyzer.bin').write_bytes(b'x' * (1 << 20))
except TavrnnInputError as error:
    print('refused:', error)
print('old:', (target / 'old.txt').read_text(), 'entries:', sorted(p.name for p in target.parent.iterdir()))
"""


@pytest.mark.parametrize("read_only", [False, True])
def test_full_or_read_only_file_system(tmp_path, read_only):
    """A real 256 KiB tmpfs (or a read-only one) in a user namespace; skipped where unshare is not allowed."""
    try:
        allowed = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        allowed = False
    if not allowed:
        pytest.skip("unshare -rm is not allowed here")
    disk = tmp_path / "disk"
    disk.mkdir()
    setup = f"mkdir {disk}/out && touch {disk}/out/{MARKER_NAME} && printf kept > {disk}/out/old.txt"
    remount = f" && mount -o remount,ro {disk}" if read_only else ""
    script = f"mount -t tmpfs -o size=256k none {disk} && {setup}{remount} && {sys.executable} -c \"$CHILD\" {disk}"
    env = {**os.environ, "CHILD": TMPFS_CHILD, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "refused: " in result.stdout and ("Read-only" if read_only else "disk is full") in result.stdout
    assert "old: kept entries: ['out']" in result.stdout or "old: kept entries: ['.out.lock', 'out']" in result.stdout


# ---------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["ok", "fail", "no-overwrite"]), st.text(alphabet=string.ascii_letters + string.digits + " ", min_size=1, max_size=8)),
                      min_size=1, max_size=5))
def test_the_output_always_holds_the_last_successful_run(tmp_path_factory, steps):
    folder = tmp_path_factory.mktemp("o")
    target = folder / "out"
    expected = None
    for action, text in steps:
        try:
            with output_folder(target, overwrite=action != "no-overwrite") as staging:
                (staging / "report").mkdir()
                (staging / "report" / "result.txt").write_text(text)
                if action == "fail":
                    raise RuntimeError
                (staging / "analyzer.bin").write_text(text * 100)
            expected = text
        except RuntimeError:
            pass
        except TavrnnInputError:
            assert action == "no-overwrite" and expected is not None
        assert content_of(target) == expected
    assert leftovers(folder) == []


class _KilledHere(BaseException):
    """Stands for a SIGKILL at one point of a removal (nothing after it runs)."""


@pytest.mark.parametrize("kill_after", range(1, 9))
def test_a_removal_killed_at_any_file_leaves_nothing_after_the_next_run(tmp_path, monkeypatch, kill_after):
    # The old output holds 7 files besides its marker; the removal of the set-aside old output after a successful
    # swap is interrupted after `kill_after` deletions. Whatever was deleted first, the next run cleans up.
    target = tmp_path / "out"
    with output_folder(target) as staging:
        for sub in ("analyzer", "report"):
            (staging / sub).mkdir()
            for i in range(3):
                (staging / sub / f"f{i}.bin").write_text("old")
        (staging / "extra.txt").write_text("old")
    real_unlink, count = os.unlink, [0]

    def unlink(*args, **kwargs):
        count[0] += 1
        if count[0] > kill_after:
            raise _KilledHere
        return real_unlink(*args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    try:
        write_output(target, "new", overwrite=True)
    except _KilledHere:
        pass
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert content_of(target) == "new"
    recover_output(target)
    assert leftovers(tmp_path) == []
    write_output(target, "newer", overwrite=True)
    assert content_of(target) == "newer" and leftovers(tmp_path) == []
