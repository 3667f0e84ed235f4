"""Output folders that never lose a user's data: marked, locked, built beside and swapped in by renames.

Every folder the package writes as a whole (``tavrnn run`` / ``demo`` outputs, batch folders, reports) goes
through :func:`output_folder`:

1. :func:`check_output_target` refuses, before any work, a target that is a file, the current folder, the home
   folder, a file-system root, a folder that holds one of the inputs, an existing folder without ``overwrite``,
   and (with ``overwrite``) any existing folder that this package did not write (it carries no marker file).
2. An exclusive lock (``filelock``; the operating system drops it when a process dies, so a killed run never
   blocks the next one) is taken on ``.NAME.lock`` beside the target: a second run on the same output refuses.
3. Leftovers of killed runs on that path (``.NAME.partial-*``, ``.NAME.previous-*``) are cleaned up, and an
   output that a killed run had set aside but not yet replaced is put back.
4. The new output is built in ``.NAME.partial-XXXX`` (marked at once); on success the old output is renamed
   aside, the new one renamed into place, and only then is the old one deleted. On failure the partial folder is
   removed and the old output is untouched.

The package deletes only folders that carry its marker (or, for outputs of releases before the marker existed,
folders that hold nothing but an ``analyzer``/``analyzer.zarr`` and a ``report`` folder).
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
from .fileio import temporary_sibling, write_text_atomic

__all__ = ["MARKER_NAME", "output_folder", "check_output_target", "is_package_output", "mark_output"]

#: Name of the marker file that every output folder of this package carries.
MARKER_NAME = ".spikeinterface_tavrnn_output"

#: Contents of an output of a release before the marker: it may be replaced as if it carried the marker.
_LEGACY_OUTPUT_ENTRIES = {"analyzer", "analyzer.zarr", "report"}


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


def _protected_folders() -> list[Path]:
    folders = [Path.cwd().resolve(), Path.home().resolve()]
    folders += [Path(p.anchor) for p in folders]
    return folders


def check_output_target(
    path: str | os.PathLike, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = (), flag: str = "--output"
) -> Path:
    """Refuse an output path that would replace something that is not ours; return it resolved.

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
    target = Path(path).expanduser()
    resolved = target.resolve()
    if resolved in _protected_folders() or str(target) in ("", ".", ".."):
        raise TavrnnInputError(
            f"{flag} {os.fspath(path)!r} is the current, home or root folder; the package writes its output into a "
            f"folder of its own: give a new folder name, e.g. {flag} results_tavrnn"
        )
    for item in inputs:
        item = Path(item).expanduser().resolve()
        if item == resolved or resolved in item.parents:
            raise TavrnnInputError(
                f"{flag} {os.fspath(path)!r} contains the input {os.fspath(item)!r}; choose an output folder elsewhere"
            )
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise TavrnnInputError(
                f"{flag} {os.fspath(path)!r} exists and is not a folder; not replacing it: choose another {flag}"
            )
        if not overwrite:
            raise TavrnnInputError(
                f"{flag} {os.fspath(path)!r} exists; pass --overwrite to replace it, or choose another {flag}"
            )
        if not is_package_output(target):
            raise TavrnnInputError(
                f"{flag} {os.fspath(path)!r} is a folder that spikeinterface_tavrnn did not write (no {MARKER_NAME} "
                f"file); --overwrite replaces only this package's outputs: choose another {flag}"
            )
    return resolved


def _leftovers(target: Path, kind: str) -> list[Path]:
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}.{kind}-"
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())


def _recover(target: Path) -> None:
    """Finish or undo what a killed run left on ``target`` (call with the lock held)."""
    previous = [p for p in _leftovers(target, "previous") if is_package_output(p)]
    if previous and not target.exists():
        # killed between setting the old output aside and moving the new one in: put the old one back
        newest = max(previous, key=lambda p: p.stat().st_mtime)
        newest.rename(target)
        previous.remove(newest)
    for folder in previous + [p for p in _leftovers(target, "partial") if is_package_output(p)]:
        shutil.rmtree(folder, ignore_errors=True)


def lock_for(target: str | os.PathLike) -> FileLock:
    """The exclusive lock that guards writing ``target`` (a ``.NAME.lock`` file beside it)."""
    target = Path(target)
    return FileLock(str(target.parent / f".{target.name}.lock"), timeout=0)


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
        raise TavrnnInputError(f"cannot create the folder of {flag} {os.fspath(path)!r}: {error.strerror}") from error
    lock = lock_for(target)
    try:
        lock.acquire()
    except Timeout:
        raise TavrnnInputError(
            f"another run is writing {flag} {os.fspath(path)!r} (lock {lock.lock_file}); wait for it to finish or "
            f"choose another {flag}"
        ) from None
    except OSError as error:
        raise TavrnnInputError(f"cannot write to {flag} {os.fspath(path)!r}: {error.strerror}") from error
    try:
        _recover(target)
        check_output_target(path, overwrite, inputs, flag)  # again: another run may have finished before the lock
        staging = temporary_sibling(target, "partial")
        try:
            staging.mkdir()
            mark_output(staging, kind)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise TavrnnInputError(f"cannot write to {flag} {os.fspath(path)!r}: {error.strerror}") from error
        try:
            yield staging
            _swap_into_place(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is set aside first and deleted only afterwards."""
    previous = None
    if target.exists():
        previous = temporary_sibling(target, "previous")
        target.rename(previous)
    try:
        staging.rename(target)
    except BaseException:
        if previous is not None:
            previous.rename(target)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
