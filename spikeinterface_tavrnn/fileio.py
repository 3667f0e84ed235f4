"""Atomic file writes: every file the package writes goes through :func:`atomic_write`.

A file is written beside its target under a hidden temporary name, flushed to disk, then renamed over the target
(``os.replace``, atomic on POSIX and Windows within one file system). A failure at any point (full disk, a killed
process, an exception while writing) leaves the previous file as it was; a failed write removes its temporary file.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic", "temporary_sibling"]


def temporary_sibling(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A hidden, unique path in the same folder as ``path``: ``.NAME.KIND-XXXXXXXXXXXX``."""
    path = Path(path)
    return path.parent / f".{path.name}.{kind}-{uuid.uuid4().hex[:12]}"


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

    Examples
    --------
    >>> with atomic_write("model.npz") as f:  # doctest: +SKIP
    ...     f.write(payload)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file path to write to.")
    temporary = temporary_sibling(path)
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    try:
        with open(temporary, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
