"""SortingAnalyzers for spike-time-only data, and a loader that makes sure this plugin's extensions are found.

SpikeInterface 0.105 needs a recording with a probe to create a ``SortingAnalyzer``. MEA exports, Neo files
without raw signals and most shared datasets have spike times only. :func:`create_analyzer_from_spikes` pairs
the sorting with a lazy placeholder recording (never read: it generates its samples only on request) whose probe
has one contact per unit at the unit's location, so that every spike-time extension of SpikeInterface
(correlograms, ISI histograms, ...) and of this package works, saves and reloads in every format.
"""

from __future__ import annotations

import warnings

from pathlib import Path
from typing import Sequence

import numpy as np

#: Annotation set on placeholder recordings, so code can tell them from real data.
PLACEHOLDER_ANNOTATION = "tavrnn_placeholder_recording"
_GRID_PITCH_UM = 100.0


def create_analyzer_from_spikes(
    sorting,
    format: str = "memory",
    folder: str | Path | None = None,
    unit_locations: np.ndarray | None = None,
    unit_regions: Sequence | None = None,
    durations_s: Sequence[float] | None = None,
    overwrite: bool = False,
):
    """A valid ``SortingAnalyzer`` for a sorting that has spike times but no raw recording.

    The analyzer's recording is a lazy placeholder of one channel per unit: it holds no data and is never
    read by spike-time extensions. Its probe puts each unit's contact at the unit's location, so unit
    positions and region labels persist with the analyzer. Extensions that need raw traces (waveforms,
    templates) would read generated noise: do not compute them on such an analyzer.

    Parameters
    ----------
    sorting : BaseSorting
        The sorted units (any SpikeInterface sorting, including this package's MEA readers).
    format : "memory" | "binary_folder" | "zarr", default: "memory"
        Analyzer storage, as in ``spikeinterface.create_sorting_analyzer``.
    folder : str or Path or None, default: None
        Where to save it (required unless ``format="memory"``).
    unit_locations : np.ndarray or None, default: None
        ``(n_units, 2)`` or ``(n_units, 3)`` positions in micrometres. When None, the sorting's ``location``
        property; when that is absent too, units are laid on a square grid 100 um apart (and the analyzer is
        annotated as such: do not read meaning into those positions).
    unit_regions : sequence or None, default: None
        One region (or well, subregion) label per unit, stored as the sorting property ``region`` and as the
        probe contact annotation ``region``. When None, an existing ``region`` property is kept.
    durations_s : sequence of float or None, default: None
        Duration of each segment in seconds. When None: the sorting's ``t_stop_s`` annotation (set by this
        package's readers), else the registered recording, else the last spike plus one sample, with a warning.
    overwrite : bool, default: False
        Replace an existing folder.

    Returns
    -------
    SortingAnalyzer

    Examples
    --------
    >>> import spikeinterface.core as sc
    >>> from spikeinterface_tavrnn import create_analyzer_from_spikes
    >>> sorting = sc.generate_sorting(num_units=4, durations=[10.0], seed=0)
    >>> analyzer = create_analyzer_from_spikes(sorting, durations_s=[10.0])
    >>> analyzer.get_num_units()
    4
    """
    import spikeinterface.core as sc
    from probeinterface import Probe

    unit_ids = sorting.get_unit_ids()
    n_units = len(unit_ids)
    if n_units == 0:
        raise ValueError("The sorting has no units: there is nothing to analyse.")
    if format != "memory" and folder is None:
        raise ValueError(f"format={format!r} needs a folder to save the analyzer in.")
    fs = float(sorting.get_sampling_frequency())
    durations = _segment_durations_s(sorting, durations_s)

    grid_locations = False
    if unit_locations is None and "location" in sorting.get_property_keys():
        unit_locations = sorting.get_property("location")
    if unit_locations is None:
        grid_locations = True
        side = int(np.ceil(np.sqrt(n_units)))
        unit_locations = np.c_[np.arange(n_units) % side, np.arange(n_units) // side] * _GRID_PITCH_UM
    unit_locations = np.asarray(unit_locations, dtype=float)
    if unit_locations.shape not in ((n_units, 2), (n_units, 3)):
        raise ValueError(f"unit_locations must have shape ({n_units}, 2) or ({n_units}, 3), got {unit_locations.shape}.")
    if not np.all(np.isfinite(unit_locations)):
        raise ValueError("unit_locations contain NaN or infinite values: give every unit a position, or pass None.")

    sorting = sorting.clone() if hasattr(sorting, "clone") else sorting
    sorting.set_property("location", unit_locations)
    if unit_regions is not None:
        unit_regions = np.asarray(unit_regions)
        if unit_regions.shape != (n_units,):
            raise ValueError(f"unit_regions must have one label per unit ({n_units}), got shape {unit_regions.shape}.")
        sorting.set_property("region", unit_regions)
    regions = sorting.get_property("region") if "region" in sorting.get_property_keys() else None

    recording = sc.generate_recording(
        num_channels=n_units, sampling_frequency=fs, durations=durations, set_probe=False, seed=0
    )
    probe = Probe(ndim=2, si_units="um")
    probe.set_contacts(positions=_distinct_positions(unit_locations[:, :2]), shapes="circle", shape_params={"radius": 5})
    probe.set_device_channel_indices(np.arange(n_units))
    # Probe annotations persist in every analyzer format (recording and sorting annotations do not).
    probe.annotate(**{PLACEHOLDER_ANNOTATION: True, "tavrnn_grid_locations": grid_locations})
    if regions is not None:
        probe.annotate_contacts(region=np.asarray(regions).astype(str))
    # set_probe works in place and returns None from 0.105 on; older versions return a new recording.
    recording = recording.set_probe(probe) or recording
    recording.set_channel_gains(1.0)
    recording.set_channel_offsets(0.0)
    recording.annotate(**{PLACEHOLDER_ANNOTATION: True})

    analyzer = sc.create_sorting_analyzer(
        sorting,
        recording,
        format=format,
        folder=folder,
        sparse=False,
        main_channel_indices=np.arange(n_units),
        overwrite=overwrite,
    )
    return analyzer


def load_sorting_analyzer(folder: str | Path, load_extensions: bool = True):
    """Load a saved analyzer after registering this package's extensions, and check that they load.

    Loading an analyzer with plain ``spikeinterface.load_sorting_analyzer`` in a process that has not imported
    ``spikeinterface_tavrnn`` skips the ``functional_connectivity`` and ``tavrnn_embeddings`` extensions, and
    later copies of that analyzer (``select_units``, ``save_as``) silently lose them. This wrapper imports the
    extensions first and raises if one that is on disk fails to load.

    Parameters
    ----------
    folder : str or Path
        A binary_folder or zarr analyzer.
    load_extensions : bool, default: True
        Load the extensions now (else on first ``get_extension``).

    Returns
    -------
    SortingAnalyzer
    """
    import spikeinterface.core as sc

    from . import extensions  # noqa: F401  (registers the extensions)

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"No analyzer at {folder}.")
    analyzer = sc.load_sorting_analyzer(folder, load_extensions=load_extensions)
    if load_extensions:
        for name in extensions.EXTENSION_NAMES:
            if _extension_on_disk(folder, name) and not analyzer.has_extension(name):
                raise RuntimeError(
                    f"The analyzer at {folder} holds a {name!r} extension that could not be loaded; see the warnings "
                    "above (it may come from an incompatible version of spikeinterface_tavrnn)."
                )
    return analyzer


def is_placeholder_recording(analyzer_or_recording) -> bool:
    """Whether the analyzer's (or this) recording is a placeholder made by :func:`create_analyzer_from_spikes`.

    The mark is a probe annotation, since the probe is the part of the recording that every analyzer format keeps.
    """
    try:
        probe = analyzer_or_recording.get_probe()
    except (AttributeError, ValueError):
        return False
    return bool(probe.annotations.get(PLACEHOLDER_ANNOTATION, False))


def _distinct_positions(positions_um: np.ndarray) -> np.ndarray:
    """Contact positions for the placeholder probe: units that share a position (tetrode units, several units of
    one MEA electrode) are spread on a 1 um circle around it, since a probe's contacts must not coincide. The
    units' exact locations stay in the sorting's ``location`` property."""
    positions = np.array(positions_um, dtype=float)
    _, inverse, counts = np.unique(positions, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    for group in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse == group)
        angles = 2 * np.pi * np.arange(members.size) / members.size
        positions[members] += np.c_[np.cos(angles), np.sin(angles)]
    return positions


def _extension_on_disk(folder: Path, name: str) -> bool:
    if (folder / "extensions" / name).is_dir():
        return True
    if folder.suffix == ".zarr" or (folder / ".zgroup").exists():
        import zarr

        root = zarr.open(str(folder), mode="r")
        return "extensions" in root and name in root["extensions"]
    return False


def _segment_durations_s(sorting, durations_s) -> list[float]:
    n_segments = sorting.get_num_segments()
    fs = sorting.get_sampling_frequency()
    if durations_s is not None:
        durations = [float(d) for d in np.atleast_1d(durations_s)]
        if len(durations) != n_segments:
            raise ValueError(f"durations_s has {len(durations)} entries for {n_segments} segment(s).")
    elif "t_stop_s" in sorting.get_annotation_keys() and n_segments == 1:
        durations = [float(sorting.get_annotation("t_stop_s"))]
    elif sorting.has_recording():
        durations = [sorting.get_num_samples(s) / fs for s in range(n_segments)]
    else:
        vector = sorting.to_spike_vector()
        durations = []
        for segment in range(n_segments):
            samples = vector["sample_index"][vector["segment_index"] == segment]
            durations.append((samples.max() + 1) / fs if samples.size else 1.0 / fs)
        warnings.warn(
            f"The sorting knows no recording span; it was inferred from the last spike ({durations[0]:g} s in "
            "segment 0), so the last window may be cut short or dropped. Pass durations_s= or register the "
            "recording (sorting.register_recording(recording)).",
            stacklevel=3,
        )
    spike_vector = sorting.to_spike_vector()
    for segment, duration in enumerate(durations):
        if duration <= 0:
            raise ValueError(f"Segment {segment}: duration must be positive, got {duration} s.")
        samples = spike_vector["sample_index"][spike_vector["segment_index"] == segment]
        n_samples = int(round(duration * fs))
        if samples.size and samples.max() > n_samples:
            raise ValueError(
                f"Segment {segment}: a spike at {samples.max() / fs:g} s lies after the segment's end ({duration:g} s). "
                "Pass the right durations_s."
            )
        if samples.size and samples.max() == n_samples:
            # A spike exactly at t_stop: the recording needs one more sample to hold it.
            durations[segment] = (n_samples + 1) / fs
    return durations
