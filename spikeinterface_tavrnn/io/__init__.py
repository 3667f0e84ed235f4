"""Readers for spike data: MEA exports that SpikeInterface and Neo lack, and one entry point for all formats.

``read_sorting(path)`` identifies the format by content (:func:`detect_format`) and returns a SpikeInterface
sorting. Every sorting returned by the readers of this module carries the annotations ``t_start_s`` and
``t_stop_s`` (recording start and end, in s) because a sorting without a recording does not know its duration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TavrnnInputError
from .axion import (
    AXION_SAMPLING_FREQUENCY,
    AxionSpikeListSortingExtractor,
    read_axion_experiment_log,
    read_axion_spike_list,
)
from .detect import (
    STANDARD_SAMPLING_FREQUENCIES,
    SUPPORTED_FORMATS,
    detect_format,
    infer_sampling_frequency,
    seconds_to_samples,
)
from .sjemea import SjemeaHDF5SortingExtractor, read_sjemea_hdf5

__all__ = [
    "AXION_SAMPLING_FREQUENCY",
    "AxionSpikeListSortingExtractor",
    "SjemeaHDF5SortingExtractor",
    "STANDARD_SAMPLING_FREQUENCIES",
    "SUPPORTED_FORMATS",
    "detect_format",
    "infer_sampling_frequency",
    "read_axion_experiment_log",
    "read_axion_spike_list",
    "read_neo_sorting",
    "read_sjemea_hdf5",
    "read_sorting",
    "seconds_to_samples",
]


def read_neo_sorting(
    file_or_folder: str | Path,
    sampling_frequency: float | None = None,
    segment_index: int = 0,
    block_index: int = 0,
):
    """Read the spike trains of any file Neo can read as a SpikeInterface ``NumpySorting``.

    Unlike ``NumpySorting.from_neo_spiketrain_list`` (which rounds times *down* to samples and drops
    annotations), times are rounded to the nearest sample and the recording bounds are kept.

    Parameters
    ----------
    file_or_folder : str or Path
        Anything ``neo.io.get_io`` recognises.
    sampling_frequency : float or None, default: None
        Sampling rate in Hz; by default the ``sampling_rate`` of the spike trains (they must agree).
    segment_index : int, default: 0
        Neo segment to read (SpikeInterface sortings from this reader have one segment).
    block_index : int, default: 0
        Neo block to read.

    Returns
    -------
    NumpySorting
        Unit ids from the spike trains' ``name`` (else their index); annotations ``t_start_s``, ``t_stop_s``
        (Neo segment bounds) and ``source_format="neo"``. Sample 0 is time 0 s: spike times keep Neo's absolute
        time base.
    """
    import neo.io
    import quantities as pq
    from spikeinterface.core import NumpySorting

    try:
        reader = neo.io.get_io(str(file_or_folder))
    except OSError as err:
        raise TavrnnInputError(f"cannot read '{file_or_folder}': Neo has no reader for it ({err})") from err
    try:
        blocks = reader.read()
    except Exception as err:
        raise TavrnnInputError(
            f"cannot read '{file_or_folder}': Neo's {type(reader).__name__} failed ({type(err).__name__}: {err}). "
            "If it is not a Neo file, pass read_sorting(path, format=...) with one of: "
            f"{', '.join(SUPPORTED_FORMATS)}."
        ) from err
    blocks = [b for b in (blocks or []) if b is not None]
    if not blocks:
        raise TavrnnInputError(
            f"cannot read '{file_or_folder}': Neo's {type(reader).__name__} found no data block in it. If it is not a "
            f"Neo file, pass read_sorting(path, format=...) with one of: {', '.join(SUPPORTED_FORMATS)}."
        )
    if block_index >= len(blocks):
        raise IndexError(
            f"'{file_or_folder}' has {len(blocks)} Neo block(s); block_index={block_index} is out of range."
        )
    segments = blocks[block_index].segments
    if segment_index >= len(segments):
        raise IndexError(
            f"'{file_or_folder}' has {len(segments)} segment(s); segment_index={segment_index} is out of range."
        )
    spiketrains = segments[segment_index].spiketrains
    if not spiketrains:
        raise TavrnnInputError(f"'{file_or_folder}' (block {block_index}, segment {segment_index}) holds no spike trains.")

    if sampling_frequency is None:
        rates = {
            float(st.sampling_rate.rescale(pq.Hz).magnitude) for st in spiketrains if st.sampling_rate is not None
        }
        if len(rates) != 1 or not all(np.isfinite(list(rates))) or min(rates) <= 1.0:
            raise TavrnnInputError(
                f"'{file_or_folder}': the spike trains do not state one common sampling rate "
                f"(found {sorted(rates)} Hz). Pass sampling_frequency=... (Hz)."
            )
        sampling_frequency = rates.pop()
    sampling_frequency = float(sampling_frequency)

    names = [str(st.name) if st.name not in (None, "") else str(i) for i, st in enumerate(spiketrains)]
    if len(set(names)) != len(names):
        names = [str(i) for i in range(len(spiketrains))]
    unit_dict = {}
    for name, st in zip(names, spiketrains):
        times_s = np.asarray(st.times.rescale(pq.s).magnitude, dtype=np.float64)
        if times_s.size and times_s.min() < 0:
            raise TavrnnInputError(
                f"'{file_or_folder}': unit '{name}' has negative spike times; SpikeInterface needs times >= 0."
            )
        unit_dict[name] = np.sort(seconds_to_samples(times_s, sampling_frequency))
    sorting = NumpySorting.from_unit_dict([unit_dict], sampling_frequency=sampling_frequency)
    t_start_s = min(float(st.t_start.rescale(pq.s).magnitude) for st in spiketrains)
    t_stop_s = max(float(st.t_stop.rescale(pq.s).magnitude) for st in spiketrains)
    sorting.annotate(t_start_s=t_start_s, t_stop_s=t_stop_s, source_format="neo", neo_io=type(reader).__name__)
    return sorting


def read_sorting(path: str | Path, format: str | None = None, **kwargs):
    """Read sorted spikes from any supported file or folder.

    Parameters
    ----------
    path : str or Path
        A file or folder.
    format : str or None, default: None
        One of ``"sjemea_hdf5"``, ``"axion_spike_list"``, ``"spikeinterface"``, ``"phy"``, ``"kilosort"``,
        ``"nwb"``, ``"neo"``. None detects it from the content (:func:`detect_format`).
    **kwargs
        Passed to the reader: :func:`read_sjemea_hdf5`, :func:`read_axion_spike_list`, ``spikeinterface.load``,
        ``spikeinterface.extractors.read_phy`` / ``read_kilosort`` (need ``pandas``), ``read_nwb_sorting`` or
        :func:`read_neo_sorting`.

    Returns
    -------
    BaseSorting or SortingAnalyzer
        A sorting, except for ``"spikeinterface"`` where whatever ``spikeinterface.load`` returns is passed on
        unchanged: a saved ``SortingAnalyzer`` comes back as the analyzer (use ``analyzer.sorting``), a saved
        recording as the recording. Sortings of the package's own readers carry ``t_start_s`` / ``t_stop_s``
        annotations; the others only when the format stores them.

    Raises
    ------
    TavrnnInputError
        When the format is unknown or cannot be detected: the message lists the supported formats.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: '{path}'")
    if format is None:
        format = detect_format(path)
        if format is None:
            raise TavrnnInputError(
                f"Could not identify the spike data format of '{path}'. Supported formats: "
                f"{', '.join(SUPPORTED_FORMATS)} (sjemea HDF5, Axion spike_list.csv, SpikeInterface saved folders, "
                "Phy/Kilosort folders, NWB, and any file Neo reads). Pass format=... if you know it."
            )
    if format == "sjemea_hdf5":
        return read_sjemea_hdf5(path, **kwargs)
    if format == "axion_spike_list":
        return read_axion_spike_list(path, **kwargs)
    if format not in _OTHER_READERS:
        raise TavrnnInputError(f"Unknown format '{format}'. Supported formats: {', '.join(SUPPORTED_FORMATS)}.")
    try:
        return _OTHER_READERS[format](path, **kwargs)
    except (TavrnnInputError, FileNotFoundError, TypeError, ImportError):
        raise  # already clear, or a wrong keyword / missing package that the message names
    except Exception as err:  # a damaged file makes third-party readers fail in many ways; name the file and why
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TavrnnInputError(
            f"'{path}' looks like a {format} {'folder' if path.is_dir() else 'file'} but could not be read "
            f"({type(err).__name__}: {detail[:200]}); it may be incomplete or damaged, or pass format=... if it is "
            "another format."
        ) from err


def _read_spikeinterface(path: Path, **kwargs):
    from spikeinterface.core import load

    return load(path, **kwargs)


def _read_phy(path: Path, **kwargs):
    from spikeinterface.extractors import read_phy

    return read_phy(path, **kwargs)


def _read_kilosort(path: Path, **kwargs):
    from spikeinterface.extractors import read_kilosort

    return read_kilosort(path, **kwargs)


def _read_nwb(path: Path, **kwargs):
    from spikeinterface.extractors import read_nwb_sorting

    return read_nwb_sorting(path, **kwargs)


#: Readers of formats that other packages implement; their failures on damaged files become TavrnnInputError.
_OTHER_READERS = {
    "spikeinterface": _read_spikeinterface,
    "phy": _read_phy,
    "kilosort": _read_kilosort,
    "nwb": _read_nwb,
    "neo": lambda path, **kwargs: read_neo_sorting(path, **kwargs),
}
