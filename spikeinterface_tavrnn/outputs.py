"""Output folders that never lose a user's data: marked, locked, built beside and swapped in by renames.

Every folder the package writes as a whole (``tavrnn run`` / ``demo`` outputs, batch folders, reports) goes
through :func:`output_folder`:

1. :func:`check_output_target` refuses, before any work, a target that is a file, the current folder, the home
   folder, a file-system root, a folder that holds the current folder or one of the inputs, an existing folder
   without ``overwrite``, and (with ``overwrite``) any existing folder that this package did not write (it
   carries no marker file). Each refusal is a :class:`~spikeinterface_tavrnn.errors.TavrnnInputError` with one
   line that names the problem and the fix.
2. An exclusive lock (``filelock``; the operating system drops it when a process dies, so a killed run never
   blocks the next one) is taken on ``.NAME.lock`` beside the target: a second run on the same output refuses.
3. What killed runs left on that path is finished or undone (:func:`recover_output`): a complete new output
   that was not yet swapped in is moved into place, an old output that was set aside is put back, and hidden
   ``.NAME.partial-*`` / ``.NAME.ready-*`` / ``.NAME.previous-*`` folders are removed.
4. The new output is built in ``.NAME.partial-*`` (marked at once). When the block succeeds its files are
   ``fsync``-ed, it is renamed ``.NAME.ready-*`` (complete), the old output is renamed ``.NAME.previous-*``, the
   new one is renamed into place, and only then is the old one deleted. When the block fails the partial folder
   is removed and the old output is untouched.

The package deletes only folders that carry its marker (or, for outputs of releases before the marker existed,
folders that hold nothing but an ``analyzer``/``analyzer.zarr`` and a ``report`` folder), and the hidden
folders above, which only it creates.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from .errors import TavrnnInputError
from .fileio import fsync_path, temporary_sibling, write_error, write_text_atomic

__all__ = [
    "MARKER_NAME",
    "output_folder",
    "check_output_target",
    "recover_output",
    "is_package_output",
    "mark_output",
    "lock_for",
]

#: Name of the marker file that every output folder of this package carries.
MARKER_NAME = ".spikeinterface_tavrnn_output"

#: Contents of an output of a release before the marker: it may be replaced as if it carried the marker.
_LEGACY_OUTPUT_ENTRIES = {"analyzer", "analyzer.zarr", "report"}

#: Kinds of hidden sibling folders this module creates (``.NAME.KIND-*``).
_STAGES = ("partial", "ready", "previous")


def mark_output(folder: str | os.PathLike, kind: str = "output") -> None:
    """Write the marker file that identifies ``folder`` as written by this package."""
    from . import __version__

    info = {"package": "spikeinterface_tavrnn", "version": __version__, "kind": kind, "created": time.time()}
    write_text_atomic(Path(folder) / MARKER_NAME, json.dumps(info))


def is_package_output(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a folder that this package wrote (and so may replace or delete)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    if (folder / MARKER_NAME).is_file():
        return True
    entries = {entry.name for entry in folder.iterdir()}
    return bool(entries) and entries <= _LEGACY_OUTPUT_ENTRIES and (folder / "report").is_dir()


def lock_for(path: str | os.PathLike) -> FileLock:
    """The exclusive lock that guards writing ``path`` (a ``.NAME.lock`` file beside it).

    It never waits (``timeout=0``): ``acquire`` raises ``filelock.Timeout`` while another process holds it. The
    operating system releases it when its process dies, so a killed run does not block the next one.
    """
    path = Path(path).expanduser().resolve()
    return FileLock(str(path.parent / f".{path.name}.lock"), timeout=0)


def _shown(path: str | os.PathLike) -> str:
    return repr(os.fspath(path))


def _protected_folders() -> list[Path]:
    folders = [Path.cwd().resolve(), Path.home().resolve()]
    folders += [Path(p.anchor) for p in folders]
    return folders


def _check_place(path: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str) -> tuple[Path, Path]:
    """The checks that need no look inside the target: protected folders, inputs, files, symlinks."""
    target = Path(path).expanduser()
    resolved = target.resolve()
    shown = _shown(path)
    if resolved in _protected_folders() or str(path).strip() in ("", ".", "..", "~", "/"):
        raise TavrnnInputError(
            f"output folder {shown} ({flag}) is the current, home or root folder; the package writes its output into a "
            f"folder of its own: give a new folder name, e.g. {flag} results_tavrnn"
        )
    for folder in (Path.cwd().resolve(), Path.home().resolve()):
        if resolved in folder.parents:
            raise TavrnnInputError(
                f"output folder {shown} ({flag}) contains the current or home folder {os.fspath(folder)!r}; give a "
                f"new folder "
                f"name, e.g. {flag} results_tavrnn"
            )
    for item in inputs:
        item = Path(item).expanduser().resolve()
        if item == resolved or resolved in item.parents:
            raise TavrnnInputError(
                f"output folder {shown} ({flag}) contains the input {os.fspath(item)!r}; choose an output folder "
                f"elsewhere"
            )
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise TavrnnInputError(
            f"output path {shown} ({flag}) exists and is not a folder (a file or a link); not replacing it: choose "
            f"another "
            f"output folder ({flag})"
        )
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TavrnnInputError(
                    f"output path {shown} ({flag}) lies under {os.fspath(parent)!r}, which is a file; choose another "
                    f"output "
                    f"folder ({flag})"
                )
            break
    return target, resolved


def _check_existing(path: str | os.PathLike, target: Path, overwrite: bool, flag: str) -> None:
    shown = _shown(path)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise TavrnnInputError(
            f"output path {shown} ({flag}) exists and is not a folder (a file or a link); not replacing it: choose "
            f"another "
            f"output folder ({flag})"
        )
    if not target.exists():
        return
    if not overwrite:
        raise TavrnnInputError(
            f"output folder {shown} ({flag}) exists; pass overwrite=True (--overwrite) to replace it, or choose "
            f"another output "
            f"folder ({flag})"
        )
    if not is_package_output(target):
        raise TavrnnInputError(
            f"output folder {shown} ({flag}) is a folder that spikeinterface_tavrnn did not write (it has no "
            f"{MARKER_NAME} "
            f"file); overwrite=True (--overwrite) replaces only this package's outputs: choose another output folder "
            f"({flag}) or move that folder away yourself"
        )


def _leftovers(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink())


def _ours(folder: Path) -> bool:
    """Whether a hidden stage folder may be deleted: it is marked, or holds only a marker being written."""
    if is_package_output(folder):
        return True
    try:
        return all(entry.name.startswith(f".{MARKER_NAME}.") for entry in folder.iterdir())
    except OSError:
        return False


def _has_leftovers(target: Path) -> bool:
    return any(_leftovers(target, kind) for kind in _STAGES)


def _newest(folders: list[Path]) -> Path:
    return max(folders, key=lambda p: p.stat().st_mtime)


def _remove_ours(folder: Path) -> None:
    """Delete a folder of this package so that a kill at any moment leaves it still marked, for the next run.

    ``shutil.rmtree`` deletes in directory order and may delete the marker first; a run killed then would leave a
    hidden folder that no later run recognises as its own. Here the marker is written first (an unmarked legacy
    output) and deleted last. Best effort, like ``rmtree(ignore_errors=True)``.
    """
    marker = folder / MARKER_NAME
    try:
        if not marker.is_file():
            mark_output(folder, "removing")
        for entry in folder.iterdir():
            if entry.name == MARKER_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass


def _recover(target: Path) -> str | None:
    """Finish or undo what killed runs left on ``target`` (call with the lock held); say what was done."""
    done = None
    ready = [p for p in _leftovers(target, "ready") if is_package_output(p)]
    previous = [p for p in _leftovers(target, "previous") if is_package_output(p)]
    if not target.exists() and not target.is_symlink():
        if ready:  # killed after the new output was complete: finish the swap
            newest = _newest(ready)
            newest.rename(target)
            ready.remove(newest)
            done = "finished"
        elif previous:  # killed after setting the old output aside: put it back
            newest = _newest(previous)
            newest.rename(target)
            previous.remove(newest)
            done = "restored"
        if done:
            fsync_path(target.parent)
    for folder in ready + previous + [p for p in _leftovers(target, "partial") if _ours(p)]:
        _remove_ours(folder)
        done = done or "cleaned"
    return done


def _acquire(lock: FileLock, path: str | os.PathLike, flag: str) -> None:
    try:
        lock.acquire()
    except Timeout:
        raise TavrnnInputError(
            f"another run is writing output folder {_shown(path)} ({flag}) (lock {lock.lock_file}); wait for it to "
            f"finish or "
            f"choose another output folder ({flag})"
        ) from None
    except OSError as error:
        raise TavrnnInputError(
            f"cannot write output folder {_shown(path)} ({flag}): {error.strerror or error}; choose a folder you can "
            f"write to"
        ) from error


def recover_output(path: str | os.PathLike, flag: str = "--output") -> str | None:
    """Finish or undo what killed runs left on the output ``path``.

    A complete new output that a killed run had not yet swapped in is moved into place; an old output that it had
    set aside is put back; leftover hidden ``.NAME.partial-*`` folders are removed. Call it before deciding from
    the folder's content whether a rerun has work to do (as :func:`check_output_target` does).

    Returns
    -------
    "finished", "restored", "cleaned" or None
        What was done (None: nothing was left over).

    Raises
    ------
    TavrnnInputError
        Another run is writing ``path`` now.
    """
    target = Path(path).expanduser().resolve()
    if not _has_leftovers(target):
        return None
    lock = lock_for(target)
    _acquire(lock, path, flag)
    try:
        return _recover(target)
    finally:
        lock.release()


def check_output_target(
    path: str | os.PathLike, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = (), flag: str = "--output"
) -> Path:
    """Refuse an output path that would replace something that is not ours; return it resolved.

    Call it before any work, so that a user learns at once that the output cannot be written. It also finishes
    or undoes what killed runs left on ``path`` (:func:`recover_output`).

    Parameters
    ----------
    path : str or PathLike
        The output folder to create or replace.
    overwrite : bool, default: False
        Whether an existing output of this package may be replaced.
    inputs : iterable of paths, default: ()
        Input files or folders; an output that contains one of them is refused.
    flag : str, default: "--output"
        How the message names the output option.

    Raises
    ------
    TavrnnInputError
        With one line that names the problem and the fix.
    """
    target, resolved = _check_place(path, list(inputs), flag)
    recover_output(resolved, flag)
    _check_existing(path, target, overwrite, flag)
    return resolved


@contextmanager
def output_folder(
    path: str | os.PathLike,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    kind: str = "output",
    flag: str = "--output",
) -> Iterator[Path]:
    """Build an output folder beside ``path`` and swap it into place when the block succeeds.

    Yields the (empty, marked) folder to write into. See the module docstring for the guarantees.

    Parameters
    ----------
    path : str or PathLike
        The output folder to create or replace.
    overwrite : bool, default: False
        Whether an existing output of this package may be replaced.
    inputs : iterable of paths, default: ()
        Input files or folders; an output that contains one of them is refused.
    kind : str, default: "output"
        Recorded in the marker file.
    flag : str, default: "--output"
        How messages name the output option.

    Raises
    ------
    TavrnnInputError
        The target is refused (see :func:`check_output_target`), another run holds its lock, or the disk refused
        a write (full, read-only, ...); the old output is then untouched.

    Examples
    --------
    >>> with output_folder("results", overwrite=True) as staging:  # doctest: +SKIP
    ...     (staging / "table.csv").write_text("...")
    """
    inputs = list(inputs)
    target = check_output_target(path, overwrite, inputs, flag)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TavrnnInputError(
            f"cannot create the parent of output folder {_shown(path)} ({flag}): {error.strerror or error}; choose a "
            f"folder you "
            f"can write to"
        ) from error
    lock = lock_for(target)
    _acquire(lock, path, flag)
    try:
        _recover(target)
        _check_existing(path, target, overwrite, flag)  # again: another run may have finished before the lock
        staging = temporary_sibling(target, "partial")
        try:
            staging.mkdir()
            mark_output(staging, kind)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise TavrnnInputError(
                f"cannot write output folder {_shown(path)} ({flag}): {error.strerror or error}; choose a folder you "
                f"can "
                f"write to"
            ) from error
        try:
            try:
                yield staging
            except OSError as error:
                converted = write_error(error, path, "output folder")
                if converted is error:
                    raise
                raise converted from error
            _sync_tree(staging)
            ready = temporary_sibling(target, "ready")
            staging.rename(ready)
            _swap_into_place(ready, target)
        finally:
            if staging.exists():
                _remove_ours(staging)
    finally:
        lock.release()


def _sync_tree(folder: Path) -> None:
    """``fsync`` every file and folder under ``folder``, so that the swap never exposes unwritten data."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def _swap_into_place(ready: Path, target: Path) -> None:
    """Rename ``ready`` to ``target``; an existing ``target`` is set aside first and deleted only afterwards."""
    previous = None
    if target.exists():
        previous = temporary_sibling(target, "previous")
        target.rename(previous)
    try:
        ready.rename(target)
    except BaseException:
        if previous is not None and not target.exists():
            previous.rename(target)
        raise
    fsync_path(target.parent)
    if previous is not None:
        _remove_ours(previous)
