"""The package's one internal spike container, with adapters from SpikeInterface, Neo and plain arrays.

Spike times are held as sorted integer sample indices per unit, at one sampling frequency, so that coincidence
counting is exact (see :mod:`spikeinterface_tavrnn.connectivity.sttc`). Sample ``k`` is at time ``k / fs``
seconds on the recording's clock: sample 0 is time 0 s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import TavrnnInputError

#: Sampling frequency used when spike times arrive in seconds with no sampling rate (10 us resolution).
DEFAULT_SAMPLING_FREQUENCY_HZ = 100_000.0

#: Largest spike time, in samples, that the int64 sample grid holds with room for sums of two times (2**62).
MAX_SAMPLE_INDEX = 2**62

#: Largest sample index accepted: integers up to 2**53 are exact in float64, so times convert to samples and back
#: without loss, and window arithmetic on them cannot overflow int64.
MAX_SAMPLE_INDEX = 2**53

_DUPLICATE_POLICIES = ("keep", "warn", "drop", "error")
_LABEL_PROPERTIES_AUTO = ("region", "brain_area", "well", "group", "label")


@dataclass
class SpikeTrains:
    """Per-unit sorted spike times in integer samples, with the recording's time span and unit metadata.

    Build it with :meth:`from_sorting`, :meth:`from_neo` or :meth:`from_arrays` rather than directly: the
    constructor only validates.

    Parameters
    ----------
    spike_samples : list of np.ndarray
        One sorted int64 array of spike sample indices per unit. Units with no spikes are allowed (empty
        arrays): estimators define what an empty unit means in a window.
    sampling_frequency : float
        Samples per second.
    t_start_s, t_stop_s : float
        Time span of the recording in seconds (``t_start_s < t_stop_s``); every spike lies in
        ``[t_start_s, t_stop_s]``.
    unit_ids : np.ndarray
        Unit identifiers, one per train, unique.
    unit_locations_um : np.ndarray or None, default: None
        ``(n_units, 2)`` or ``(n_units, 3)`` unit positions in micrometres.
    unit_labels : np.ndarray or None, default: None
        One label per unit (brain region, MEA well, chip subregion).

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains
    >>> spikes = SpikeTrains.from_arrays([np.array([0.1, 0.5]), np.array([0.2])], unit_ids=["a", "b"],
    ...                                  t_start=0.0, t_stop=1.0, sampling_frequency=1000.0)
    >>> spikes.spike_counts
    array([2, 1])
    """

    spike_samples: list[np.ndarray]
    sampling_frequency: float
    t_start_s: float
    t_stop_s: float
    unit_ids: np.ndarray
    unit_locations_um: np.ndarray | None = None
    unit_labels: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sampling_frequency = float(self.sampling_frequency)
        self.t_start_s = float(self.t_start_s)
        self.t_stop_s = float(self.t_stop_s)
        self.unit_ids = np.asarray(self.unit_ids)
        if not np.isfinite(self.sampling_frequency) or self.sampling_frequency <= 0:
            raise TavrnnInputError(f"sampling_frequency must be a positive number of Hz, got {self.sampling_frequency}.")
        if not (np.isfinite(self.t_start_s) and np.isfinite(self.t_stop_s)):
            raise TavrnnInputError("t_start and t_stop must be finite numbers of seconds.")
        if self.t_stop_s <= self.t_start_s:
            raise TavrnnInputError(
                f"t_stop ({self.t_stop_s} s) must be after t_start ({self.t_start_s} s): check the recording's time span."
            )
        if max(abs(self.t_start_s), abs(self.t_stop_s)) * self.sampling_frequency > MAX_SAMPLE_INDEX:
            raise TavrnnInputError(
                f"The recording span {self.t_start_s:g}-{self.t_stop_s:g} s does not fit the sample grid at "
                f"{self.sampling_frequency:g} Hz (at most {MAX_SAMPLE_INDEX / self.sampling_frequency:.3g} s): "
                "give times in seconds."
            )
        if len(self.spike_samples) == 0:
            raise TavrnnInputError("The sorting has no units: there is nothing to connect. Check the sorter's output.")
        if len(self.unit_ids) != len(self.spike_samples):
            raise TavrnnInputError(
                f"{len(self.unit_ids)} unit ids for {len(self.spike_samples)} spike trains: give one id per train."
            )
        if len(np.unique(self.unit_ids)) != len(self.unit_ids):
            raise TavrnnInputError("unit_ids must be unique: each unit needs its own id.")
        first, last = self.t_start_sample, self.t_stop_sample
        trains = []
        for unit_id, train in zip(self.unit_ids.tolist(), self.spike_samples):
            train = np.asarray(train)
            if train.ndim != 1:
                raise TavrnnInputError(f"Unit {unit_id!r}: spike samples must be a 1-D array, got shape {train.shape}.")
            if train.size and not np.issubdtype(train.dtype, np.integer):
                raise TavrnnInputError(f"Unit {unit_id!r}: spike samples must be integers (sample indices), got {train.dtype}.")
            train = train.astype(np.int64, copy=False)
            if train.size > 1 and np.any(np.diff(train) < 0):
                raise TavrnnInputError(f"Unit {unit_id!r}: spike times are not sorted. Sort them (np.sort) before building.")
            if train.size and (train[0] < first or train[-1] > last):
                raise TavrnnInputError(
                    f"Unit {unit_id!r}: spikes outside the recording [{self.t_start_s}, {self.t_stop_s}] s "
                    f"(first {train[0] / self.sampling_frequency} s, last {train[-1] / self.sampling_frequency} s). "
                    "Widen t_start/t_stop or remove those spikes."
                )
            trains.append(train)
        self.spike_samples = trains
        if self.unit_locations_um is not None:
            self.unit_locations_um = np.asarray(self.unit_locations_um, dtype=float)
            if self.unit_locations_um.ndim != 2 or self.unit_locations_um.shape[0] != self.num_units:
                raise TavrnnInputError(
                    f"unit_locations_um must have shape (n_units, 2 or 3) = ({self.num_units}, ...), "
                    f"got {self.unit_locations_um.shape}."
                )
        if self.unit_labels is not None:
            self.unit_labels = np.asarray(self.unit_labels)
            if self.unit_labels.shape != (self.num_units,):
                raise TavrnnInputError(f"unit_labels must have one label per unit ({self.num_units}).")

    # ------------------------------------------------------------------ properties
    @property
    def num_units(self) -> int:
        return len(self.spike_samples)

    @property
    def duration_s(self) -> float:
        return self.t_stop_s - self.t_start_s

    @property
    def t_start_sample(self) -> int:
        return int(np.floor(self.t_start_s * self.sampling_frequency + 1e-9))

    @property
    def t_stop_sample(self) -> int:
        return int(np.ceil(self.t_stop_s * self.sampling_frequency - 1e-9))

    @property
    def spike_counts(self) -> np.ndarray:
        return np.array([train.size for train in self.spike_samples], dtype=np.int64)

    def spike_times_s(self, unit_index: int) -> np.ndarray:
        """Spike times of one unit (by position) in seconds."""
        return self.spike_samples[unit_index] / self.sampling_frequency

    def __len__(self) -> int:
        return self.num_units

    def __repr__(self) -> str:
        return (
            f"SpikeTrains({self.num_units} units, {int(self.spike_counts.sum())} spikes, "
            f"{self.t_start_s:g}-{self.t_stop_s:g} s, {self.sampling_frequency:g} Hz)"
        )

    def to_concatenated(self) -> tuple[np.ndarray, np.ndarray]:
        """All spikes as one array plus offsets: unit ``i`` is ``samples[offsets[i]:offsets[i + 1]]``."""
        counts = self.spike_counts
        offsets = np.zeros(self.num_units + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        samples = np.concatenate(self.spike_samples) if counts.sum() else np.zeros(0, dtype=np.int64)
        return samples.astype(np.int64, copy=False), offsets

    def select_units(self, unit_ids: Sequence) -> "SpikeTrains":
        """A new `SpikeTrains` with only the given units, in the given order."""
        position = {uid: i for i, uid in enumerate(self.unit_ids.tolist())}
        missing = [uid for uid in unit_ids if uid not in position]
        if missing:
            raise KeyError(f"Unknown unit ids {missing[:5]}; available: {self.unit_ids[:10].tolist()}...")
        indices = np.array([position[uid] for uid in unit_ids], dtype=int)
        return SpikeTrains(
            spike_samples=[self.spike_samples[i] for i in indices],
            sampling_frequency=self.sampling_frequency,
            t_start_s=self.t_start_s,
            t_stop_s=self.t_stop_s,
            unit_ids=self.unit_ids[indices],
            unit_locations_um=None if self.unit_locations_um is None else self.unit_locations_um[indices],
            unit_labels=None if self.unit_labels is None else self.unit_labels[indices],
            metadata=dict(self.metadata),
        )

    def active_units(self, min_spikes: int = 1) -> "SpikeTrains":
        """A new `SpikeTrains` without the units that have fewer than ``min_spikes`` spikes."""
        keep = self.spike_counts >= min_spikes
        if not keep.any():
            raise ValueError(f"No unit has at least {min_spikes} spikes.")
        return self.select_units(self.unit_ids[keep].tolist())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        spike_times_s: Sequence[np.ndarray] | dict,
        unit_ids: Sequence | None = None,
        t_start: float | None = None,
        t_stop: float | None = None,
        sampling_frequency: float | None = None,
        unit_locations_um: np.ndarray | None = None,
        unit_labels: Sequence | None = None,
        duplicates: str = "warn",
    ) -> "SpikeTrains":
        """Build from one array of spike times in seconds per unit.

        Parameters
        ----------
        spike_times_s : list of np.ndarray or dict
            Spike times in seconds, one 1-D array per unit, or a dict ``{unit_id: times}``. Unsorted times are
            sorted, with a warning naming the unit. A flat array of numbers, a 2-D array, or counts of trains and
            ``unit_ids`` that differ are refused (:class:`~spikeinterface_tavrnn.errors.TavrnnInputError`), as are
            NaN, infinite, negative times and times too large for the sample grid.
        unit_ids : sequence or None, default: None
            Unit identifiers, one per array; ``0 .. n_units - 1`` when None (the dict's keys for a dict).
        t_start, t_stop : float or None, default: None
            Recording span in seconds; when None, 0 and the last spike (plus one sample).
        sampling_frequency : float or None, default: None
            Times are rounded to the nearest sample of this rate. When None, 100 kHz (10 us) is used.
        unit_locations_um : np.ndarray or None, default: None
            ``(n_units, 2 or 3)`` positions in micrometres.
        unit_labels : sequence or None, default: None
            One label per unit (region, well).
        duplicates : "warn" | "keep" | "drop" | "error", default: "warn"
            What to do with spikes of one unit that fall on the same sample: keep them (with or without a
            warning), drop the repeats, or raise.

        Returns
        -------
        SpikeTrains
        """
        _check_duplicate_policy(duplicates)
        fs = DEFAULT_SAMPLING_FREQUENCY_HZ if sampling_frequency is None else float(sampling_frequency)
        if not np.isfinite(fs) or fs <= 0:
            raise TavrnnInputError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency!r}.")
        unit_ids, times = _unit_arrays(spike_times_s, unit_ids)
        times = [_checked_train_s(uid, train, fs) for uid, train in zip(unit_ids.tolist(), times)]
        last_spike = max((t[-1] for t in times if t.size), default=None)
        if t_start is None:
            t_start = 0.0
        if t_stop is None:
            if last_spike is None:
                raise TavrnnInputError(
                    "No unit has any spike and no t_stop was given: the recording span is unknown. Pass t_stop=."
                )
            t_stop = last_spike + 1.0 / fs
        if not (np.isfinite(float(t_start)) and np.isfinite(float(t_stop))):
            raise TavrnnInputError(f"t_start and t_stop must be finite seconds, got {t_start!r} and {t_stop!r}.")
        if t_start < 0:
            raise TavrnnInputError(f"t_start must be >= 0 s, got {t_start}: times are seconds from the recording's start.")
        samples = [
            _apply_duplicate_policy(np.rint(t * fs).astype(np.int64), uid, duplicates)
            for uid, t in zip(unit_ids.tolist(), times)
        ]
        return cls(
            spike_samples=samples,
            sampling_frequency=fs,
            t_start_s=t_start,
            t_stop_s=t_stop,
            unit_ids=unit_ids,
            unit_locations_um=unit_locations_um,
            unit_labels=None if unit_labels is None else np.asarray(unit_labels),
        )

    @classmethod
    def from_sorting(
        cls,
        sorting_or_analyzer,
        segment_index: int | str | None = None,
        label_property: str | None = "auto",
        t_start: float | None = None,
        t_stop: float | None = None,
        duplicates: str = "warn",
    ) -> "SpikeTrains | list[SpikeTrains]":
        """Build from a SpikeInterface ``BaseSorting`` or ``SortingAnalyzer``.

        Parameters
        ----------
        sorting_or_analyzer : BaseSorting or SortingAnalyzer
            The sorted units. With an analyzer, unit locations come from its ``unit_locations`` extension
            when computed.
        segment_index : int, "all" or None, default: None
            Which segment to read; each segment has its own time base. None reads segment 0 and warns when the
            sorting has several; ``"all"`` returns a list with one `SpikeTrains` per segment.
        label_property : str or None, default: "auto"
            Sorting property holding one label per unit (region, well). "auto" takes the first present of
            ``region``, ``brain_area``, ``well``, ``group``, ``label``; None reads no labels.
        t_start, t_stop : float or None, default: None
            Recording span in seconds. When None: the ``t_start_s`` / ``t_stop_s`` annotations of the sorting
            (the duration a file states, set by this package's readers), else the analyzer's or the registered
            recording's duration, else 0 and the last spike, with a warning (windows then end at the last spike).
        duplicates : "warn" | "keep" | "drop" | "error", default: "warn"
            See :meth:`from_arrays`.

        Returns
        -------
        SpikeTrains, or list of SpikeTrains when ``segment_index="all"``
        """
        _check_duplicate_policy(duplicates)
        analyzer = sorting_or_analyzer if hasattr(sorting_or_analyzer, "get_extension") else None
        sorting = analyzer.sorting if analyzer is not None else sorting_or_analyzer
        if not hasattr(sorting, "get_unit_ids"):
            raise TavrnnInputError(
                f"Expected a SpikeInterface BaseSorting or SortingAnalyzer, got {type(sorting_or_analyzer).__name__}: "
                "use SpikeTrains.from_arrays or from_neo for other data."
            )
        unit_ids = np.asarray(sorting.get_unit_ids())
        if unit_ids.size == 0:
            raise TavrnnInputError("The sorting has no units: there is nothing to connect. Check the sorter's output.")
        n_segments = sorting.get_num_segments()
        if isinstance(segment_index, str) and segment_index == "all":
            return [
                cls.from_sorting(sorting_or_analyzer, segment, label_property, t_start, t_stop, duplicates)
                for segment in range(n_segments)
            ]
        if segment_index is None:
            segment_index = 0
            if n_segments > 1:
                warnings.warn(
                    f"The sorting has {n_segments} segments; only segment 0 is used. Pass segment_index= to choose "
                    "one, or segment_index='all' for one SpikeTrains per segment.",
                    stacklevel=2,
                )
        if isinstance(segment_index, (bool, np.bool_)) or not isinstance(segment_index, (int, np.integer)) or not (
            0 <= segment_index < n_segments
        ):
            raise TavrnnInputError(
                f"segment_index {segment_index!r} is out of range: the sorting has {n_segments} segment(s); "
                f"give an integer from 0 to {n_segments - 1}, or 'all'."
            )
        segment_index = int(segment_index)
        fs = float(sorting.get_sampling_frequency())

        spike_vector = sorting.to_spike_vector()
        spike_vector = spike_vector[spike_vector["segment_index"] == segment_index]
        order = np.lexsort((spike_vector["sample_index"], spike_vector["unit_index"]))
        samples = spike_vector["sample_index"][order].astype(np.int64)
        bounds = np.searchsorted(spike_vector["unit_index"][order], np.arange(unit_ids.size + 1))
        trains = [
            _apply_duplicate_policy(samples[bounds[i] : bounds[i + 1]], uid, duplicates)
            for i, uid in enumerate(unit_ids.tolist())
        ]

        annotations = sorting.get_annotation_keys()
        single = n_segments == 1
        if t_start is None:
            t_start = float(sorting.get_annotation("t_start_s")) if single and "t_start_s" in annotations else 0.0
        if t_stop is None:
            t_stop = _sorting_duration_s(sorting, analyzer, segment_index, fs, annotations)
        if t_stop is None:
            if samples.size == 0:
                raise TavrnnInputError(
                    f"Segment {segment_index} has no spikes and the sorting states no duration: pass t_stop=."
                )
            t_stop = (samples.max() + 1) / fs
            warnings.warn(
                f"The sorting knows no recording span; it was inferred from the last spike ({t_stop:g} s), so the "
                "last window may be cut short or dropped. Pass t_stop=, the analyzer, or register the recording "
                "(sorting.register_recording(recording)).",
                stacklevel=2,
            )

        locations = None
        if analyzer is not None and analyzer.has_extension("unit_locations"):
            locations = np.asarray(analyzer.get_extension("unit_locations").get_data())
        elif "location" in sorting.get_property_keys():
            locations = np.asarray(sorting.get_property("location"), dtype=float)
        labels, label_property = resolve_unit_labels(sorting_or_analyzer, label_property)
        return cls(
            spike_samples=trains,
            sampling_frequency=fs,
            t_start_s=t_start,
            t_stop_s=t_stop,
            unit_ids=unit_ids,
            unit_locations_um=locations,
            unit_labels=labels,
            metadata={"label_property": label_property, "segment_index": segment_index},
        )

    @classmethod
    def from_neo(
        cls,
        neo_object,
        sampling_frequency: float | None = None,
        unit_id_annotation: str | None = None,
        duplicates: str = "warn",
    ) -> "SpikeTrains":
        """Build from a ``neo.Block`` (first segment), a ``neo.Segment`` or a list of ``neo.SpikeTrain``.

        Times in any unit are converted with quantities; the recording span is the trains' common
        ``t_start`` / ``t_stop``.

        Parameters
        ----------
        neo_object : neo.Block, neo.Segment or list of neo.SpikeTrain
            The spike trains. A block with several segments must be split first (pass ``block.segments[i]``).
        sampling_frequency : float or None, default: None
            Rate in Hz to round times to. When None: the trains' ``sampling_rate`` if they share one that is
            not Neo's placeholder of 1 Hz, else 100 kHz.
        unit_id_annotation : str or None, default: None
            Annotation holding each train's unit id; when None the train's ``name`` if all are set and unique,
            else the index.
        duplicates : "warn" | "keep" | "drop" | "error", default: "warn"
            See :meth:`from_arrays`.

        Returns
        -------
        SpikeTrains
        """
        import neo
        import quantities as pq

        if isinstance(neo_object, neo.Block):
            if len(neo_object.segments) == 0:
                raise ValueError("The Neo block has no segments.")
            if len(neo_object.segments) > 1:
                raise ValueError(
                    f"The Neo block has {len(neo_object.segments)} segments, each with its own time base: "
                    "pass one segment, e.g. SpikeTrains.from_neo(block.segments[0])."
                )
            neo_object = neo_object.segments[0]
        trains = list(neo_object.spiketrains) if isinstance(neo_object, neo.Segment) else list(neo_object)
        if not trains:
            raise ValueError("No spike trains found in the Neo object: is it a sorted recording?")
        if not all(isinstance(train, neo.SpikeTrain) for train in trains):
            raise TypeError("from_neo expects a neo.Block, a neo.Segment or a list of neo.SpikeTrain.")

        if sampling_frequency is None:
            rates = {float(train.sampling_rate.rescale(pq.Hz).magnitude) for train in trains}
            if len(rates) > 1:
                raise ValueError(
                    f"The spike trains have different sampling rates {sorted(rates)} Hz; resample them or pass "
                    "sampling_frequency= to round all to one rate."
                )
            rate = rates.pop()
            sampling_frequency = rate if rate != 1.0 else DEFAULT_SAMPLING_FREQUENCY_HZ

        t_starts = {float(train.t_start.rescale(pq.s).magnitude) for train in trains}
        t_stops = {float(train.t_stop.rescale(pq.s).magnitude) for train in trains}
        t_start, t_stop = min(t_starts), max(t_stops)

        if unit_id_annotation is not None:
            unit_ids = [train.annotations[unit_id_annotation] for train in trains]
        else:
            names = [train.name for train in trains]
            unit_ids = names if all(names) and len(set(names)) == len(names) else list(range(len(trains)))
        times = [np.asarray(train.times.rescale(pq.s).magnitude, dtype=float) for train in trains]
        return cls.from_arrays(
            times,
            unit_ids=unit_ids,
            t_start=t_start,
            t_stop=t_stop,
            sampling_frequency=sampling_frequency,
            duplicates=duplicates,
        )

    # ------------------------------------------------------------------ exporters
    def to_sorting(self):
        """This spike data as a SpikeInterface ``NumpySorting`` (one segment, same samples and unit ids)."""
        from spikeinterface.core import NumpySorting

        samples, offsets = self.to_concatenated()
        labels = np.repeat(self.unit_ids, np.diff(offsets))
        order = np.argsort(samples, kind="stable")
        sorting = NumpySorting.from_samples_and_labels(
            [samples[order]], [labels[order]], self.sampling_frequency, unit_ids=self.unit_ids
        )
        sorting.annotate(t_start_s=self.t_start_s, t_stop_s=self.t_stop_s)
        if self.unit_locations_um is not None:
            sorting.set_property("location", self.unit_locations_um)
        if self.unit_labels is not None:
            source = self.metadata.get("label_property") or "label"
            sorting.set_property(source.removeprefix("probe:"), self.unit_labels)
        return sorting

    def to_neo(self) -> list:
        """This spike data as a list of ``neo.SpikeTrain`` in seconds, named by unit id."""
        import neo
        import quantities as pq

        return [
            neo.SpikeTrain(
                self.spike_times_s(i) * pq.s,
                t_start=self.t_start_s * pq.s,
                t_stop=self.t_stop_s * pq.s,
                sampling_rate=self.sampling_frequency * pq.Hz,
                name=str(uid),
            )
            for i, uid in enumerate(self.unit_ids)
        ]


def resolve_unit_labels(sorting_or_analyzer, label_property: str | None = "auto") -> tuple[np.ndarray | None, str | None]:
    """One label per unit (region, well) from a sorting property or, for an analyzer, its probe.

    Parameters
    ----------
    sorting_or_analyzer : BaseSorting or SortingAnalyzer
        Where to look.
    label_property : str or None, default: "auto"
        A sorting property name; "auto" takes the first present of ``region``, ``brain_area``, ``well``, ``group``,
        ``label`` and, failing those, the ``region`` contact annotation of an analyzer's probe at each unit's main
        channel; None reads no labels.

    Returns
    -------
    labels : np.ndarray or None
    source : str or None
        The property name, ``"probe:region"``, or None.
    """
    analyzer = sorting_or_analyzer if hasattr(sorting_or_analyzer, "get_extension") else None
    sorting = analyzer.sorting if analyzer is not None else sorting_or_analyzer
    keys = list(sorting.get_property_keys())
    if label_property is None:
        return None, None
    if label_property != "auto":
        if label_property not in keys:
            raise KeyError(f"The sorting has no property {label_property!r}; available: {keys}.")
        return np.asarray(sorting.get_property(label_property)), label_property
    found = next((key for key in _LABEL_PROPERTIES_AUTO if key in keys), None)
    if found is not None:
        return np.asarray(sorting.get_property(found)), found
    if analyzer is not None and analyzer.get_num_channels() > 0:
        try:
            regions = analyzer.get_probe().contact_annotations.get("region")
        except ValueError:  # no probe, or a probe group
            regions = None
        if regions is not None:
            main_channels = analyzer.get_main_channels(outputs="index")
            return np.asarray(regions)[np.asarray(main_channels)], "probe:region"
    return None, None


def _check_duplicate_policy(policy: str) -> None:
    if policy not in _DUPLICATE_POLICIES:
        raise TavrnnInputError(f"duplicates must be one of {_DUPLICATE_POLICIES}, got {policy!r}.")


def _unit_arrays(spike_times_s, unit_ids) -> tuple[np.ndarray, list]:
    """The unit ids and one array-like per unit, refusing every shape whose meaning would have to be guessed."""
    if isinstance(spike_times_s, dict):
        if unit_ids is not None and list(unit_ids) != list(spike_times_s):
            raise TavrnnInputError(
                "unit_ids differ from the keys of the spike-times dict: pass the dict alone (its keys are the ids)."
            )
        unit_ids, spike_times_s = list(spike_times_s), list(spike_times_s.values())
    if isinstance(spike_times_s, np.ndarray) and spike_times_s.dtype != object:
        if spike_times_s.ndim == 2:
            raise TavrnnInputError(
                f"spike_times_s is a 2-D array of shape {spike_times_s.shape}: it is unclear which axis is units. "
                "Pass a list with one 1-D array of times per unit (e.g. list(array) when rows are units)."
            )
        if spike_times_s.ndim <= 1 and spike_times_s.size:
            raise TavrnnInputError(
                f"spike_times_s is one flat array of {spike_times_s.size} numbers, not one array per unit. "
                "For one unit pass [times]; for many pass a list of arrays or a dict {unit_id: times}."
            )
    if isinstance(spike_times_s, (str, bytes)) or not hasattr(spike_times_s, "__len__"):
        raise TavrnnInputError(
            f"spike_times_s must be a list of per-unit arrays or a dict, got {type(spike_times_s).__name__}."
        )
    trains = list(spike_times_s)
    if len(trains) == 0:
        raise TavrnnInputError("spike_times_s is empty: give one array of spike times per unit.")
    if all(np.ndim(train) == 0 for train in trains):
        raise TavrnnInputError(
            f"spike_times_s is a flat list of {len(trains)} numbers, not one array per unit. "
            "For one unit pass [times]; for many pass a list of arrays or a dict {unit_id: times}."
        )
    unit_ids = np.arange(len(trains)) if unit_ids is None else np.asarray(unit_ids)
    if unit_ids.ndim != 1 or len(unit_ids) != len(trains):
        raise TavrnnInputError(
            f"{len(trains)} spike trains but {unit_ids.size} unit ids: give exactly one id per train "
            "(or pass a dict {unit_id: times})."
        )
    if len(np.unique(unit_ids)) != len(unit_ids):
        raise TavrnnInputError("unit_ids must be unique: each unit needs its own id.")
    return unit_ids, trains


def _checked_train_s(unit_id, train, fs: float) -> np.ndarray:
    """One unit's spike times as a sorted 1-D float array, refused when not finite, negative or off the grid."""
    if np.ndim(train) != 1:
        raise TavrnnInputError(
            f"Unit {unit_id!r}: spike times must be a 1-D array, got shape {np.shape(train)}. "
            "Give one 1-D array per unit; split a 2-D array into its units first."
        )
    try:
        train = np.asarray(train, dtype=float)
    except (TypeError, ValueError):
        raise TavrnnInputError(f"Unit {unit_id!r}: spike times must be numbers of seconds.") from None
    if not np.all(np.isfinite(train)):
        bad = int(np.count_nonzero(~np.isfinite(train)))
        raise TavrnnInputError(f"Unit {unit_id!r}: {bad} spike times are NaN or infinite. Remove them first.")
    if train.size and train.min() < 0:
        raise TavrnnInputError(
            f"Unit {unit_id!r}: negative spike time {train.min():g} s. Times are seconds from the recording's start; "
            "shift them so that the recording starts at or after 0 s."
        )
    if train.size and train.max() * fs > MAX_SAMPLE_INDEX:
        raise TavrnnInputError(
            f"Unit {unit_id!r}: spike time {train.max():g} s does not fit the sample grid at {fs:g} Hz "
            f"(at most {MAX_SAMPLE_INDEX / fs:.3g} s). Give times in seconds and remove corrupt values."
        )
    if train.size > 1 and np.any(np.diff(train) < 0):
        warnings.warn(
            f"Unit {unit_id!r}: {int(np.count_nonzero(np.diff(train) < 0))} spike times are out of order; "
            "they were sorted.",
            stacklevel=3,
        )
        train = np.sort(train, kind="stable")
    return train


def _apply_duplicate_policy(samples: np.ndarray, unit_id, policy: str) -> np.ndarray:
    if samples.size < 2:
        return samples
    repeats = np.flatnonzero(np.diff(samples) == 0)
    if repeats.size == 0 or policy == "keep":
        return samples
    message = f"Unit {unit_id!r}: {repeats.size} spikes fall on the same sample as the previous spike"
    if policy == "error":
        raise TavrnnInputError(message + ". Remove duplicates, or pass duplicates='drop' or 'keep'.")
    if policy == "warn":
        warnings.warn(message + "; they are kept (pass duplicates='drop' to remove them).", stacklevel=3)
        return samples
    return np.delete(samples, repeats + 1)


def _sorting_duration_s(sorting, analyzer, segment_index: int, fs: float, annotations) -> float | None:
    """The segment's stated end in seconds: a file's annotation, the analyzer, or the registered recording."""
    if "t_stop_s" in annotations and sorting.get_num_segments() == 1:
        return float(sorting.get_annotation("t_stop_s"))
    if analyzer is not None:
        return analyzer.get_num_samples(segment_index) / fs
    if sorting.has_recording():
        return sorting.get_num_samples(segment_index) / fs
    return None
