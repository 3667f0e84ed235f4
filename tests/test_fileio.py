"""Atomic file writes: the old file survives every failure (exception, full disk, kill -9), nothing is left behind."""

import os
import pickle
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeinterface_tavrnn.errors import TavrnnInputError, TavrnnWriteError
from spikeinterface_tavrnn.fileio import (
    atomic_write,
    remove_stale_temporaries,
    temporary_sibling,
    write_bytes_atomic,
    write_text_atomic,
)

ROOT = Path(__file__).resolve().parents[1]


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_replaces_and_leaves_nothing(tmp_path):
    target = tmp_path / "model.npz"
    write_bytes_atomic(target, b"old")
    write_bytes_atomic(target, b"new")
    write_text_atomic(tmp_path / "a.json", "é")
    assert target.read_bytes() == b"new"
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == "é"
    assert hidden(tmp_path) == []


def test_exception_while_writing_keeps_old_file(tmp_path):
    target = tmp_path / "model.npz"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert hidden(tmp_path) == []


def test_refuses_folder_and_missing_parent(tmp_path):
    with pytest.raises(TavrnnInputError, match="is a folder"):
        write_bytes_atomic(tmp_path, b"x")
    with pytest.raises(TavrnnInputError, match="does not exist"):
        write_bytes_atomic(tmp_path / "missing" / "model.npz", b"x")
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", mode="a"):
            pass


@pytest.fixture
def file_size_limit():
    """Lower this process's file-size limit to 1 MiB (as a full disk would stop a write), then restore it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_full_disk_keeps_old_file_and_says_why(tmp_path, file_size_limit):
    target = tmp_path / "model.npz"
    write_bytes_atomic(target, b"old")
    with pytest.raises(TavrnnWriteError, match="file-size limit") as caught:
        write_bytes_atomic(target, b"x" * (2 << 20))
    assert isinstance(caught.value, OSError) and isinstance(caught.value, TavrnnInputError)
    copy = pickle.loads(pickle.dumps(caught.value))  # crosses process boundaries (batch workers)
    assert str(copy) == str(caught.value) and copy.errno == caught.value.errno
    assert "\n" not in str(caught.value)
    assert target.read_bytes() == b"old"
    assert hidden(tmp_path) == []


def unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


TMPFS_CHILD = """
import sys
from pathlib import Path
from spikeinterface_tavrnn.errors import TavrnnWriteError
from spikeinterface_tavrnn.fileio import write_bytes_atomic
target = Path(sys.argv[1]) / 'model.npz'
try:
    write_bytes_atomic(target, b'x' * int(sys.argv[2]))
except TavrnnWriteError as error:
    print('refused:', error)
print('content:', target.read_bytes()[:3].decode(), 'entries:', sorted(p.name for p in target.parent.iterdir()))
"""


@pytest.mark.parametrize("read_only", [False, True])
def test_small_or_read_only_file_system(tmp_path, read_only):
    """A real 256 KiB tmpfs (or a read-only one) in a user namespace; skipped where unshare is not allowed."""
    if not unshare_works():
        pytest.skip("unshare -rm is not allowed here")
    mount = tmp_path / "disk"
    mount.mkdir()
    write_old = f"printf old > {mount}/model.npz"
    remount = f" && mount -o remount,ro {mount}" if read_only else ""
    script = (
        f"mount -t tmpfs -o size=256k none {mount} && {write_old}{remount} && "
        f"{sys.executable} -c \"$CHILD\" {mount} {1 << 20}"
    )
    env = {**os.environ, "CHILD": TMPFS_CHILD, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"refused: cannot write the file '{mount}/model.npz'" in result.stdout
    assert ("file system is read-only" if read_only else "the disk is full") in result.stdout
    assert "content: old entries: ['model.npz']" in result.stdout


KILL_CHILD = """
import os, signal, sys
from spikeinterface_tavrnn import fileio
target, point = sys.argv[1], sys.argv[2]
if point == 'replace':
    os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
with fileio.atomic_write(target) as handle:
    for chunk in range(8):
        handle.write(b'n' * 65536)
        handle.flush()
        if point == 'write' and chunk == 3:
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("point", ["write", "replace"])
def test_kill_during_write_keeps_old_file_and_next_write_cleans_up(tmp_path, point):
    target = tmp_path / "model.npz"
    write_bytes_atomic(target, b"old")
    result = run_child(KILL_CHILD, str(target), point)
    assert result.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    assert len(hidden(tmp_path)) == 1  # the killed process's temporary file
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert hidden(tmp_path) == []


def test_stale_cleanup_spares_live_writers_and_other_files(tmp_path):
    target = tmp_path / "model.npz"
    live = temporary_sibling(target)  # this process: alive
    live.write_bytes(b"in progress")
    other = tmp_path / ".model.npz.tmp-notapid"
    other.write_bytes(b"not ours")
    unrelated = tmp_path / ".other.npz.tmp-1-abc"
    unrelated.write_bytes(b"another file's")
    assert remove_stale_temporaries(target) == []
    assert live.exists() and other.exists() and unrelated.exists()


@settings(max_examples=40, deadline=None)
@given(contents=st.lists(st.binary(max_size=2048), min_size=1, max_size=6), fail_at=st.integers(0, 6))
def test_the_file_always_holds_the_last_complete_write(tmp_path_factory, contents, fail_at):
    folder = tmp_path_factory.mktemp("w")
    target = folder / "f.bin"
    expected = None
    for i, data in enumerate(contents):
        try:
            with atomic_write(target) as handle:
                handle.write(data[: len(data) // 2])
                if i == fail_at:
                    raise KeyboardInterrupt
                handle.write(data[len(data) // 2:])
            expected = data
        except KeyboardInterrupt:
            pass
        assert (target.read_bytes() if target.exists() else None) == expected
    assert hidden(folder) == []
