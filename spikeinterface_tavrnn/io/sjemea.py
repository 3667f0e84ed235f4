"""Reader for the sjemea / meaRtools HDF5 spike files (Eglen lab MEA tools) as a SpikeInterface sorting."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from spikeinterface.core import BaseSorting

from ..errors import TavrnnInputError
from ._base import UnitArraysSortingSegment, check_unit_times, split_well, to_python, to_str
from .detect import STANDARD_SAMPLING_FREQUENCIES, infer_sampling_frequency, seconds_to_samples

# Plate-level datasets of multi-well files: one value per well, aligned with /well.
_PER_WELL_DATASETS = ("treatment", "dose", "size", "units")


class SjemeaHDF5SortingExtractor(BaseSorting):
    """Spike times of an sjemea / meaRtools HDF5 file as a single-segment SpikeInterface sorting.

    The layout: ``/spikes`` (all spike times in seconds, concatenated electrode by electrode), ``/sCount`` (spikes
    per electrode), optional ``/names``, ``/epos`` (2 x n positions in um), ``/array``, ``/recordingtime``
    (``[t_start, t_stop]`` in s), ``/meta/*`` (``age``, ``region``, ``genotype``...) and, for multi-well plates,
    ``/well``, ``/treatment``, ``/dose``.

    Parameters
    ----------
    file_path : str or Path
        The ``.h5`` file.
    sampling_frequency : float or None, default: None
        Sampling rate in Hz. The files do not store it: when None it is inferred from the spike times, as the
        coarsest standard rate (10, 12.5, 20, 25, 30, 40, 50 kHz) on whose sample grid every time lies
        (see :func:`~spikeinterface_tavrnn.io.detect.infer_sampling_frequency`). Give it when the times lie on
        no such grid (e.g. times rounded to fewer decimals than the sample period) or the file has no spikes.

    Notes
    -----
    - Unit ids are the electrode names (``/names``), else ``"ch0"``, ``"ch1"``... The unit set is the electrode
      set of the file: electrodes with zero spikes stay as units with empty spike trains.
    - Times are converted to samples by rounding to the *nearest* sample. Sample 0 is time 0 s of the file, also
      when ``/recordingtime`` starts later (spikes before its start are kept).
    - Unit properties: ``electrode`` (the name), ``location`` (from ``/epos``, um, when it has one 2-D position
      per electrode), and for multi-well names such as ``"A1_21"``: ``well`` (``"A1"``) plus ``treatment`` /
      ``dose`` when the file maps wells to them.
    - Annotations: ``t_start_s`` / ``t_stop_s`` (from ``/recordingtime``; else 0 and the last spike time): a
      sorting without a recording does not know its duration otherwise; ``sampling_frequency_source``
      (``"user"`` or ``"inferred"``); ``source_format``; ``metadata``, a dict with everything else of the file
      (``array``, every ``/meta/*`` entry, the plate-level well tables, summaries).
    - Unsorted times within an electrode are sorted with a warning; NaN or negative times, or a ``/sCount``
      that does not add up to the length of ``/spikes``, raise ``TavrnnInputError`` (a ``ValueError``).
    """

    installed = True
    mode = "file"
    installation_mesg = ""
    name = "sjemea_hdf5"

    def __init__(self, file_path: str | Path, sampling_frequency: float | None = None):
        import h5py

        file_path = Path(file_path)
        if not file_path.is_file():
            raise FileNotFoundError(f"sjemea HDF5 file not found: '{file_path}'")
        source = f"sjemea HDF5 '{file_path.name}'"
        try:
            h5 = h5py.File(file_path, "r")
        except OSError as err:
            raise TavrnnInputError(f"{source} is not a readable HDF5 file ({err}).") from err
        with h5:
            for key in ("spikes", "sCount"):
                if not isinstance(h5.get(key), h5py.Dataset):
                    raise TavrnnInputError(
                        f"{source} has no '/{key}' dataset: not an sjemea/meaRtools spike file "
                        "(expected /spikes and /sCount). Use read_sorting(path) to try the other formats."
                    )
            spikes = np.asarray(h5["spikes"][()], dtype=np.float64).reshape(-1)
            counts = np.asarray(h5["sCount"][()]).reshape(-1)
            names = [to_str(n) for n in np.asarray(h5["names"][()]).reshape(-1)] if "names" in h5 else None
            epos = np.asarray(h5["epos"][()], dtype=np.float64) if "epos" in h5 else None
            recording_time = None
            if "recordingtime" in h5:
                recording_time = np.asarray(h5["recordingtime"][()], dtype=np.float64).reshape(-1)
            metadata = self._read_metadata(h5)

        if counts.size and (not np.issubdtype(counts.dtype, np.number) or np.any(counts < 0)):
            raise TavrnnInputError(f"{source}: /sCount must hold non-negative spike counts.")
        counts = counts.astype(np.int64)
        if int(counts.sum()) != spikes.size:
            raise TavrnnInputError(
                f"{source}: /sCount adds up to {int(counts.sum())} spikes but /spikes holds {spikes.size}; "
                "the file is truncated or not in the sjemea layout."
            )
        n_units = counts.size
        if names is None:
            names = [f"ch{i}" for i in range(n_units)]
        elif len(names) != n_units:
            raise TavrnnInputError(f"{source}: /names has {len(names)} entries but /sCount has {n_units}.")
        if len(set(names)) != len(names):
            raise TavrnnInputError(f"{source}: /names contains duplicates; unit ids must be unique.")

        offsets = np.concatenate([[0], np.cumsum(counts)])
        times_per_unit = [
            check_unit_times(spikes[offsets[i] : offsets[i + 1]], names[i], source) for i in range(n_units)
        ]

        if sampling_frequency is None:
            sampling_frequency = infer_sampling_frequency(spikes)
            if sampling_frequency is None:
                reason = "it has no spikes" if spikes.size == 0 else "its spike times lie on no standard sample grid"
                raise TavrnnInputError(
                    f"{source}: cannot infer the sampling rate because {reason} "
                    f"(tested {', '.join(f'{f:g}' for f in STANDARD_SAMPLING_FREQUENCIES)} Hz). "
                    "Pass sampling_frequency=... (Hz) explicitly."
                )
            frequency_source = "inferred"
        else:
            sampling_frequency = float(sampling_frequency)
            if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
                raise TavrnnInputError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}.")
            frequency_source = "user"

        unit_ids = np.array(names)
        BaseSorting.__init__(self, sampling_frequency=sampling_frequency, unit_ids=unit_ids)
        segment = UnitArraysSortingSegment(
            {uid: seconds_to_samples(t, sampling_frequency, uid, source) for uid, t in zip(unit_ids, times_per_unit)}
        )
        self.add_sorting_segment(segment)

        self.set_property("electrode", unit_ids.copy())
        location = _locations(epos, n_units)
        if location is not None:
            self.set_property("location", location)
        elif epos is not None:
            warnings.warn(f"{source}: /epos has shape {epos.shape}, not 2 x {n_units}; unit locations not set.")
        wells = [split_well(n) for n in names]
        if n_units and all(w is not None for w in wells):
            self.set_property("well", np.array(wells))
            plate_wells = metadata.get("well")
            if isinstance(plate_wells, list):
                for key in ("treatment", "dose"):
                    values = metadata.get(key)
                    if isinstance(values, list) and len(values) == len(plate_wells):
                        lookup = {str(w).upper(): str(v) for w, v in zip(plate_wells, values)}
                        self.set_property(key, np.array([lookup.get(w, "") for w in wells]))

        last_spike = max((float(t[-1]) for t in times_per_unit if t.size), default=0.0)
        usable = recording_time is not None and recording_time.size == 2 and np.all(np.isfinite(recording_time))
        if usable and recording_time[1] > recording_time[0]:
            t_start_s, t_stop_s = float(recording_time[0]), float(recording_time[1])
            if last_spike > t_stop_s:
                late = [(name, t) for name, t in zip(names, times_per_unit) if t.size and t[-1] > t_stop_s]
                n_late = sum(int(np.count_nonzero(t > t_stop_s)) for _, t in late)
                unit, times = max(late, key=lambda item: item[1][-1])
                warnings.warn(
                    f"{source}: {n_late} spike(s) of {len(late)} unit(s) lie after /recordingtime stop {t_stop_s:g} s "
                    f"(the latest: unit '{unit}' at {times[-1]:g} s); t_stop_s set to the last spike. A spike far "
                    "after the stated end is usually a corrupt time: check the file.",
                    stacklevel=2,
                )
                t_stop_s = last_spike
        else:
            if recording_time is not None:
                warnings.warn(
                    f"{source}: /recordingtime {recording_time.tolist()} is not a [start, stop] pair of finite "
                    "seconds with stop after start; it is ignored and the recording taken as 0 to the last spike "
                    f"({last_spike:g} s).",
                    stacklevel=2,
                )
            t_start_s, t_stop_s = 0.0, last_spike
        self.annotate(
            t_start_s=t_start_s,
            t_stop_s=t_stop_s,
            source_format="sjemea_hdf5",
            sampling_frequency_source=frequency_source,
            metadata=metadata,
        )
        self._kwargs = {
            "file_path": str(file_path.absolute()),
            "sampling_frequency": None if frequency_source == "inferred" else sampling_frequency,
        }

    @staticmethod
    def _read_metadata(h5) -> dict:
        """Every dataset of the file except the spike arrays, as plain Python values."""
        import h5py

        metadata = {}
        skip = {"spikes", "sCount", "names", "epos", "channels"}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name not in skip:
                key = name[len("meta/") :] if name.startswith("meta/") else name
                metadata[key] = to_python(obj[()])

        h5.visititems(visit)
        for key in _PER_WELL_DATASETS + ("well",):
            value = metadata.get(key)
            if value is not None and not isinstance(value, list):
                metadata[key] = [value]
        return metadata


def _locations(epos: np.ndarray | None, n_units: int) -> np.ndarray | None:
    if epos is None or epos.ndim != 2 or not np.all(np.isfinite(epos)):
        return None
    if epos.shape == (2, n_units):  # the sjemea convention, checked first (a 2 x 2 array is ambiguous)
        return np.ascontiguousarray(epos.T)
    if epos.shape == (n_units, 2):
        return np.ascontiguousarray(epos)
    return None


def read_sjemea_hdf5(file_path: str | Path, sampling_frequency: float | None = None) -> SjemeaHDF5SortingExtractor:
    """Read an sjemea / meaRtools HDF5 spike file as a SpikeInterface sorting.

    Parameters
    ----------
    file_path : str or Path
        The ``.h5`` file (``/spikes`` + ``/sCount`` layout).
    sampling_frequency : float or None, default: None
        Sampling rate in Hz; inferred from the spike-time grid when None.

    Returns
    -------
    SjemeaHDF5SortingExtractor
        A single-segment sorting; see the class for properties and annotations (``t_start_s``, ``t_stop_s``,
        ``metadata``).

    Examples
    --------
    >>> sorting = read_sjemea_hdf5("CO_20140205_MW1007-53_DIV14_00_001.h5")  # doctest: +SKIP
    >>> sorting.sampling_frequency, sorting.get_property("well")[:3]  # doctest: +SKIP
    (12500.0, array(['A1', 'A1', 'A1'], dtype='<U2'))
    """
    return SjemeaHDF5SortingExtractor(file_path, sampling_frequency=sampling_frequency)
