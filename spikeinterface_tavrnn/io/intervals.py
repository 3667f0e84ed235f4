"""Behaviour intervals from a CSV file: one analysis window per row (trial, visit, epoch), with an optional label.

The file has a header row naming the columns ``start_s`` and ``stop_s`` (seconds) and optionally ``label``; other
columns are ignored. Every problem (missing file, empty file, header only, missing columns, a short row, text
where a number belongs, a stop before its start) is reported as a
:class:`~spikeinterface_tavrnn.errors.TavrnnInputError` naming the file and the line.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..errors import TavrnnInputError
from ..windows import Windows, windows_from_intervals

__all__ = ["read_intervals_csv"]

_REQUIRED = ("start_s", "stop_s")


def read_intervals_csv(path: str | os.PathLike) -> Windows:
    """Read behaviour-aligned windows from a CSV file with the columns ``start_s``, ``stop_s`` and ``label``.

    Parameters
    ----------
    path : str or PathLike
        A comma-separated file with a header row; ``label`` is optional. Blank lines are skipped.

    Returns
    -------
    Windows
        One window per row, in the order of the file, labelled when the file has a ``label`` column.

    Raises
    ------
    TavrnnInputError
        With one line naming the file, the line number and the problem.
    """
    path = Path(path)
    name = os.fspath(path)
    if not path.is_file():
        raise TavrnnInputError(f"intervals file {name!r} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TavrnnInputError(f"intervals file {name!r} is not a UTF-8 text CSV file ({error.reason})") from None
    except OSError as error:
        raise TavrnnInputError(f"cannot read intervals file {name!r}: {error.strerror}") from None
    if "\x00" in text:
        raise TavrnnInputError(f"intervals file {name!r} holds NUL bytes: it is not a text CSV file")
    rows = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), start=1) if any(c.strip() for c in row)]
    if not rows:
        raise TavrnnInputError(f"intervals file {name!r} is empty; it needs a header 'start_s,stop_s[,label]' and one row per window")
    header_line, header = rows[0]
    columns = [cell.strip() for cell in header]
    missing = [column for column in _REQUIRED if column not in columns]
    if missing:
        raise TavrnnInputError(
            f"intervals file {name!r} line {header_line}: the header needs the columns start_s and stop_s (and optionally "
            f"label); found {columns}"
        )
    if len(rows) == 1:
        raise TavrnnInputError(f"intervals file {name!r} has a header but no intervals; add one row 'start_s,stop_s[,label]' per window")
    index = {column: columns.index(column) for column in (*_REQUIRED, "label") if column in columns}
    needed = max(index.values()) + 1
    starts, stops, labels = [], [], []
    for line, row in rows[1:]:
        if len(row) < needed:
            raise TavrnnInputError(
                f"intervals file {name!r} line {line}: {len(row)} field(s) where the header has {len(columns)}; "
                "every row needs start_s and stop_s"
            )
        values = []
        for column in _REQUIRED:
            cell = row[index[column]].strip()
            try:
                value = float(cell)
            except ValueError:
                raise TavrnnInputError(
                    f"intervals file {name!r} line {line}: {column} is {cell!r}, not a number of seconds"
                ) from None
            if not math.isfinite(value):
                raise TavrnnInputError(f"intervals file {name!r} line {line}: {column} is {cell!r}; give a finite time in s")
            values.append(value)
        start, stop = values
        if stop <= start:
            raise TavrnnInputError(
                f"intervals file {name!r} line {line}: stop_s {stop:g} is not after start_s {start:g}"
            )
        starts.append(start)
        stops.append(stop)
        if "label" in index:
            labels.append(row[index["label"]].strip())
    return windows_from_intervals(starts, stops, labels if "label" in index else None)
