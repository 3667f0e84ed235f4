"""Reader for Axion BioSystems AxIS / Maestro ``spike_list.csv`` exports as a SpikeInterface sorting."""

from __future__ import annotations

import csv
import gzip
import re
import warnings
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from spikeinterface.core import BaseSorting

from ..errors import TavrnnInputError
from ._base import UnitArraysSortingSegment, check_unit_times, split_well, warn_skipped_rows
from .detect import STANDARD_SAMPLING_FREQUENCIES, infer_sampling_frequency, seconds_to_samples

#: Axion Maestro / Maestro Pro / Edge systems sample every electrode at 12.5 kHz.
AXION_SAMPLING_FREQUENCY = 12500.0

_TIME_COLUMN = "Time (s)"
_ELECTRODE_COLUMN = "Electrode"
_AMPLITUDE_COLUMN = "Amplitude(mV)"


#: A spike list whose last spike ends this many seconds (and this fraction of the section) before the end of the
#: recorded section its settings state "seems cut".
CUT_TOLERANCE_S = 10.0
CUT_TOLERANCE_FRACTION = 0.05

_REPLACEMENT_CHARACTER = "\ufffd"


def _open_text(path: Path) -> str:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise TavrnnInputError(
                f"'{path.name}' is a truncated or damaged gzip file ({err}); copy or export it again "
                "(`gzip -t FILE` checks a copy)."
            ) from None
    return raw.decode("utf-8-sig", errors="replace")


def _split_lines(text: str) -> list[str]:
    """The text's lines (any line endings); a final newline adds no empty line."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _section_duration_s(settings: dict) -> float | None:
    """Length in s of the recorded section that the settings block states (``Actual File Section Run``,
    e.g. ``0s to 18m2s``), or None when absent or unreadable."""
    text = settings.get("Actual File Section Run") or settings.get("Requested File Section")
    match = re.match(r"^\s*(\S+)\s+to\s+(\S+)\s*$", text or "")
    if not match:
        return None
    start, stop = _parse_duration_s(match.group(1)), _parse_duration_s(match.group(2))
    if start is None or stop is None or stop <= start:
        return None
    return stop - start


def _parse_duration_s(text: str) -> float | None:
    """``"18m2s"``, ``"1h2m3.5s"``, ``"0s"`` -> seconds; None for anything else."""
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", text.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return 3600.0 * hours + 60.0 * minutes + seconds


def _well_sort_key(well: str, electrode: str):
    match = re.match(r"^([A-Za-z]+)(\d+)$", well)
    row, col = (match.group(1).upper(), int(match.group(2))) if match else (well, 0)
    return (row, col, electrode)


def read_axion_experiment_log(file_path: str | Path) -> dict[str, dict[str, str]]:
    """Read an Axion / meaRtools experiment log (``*_expLog.csv(.gz)``): one row per well.

    Parameters
    ----------
    file_path : str or Path
        The CSV file (plain or gzip; any line endings) with at least the columns ``Well`` and ``Treatment``
        (usually also ``Project``, ``Experiment Date``, ``Plate SN``, ``DIV``, ``Size``, ``Dose``, ``Units``).

    Returns
    -------
    dict
        ``{well: {column: value}}`` with column names lower-cased and stripped (``"treatment"``, ``"dose"``,
        ``"div"``...), values as stripped strings (empty when the log leaves the cell empty).
    """
    file_path = Path(file_path)
    if not file_path.is_file():
        raise FileNotFoundError(f"Axion experiment log not found: '{file_path}'")
    source = f"Axion experiment log '{file_path.name}'"
    rows, damaged = [], {"NUL-byte": [], "undecodable": []}
    for line_number, line in enumerate(_split_lines(_open_text(file_path)), start=1):
        if "\x00" in line:
            damaged["NUL-byte"].append(line_number)
        elif _REPLACEMENT_CHARACTER in line:
            damaged["undecodable"].append(line_number)
        else:
            row = next(csv.reader([line]), [])
            if any(cell.strip() for cell in row):
                rows.append(row)
    warn_skipped_rows(source, damaged)
    if not rows:
        raise TavrnnInputError(f"{source} is empty: give the plate's experiment log (one row per well).")
    header = [c.strip().lower() for c in rows[0]]
    if "well" not in header or "treatment" not in header:
        raise TavrnnInputError(
            f"Axion experiment log '{file_path.name}' needs 'Well' and 'Treatment' columns; found {rows[0]}."
        )
    well_col = header.index("well")
    log = {}
    for row in rows[1:]:
        row = row + [""] * (len(header) - len(row))
        well = row[well_col].strip().upper()
        if well:
            log[well] = {name: row[i].strip() for i, name in enumerate(header) if name}
    return log


class AxionSpikeListSortingExtractor(BaseSorting):
    """An Axion AxIS / Maestro ``spike_list.csv`` (or ``.csv.gz``) export as a single-segment sorting.

    The export has the columns ``Time (s)``, ``Electrode`` (``<well>_<electrode>``, e.g. ``A1_21``) and
    ``Amplitude(mV)``, one row per spike; the first two columns of the first rows carry a key / value block of
    recording settings (``Sampling Frequency``, ``Plate Type``, ``AxIS Version``, spike detector settings...).

    Parameters
    ----------
    file_path : str or Path
        The spike list CSV, plain or gzip-compressed (recognised by content).
    sampling_frequency : float or None, default: None
        Sampling rate in Hz. When None: the ``Sampling Frequency`` of the settings block (12,500 Hz on Maestro
        systems); without one, the coarsest standard rate whose sample grid holds every spike time.
    experiment_log : str, Path, dict or None, default: None
        An experiment log file (see :func:`read_axion_experiment_log`) or its ``{well: {"treatment": ...}}``
        dict: adds the unit properties ``treatment`` (and ``dose`` when present), ``""`` for unlisted wells.
    t_stop_s : float or None, default: None
        End of the recording in s. Spike lists do not store it reliably, so by default it is the last spike time;
        when the settings state the recorded section (``Actual File Section Run``) and the last spike lies well
        before its end (more than ``CUT_TOLERANCE_S`` and ``CUT_TOLERANCE_FRACTION`` of it), a warning says the
        file seems cut. Giving ``t_stop_s`` silences it.

    Notes
    -----
    - Units are the electrodes that have at least one spike, ordered by well (row, column) then electrode;
      unit ids are the electrode names. Properties: ``well``, ``electrode`` (the full name) and
      ``median_amplitude_mV`` (per-spike amplitudes are not kept).
    - Times are rounded to the nearest sample; sample 0 is time 0 s of the export.
    - Annotations: ``t_start_s`` (0), ``t_stop_s``, ``source_format``, ``sampling_frequency_source``
      (``"user"``, ``"header"`` or ``"inferred"``) and ``metadata`` (the settings block as a dict).
    - Rows with an empty time are settings-only rows. Blank rows, rows with NUL bytes or bytes that are not UTF-8,
      rows with a time but no electrode and a last line cut short (no final newline, missing columns) are skipped
      with one warning that counts them. A time or amplitude that is not a number, a NaN
      time or an electrode name that is not ``<well>_<electrode>`` raise ``TavrnnInputError`` (a ``ValueError``). Unsorted times are
      sorted with a warning.
    """

    installed = True
    mode = "file"
    installation_mesg = ""
    name = "axion_spike_list"

    def __init__(
        self,
        file_path: str | Path,
        sampling_frequency: float | None = None,
        experiment_log: str | Path | Mapping | None = None,
        t_stop_s: float | None = None,
    ):
        file_path = Path(file_path)
        if not file_path.is_file():
            raise FileNotFoundError(f"Axion spike list not found: '{file_path}'")
        source = f"Axion spike list '{file_path.name}'"
        text = _open_text(file_path)
        lines = _split_lines(text)
        ends_with_newline = text.endswith(("\n", "\r"))
        if ends_with_newline:
            lines = lines[:-1]
        if not lines or not lines[0].strip():
            raise TavrnnInputError(f"{source} is empty: export the spike list again.")
        header = [c.strip() for c in next(csv.reader([lines[0]]))]
        if _TIME_COLUMN not in header or _ELECTRODE_COLUMN not in header:
            raise TavrnnInputError(
                f"{source}: the first row must name the columns '{_TIME_COLUMN}' and '{_ELECTRODE_COLUMN}' "
                f"(found {header}); is this an Axion spike list export?"
            )
        i_time, i_el = header.index(_TIME_COLUMN), header.index(_ELECTRODE_COLUMN)
        i_amp = header.index(_AMPLITUDE_COLUMN) if _AMPLITUDE_COLUMN in header else None
        n_settings_cols = min(i_time, i_el)
        n_columns = max(i_time, i_el, -1 if i_amp is None else i_amp) + 1

        settings = {}
        times, electrodes, amplitudes = [], [], []
        skipped = {"blank": [], "NUL-byte": [], "undecodable": [], "time-without-electrode": []}
        truncated_last_line = None
        for line_number, line in enumerate(lines[1:], start=2):
            if "\x00" in line:
                skipped["NUL-byte"].append(line_number)
                continue
            if _REPLACEMENT_CHARACTER in line:
                skipped["undecodable"].append(line_number)
                continue
            row = next(csv.reader([line]), [])
            if not any(cell.strip() for cell in row):
                skipped["blank"].append(line_number)
                continue
            if n_settings_cols >= 2 and len(row) >= 2 and row[0].strip():
                settings[row[0].strip()] = row[1].strip()
            if len(row) <= i_time or not row[i_time].strip():
                continue  # a settings-only row
            if line_number == len(lines) and not ends_with_newline and len(row) < n_columns:
                truncated_last_line = line_number
                continue
            if len(row) <= i_el or not row[i_el].strip():
                skipped["time-without-electrode"].append(line_number)
                continue
            try:
                times.append(float(row[i_time]))
                amplitudes.append(float(row[i_amp]) if i_amp is not None and len(row) > i_amp else np.nan)
            except ValueError:
                raise TavrnnInputError(
                    f"{source}, line {line_number}: '{row[i_time]}' is not a spike time in seconds "
                    "(or the amplitude is not a number); fix or delete that line."
                ) from None
            electrodes.append(row[i_el].strip())
        if truncated_last_line is not None:
            skipped["truncated last"] = [truncated_last_line]
        warn_skipped_rows(source, skipped)
        times = np.asarray(times, dtype=np.float64)
        amplitudes = np.asarray(amplitudes, dtype=np.float64)
        electrodes = np.asarray(electrodes, dtype=str)

        bad = [e for e in np.unique(electrodes) if split_well(e) is None]
        if bad:
            raise TavrnnInputError(
                f"{source}: electrode names must look like '<well>_<electrode>' (e.g. 'A1_21'); got {bad[:5]}."
            )

        frequency_source = "user"
        if sampling_frequency is None:
            sampling_frequency = _parse_hz(settings.get("Sampling Frequency", ""))
            frequency_source = "header"
            if sampling_frequency is None:
                sampling_frequency = infer_sampling_frequency(times)
                frequency_source = "inferred"
            if sampling_frequency is None:
                raise TavrnnInputError(
                    f"{source}: no 'Sampling Frequency' in the settings block and the spike times lie on no "
                    f"standard sample grid ({', '.join(f'{f:g}' for f in STANDARD_SAMPLING_FREQUENCIES)} Hz). "
                    f"Pass sampling_frequency=... (Axion Maestro systems record at {AXION_SAMPLING_FREQUENCY:g} Hz)."
                )
        sampling_frequency = float(sampling_frequency)
        if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
            raise TavrnnInputError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}.")

        unit_names = sorted(np.unique(electrodes).tolist(), key=lambda e: _well_sort_key(*e.split("_", 1)))
        order = np.argsort(electrodes, kind="stable")
        sorted_names = electrodes[order]
        first = np.searchsorted(sorted_names, unit_names, side="left")
        last = np.searchsorted(sorted_names, unit_names, side="right")
        spike_samples, median_amplitudes = {}, []
        for name, i0, i1 in zip(unit_names, first, last):
            idx = order[i0:i1]
            unit_times = check_unit_times(times[idx], name, source)
            spike_samples[name] = seconds_to_samples(unit_times, sampling_frequency, name, source)
            median_amplitudes.append(np.nanmedian(amplitudes[idx]) if np.any(np.isfinite(amplitudes[idx])) else np.nan)

        unit_ids = np.array(unit_names, dtype=str)
        BaseSorting.__init__(self, sampling_frequency=sampling_frequency, unit_ids=unit_ids)
        self.add_sorting_segment(UnitArraysSortingSegment(spike_samples))
        wells = [split_well(n) for n in unit_names]
        self.set_property("well", np.array(wells, dtype=str))
        self.set_property("electrode", unit_ids.copy())
        self.set_property("median_amplitude_mV", np.asarray(median_amplitudes, dtype=np.float64))

        log_kwarg = experiment_log
        if experiment_log is not None:
            if isinstance(experiment_log, (str, Path)):
                log_kwarg = str(Path(experiment_log).absolute())
                experiment_log = read_axion_experiment_log(experiment_log)
            elif isinstance(experiment_log, Mapping):
                experiment_log = {str(k).upper(): dict(v) for k, v in experiment_log.items()}
                log_kwarg = experiment_log
            else:
                raise TypeError("experiment_log must be a file path or a {well: {'treatment': ...}} dict.")
            for key in ("treatment", "dose"):
                if any(key in row for row in experiment_log.values()):
                    values = [experiment_log.get(w, {}).get(key, "") for w in wells]
                    self.set_property(key, np.array(values, dtype=str))

        last_spike = float(times.max()) if times.size else 0.0
        if t_stop_s is None:
            t_stop_s = last_spike
            section_s = _section_duration_s(settings)
            if section_s is not None and last_spike < section_s - max(CUT_TOLERANCE_S, CUT_TOLERANCE_FRACTION * section_s):
                warnings.warn(
                    f"{source} seems cut: its settings state a recorded section of {section_s:g} s but the last spike "
                    f"is at {last_spike:g} s, so the recording is taken to end there. Pass t_stop_s={section_s:g} if "
                    f"the file is complete and the wells fell silent, or t_stop_s={last_spike:g} to accept the "
                    "shorter span; either silences this warning.",
                    stacklevel=2,
                )
        elif not np.isfinite(float(t_stop_s)):
            raise TavrnnInputError(f"{source}: t_stop_s must be a finite number of seconds, got {t_stop_s}.")
        elif float(t_stop_s) < last_spike:
            raise TavrnnInputError(
                f"{source}: t_stop_s={t_stop_s} s is before the last spike ({last_spike} s); pass a later t_stop_s."
            )
        self.annotate(
            t_start_s=0.0,
            t_stop_s=float(t_stop_s),
            source_format="axion_spike_list",
            sampling_frequency_source=frequency_source,
            metadata=settings,
        )
        self._kwargs = {
            "file_path": str(file_path.absolute()),
            "sampling_frequency": sampling_frequency if frequency_source == "user" else None,
            "experiment_log": log_kwarg,
            "t_stop_s": None if t_stop_s == last_spike else float(t_stop_s),
        }


def _parse_hz(text: str) -> float | None:
    match = re.match(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*(k?)Hz", text)
    if not match:
        return None
    value = float(match.group(1)) * (1000.0 if match.group(2) else 1.0)
    return value if value > 0 else None


def read_axion_spike_list(
    file_path: str | Path,
    sampling_frequency: float | None = None,
    experiment_log: str | Path | Mapping | None = None,
    t_stop_s: float | None = None,
) -> AxionSpikeListSortingExtractor:
    """Read an Axion AxIS / Maestro ``spike_list.csv(.gz)`` export as a SpikeInterface sorting.

    Parameters
    ----------
    file_path : str or Path
        The spike list export.
    sampling_frequency : float or None, default: None
        Sampling rate in Hz; by default the file's ``Sampling Frequency`` setting (12.5 kHz on Maestro systems),
        else inferred from the spike-time grid.
    experiment_log : str, Path, dict or None, default: None
        Experiment log file or dict mapping wells to treatments; adds the unit property ``treatment``.
    t_stop_s : float or None, default: None
        Recording end in s (default: the last spike).

    Returns
    -------
    AxionSpikeListSortingExtractor

    Examples
    --------
    >>> sorting = read_axion_spike_list(
    ...     "plate1_DIV3_spike_list.csv.gz", experiment_log="plate1_expLog.csv.gz"
    ... )  # doctest: +SKIP
    >>> sorting.get_property("treatment")[:2]  # doctest: +SKIP
    """
    return AxionSpikeListSortingExtractor(
        file_path, sampling_frequency=sampling_frequency, experiment_log=experiment_log, t_stop_s=t_stop_s
    )
