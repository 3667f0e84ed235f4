"""Atomic file writes: every file the package writes goes through :func:`atomic_write`.

A file is written beside its target under a hidden temporary name (``.NAME.tmp-PID-<random>``), flushed and
``fsync``-ed, then renamed over the target (``os.replace``, atomic on POSIX and Windows within one file system),
and the folder is ``fsync``-ed so that the rename survives a power cut. A failure at any point (full disk, a
read-only folder, a killed process, an exception while writing) leaves the previous file as it was; a failed write
removes its temporary file, and the temporary file of a killed process is removed by the next write to that path.

Disk problems the user can fix (no space, file-size limit, read-only or forbidden folder) are raised as
:class:`~spikeinterface_tavrnn.errors.TavrnnWriteError`, a :class:`~spikeinterface_tavrnn.errors.TavrnnInputError`
that is also an ``OSError``, with one line naming the path and the fix.
"""

from __future__ import annotations

import errno
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .errors import TavrnnInputError, TavrnnWriteError

__all__ = [
    "atomic_write",
    "write_bytes_atomic",
    "write_text_atomic",
    "temporary_sibling",
    "write_error",
    "fsync_path",
    "remove_stale_temporaries",
]

#: errno values of write failures that the user fixes on their side (space, limits, permissions).
USER_WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full; free some space or",
    errno.EDQUOT: "the disk quota is exceeded; free some space or",
    errno.EFBIG: "the file-size limit of this process or file system is reached; raise it or",
    errno.EROFS: "the file system is read-only;",
    errno.EACCES: "permission denied;",
    errno.EPERM: "operation not permitted;",
}


def temporary_sibling(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A hidden, unique path in the same folder as ``path``: ``.NAME.KIND-PID-<random>``.

    The process id in the name lets a later run tell the leftovers of a killed process from the files of a run
    that is still going (see :func:`remove_stale_temporaries`).
    """
    path = Path(path)
    return path.parent / f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_of(name: str, prefix: str) -> int | None:
    rest = name[len(prefix):]
    pid, _, tail = rest.partition("-")
    return int(pid) if pid.isdigit() and tail else None


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike, kind: str = "tmp") -> list[Path]:
    """Remove the temporary files ``.NAME.KIND-PID-*`` beside ``path`` whose process is gone; return them.

    Only files named by :func:`temporary_sibling` for this very ``path`` are considered, and only those of a
    process that no longer runs on this machine, so a write in progress is never disturbed.
    """
    path = Path(path)
    prefix = f".{path.name}.{kind}-"
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = _pid_of(entry.name, prefix)
        if pid is None or _process_alive(pid):
            continue
        try:
            if entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed.append(entry)
        except OSError:
            pass
    return removed


def fsync_path(path: str | os.PathLike) -> None:
    """``fsync`` a file, or a folder so that renames inside it are on disk (a no-op where it cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_error(error: OSError, path: str | os.PathLike, what: str = "file") -> TavrnnInputError | OSError:
    """The one-line user error for an ``OSError`` met while writing ``path``, or ``error`` itself.

    Errors the user fixes on their side (full disk, quota, file-size limit, read-only file system, permissions)
    become a :class:`~spikeinterface_tavrnn.errors.TavrnnWriteError` that says the previous content is untouched
    and what to do; other errors are returned unchanged.
    """
    if isinstance(error, TavrnnInputError):
        return error
    reason = USER_WRITE_ERRNOS.get(getattr(error, "errno", None))
    if reason is None:
        return error
    return TavrnnWriteError(
        error.errno,
        f"cannot write the {what} {os.fspath(path)!r}: {reason} choose another path "
        f"(nothing that was there has been changed)",
    )


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one rename.

    Parameters
    ----------
    path : str or PathLike
        The file to create or replace. Its folder must exist.
    mode : "wb" | "w", default: "wb"
        Binary or text.
    encoding : str or None, default: None
        Text encoding (``"utf-8"`` when ``mode="w"`` and None is given).

    Raises
    ------
    TavrnnInputError
        ``path`` is a folder, or its folder does not exist.
    TavrnnWriteError
        The disk is full, a size limit is reached, or the folder is read-only or forbidden (also an ``OSError``).

    Examples
    --------
    >>> with atomic_write("model.npz") as f:  # doctest: +SKIP
    ...     f.write(payload)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise TavrnnInputError(f"{os.fspath(path)!r} is a folder; give a file path to write to")
    if not path.parent.is_dir():
        raise TavrnnInputError(
            f"the folder of {os.fspath(path)!r} does not exist; create it first or choose another path"
        )
    remove_stale_temporaries(path)
    temporary = temporary_sibling(path)
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    try:
        try:
            handle = open(temporary, "xb" if mode == "wb" else "x", encoding=encoding)
        except OSError as error:
            raise write_error(error, path) from error
        with handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as error:
                raise write_error(error, path) from error
        try:
            os.replace(temporary, path)
        except OSError as error:
            raise write_error(error, path) from error
        fsync_path(path.parent)
    except BaseException as error:
        try:
            temporary.unlink()
        except OSError:
            pass
        if isinstance(error, OSError) and not isinstance(error, TavrnnInputError):
            converted = write_error(error, path)
            if converted is not error:
                raise converted from error
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
