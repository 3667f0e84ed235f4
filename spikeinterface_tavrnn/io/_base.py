"""Shared pieces of the MEA export readers: a sorting segment over per-unit sample arrays, checks, name parsing."""

from __future__ import annotations

import re
import warnings

import numpy as np
from spikeinterface.core import BaseSortingSegment

from ..errors import TavrnnInputError

# "A1_21" (well A1, electrode 21), "B12_44": Axion / Multi Channel Systems multi-well electrode names.
_WELL_ELECTRODE = re.compile(r"^([A-Za-z]{1,2}\d{1,2})_(\w+)$")


class UnitArraysSortingSegment(BaseSortingSegment):
    """One segment holding a sorted int64 sample array per unit."""

    def __init__(self, spike_samples: dict):
        BaseSortingSegment.__init__(self, t_start=None)
        self._spike_samples = spike_samples

    def get_unit_spike_train(self, unit_id, start_frame: int | None = None, end_frame: int | None = None):
        samples = self._spike_samples[unit_id]
        i0 = 0 if start_frame is None else np.searchsorted(samples, start_frame, side="left")
        i1 = samples.size if end_frame is None else np.searchsorted(samples, end_frame, side="left")
        return samples[i0:i1]


def split_well(name: str) -> str | None:
    """Return the well of a multi-well electrode name (``"A1_21"`` -> ``"A1"``), or None for other names."""
    match = _WELL_ELECTRODE.match(name)
    return match.group(1).upper() if match else None


def check_unit_times(times_s: np.ndarray, unit_name: str, source: str) -> np.ndarray:
    """Validate one unit's spike times in seconds; return them sorted.

    NaN / infinite or negative times are errors (:class:`~spikeinterface_tavrnn.errors.TavrnnInputError`;
    SpikeInterface samples start at 0 = time 0 of the file). Unsorted times are sorted with a ``UserWarning`` that
    names the unit: the order of spikes in a file carries no information.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    if not np.all(np.isfinite(times_s)):
        n_bad = int(np.count_nonzero(~np.isfinite(times_s)))
        raise TavrnnInputError(
            f"{source}: unit '{unit_name}' has {n_bad} NaN or infinite spike time(s). "
            "Remove them from the file (or the array) before reading."
        )
    if times_s.size and times_s.min() < 0:
        raise TavrnnInputError(
            f"{source}: unit '{unit_name}' has negative spike times (min {times_s.min():g} s). SpikeInterface "
            "counts samples from time 0 of the file; shift the times so that they are >= 0."
        )
    if times_s.size > 1 and np.any(np.diff(times_s) < 0):
        n_back = int(np.count_nonzero(np.diff(times_s) < 0))
        warnings.warn(
            f"{source}: spike times of unit '{unit_name}' were not sorted ({n_back} step(s) back in time); they have "
            "been sorted. A single far-off time among sorted ones is usually a corrupt value: check the file.",
            stacklevel=3,
        )
        times_s = np.sort(times_s, kind="stable")
    return times_s


def warn_skipped_rows(source: str, skipped: dict[str, list[int]]) -> None:
    """One ``UserWarning`` that counts the rows a reader skipped, by reason, with the first line numbers.

    Parameters
    ----------
    source : str
        The file, as named in messages.
    skipped : dict
        ``{reason: [line numbers]}``, e.g. ``{"blank": [12, 13], "with NUL bytes": [40]}``; empty lists are ignored.
    """
    parts = []
    for reason, lines in skipped.items():
        if lines:
            shown = ", ".join(str(n) for n in lines[:_SHOWN_LINES]) + (", ..." if len(lines) > _SHOWN_LINES else "")
            parts.append(f"{len(lines)} {reason} row(s) (line {shown})")
    if parts:
        warnings.warn(
            f"{source}: skipped {'; '.join(parts)}. The file may be damaged: check it, or re-export it.", stacklevel=3
        )


_SHOWN_LINES = 5


def to_str(value) -> str:
    """Decode HDF5 bytes / numpy scalars to str."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


def to_python(value):
    """Turn an HDF5 / numpy value into plain JSON-friendly Python (str, int, float, lists of them)."""
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return to_python(value.reshape(-1)[0])
        return [to_python(v) for v in value.reshape(-1)]
    if isinstance(value, (bytes, np.bytes_, str, np.str_)):
        return to_str(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.void):  # compound rows (e.g. summary.table)
        return {name: to_python(value[name]) for name in value.dtype.names}
    return value
