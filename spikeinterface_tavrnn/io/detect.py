"""Identify spike-data files by content and infer the sampling rate of spike times stored in seconds."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from ..errors import TavrnnInputError

#: Acquisition rates of common MEA and probe systems, in Hz (Axion Maestro 12.5 kHz, MCS 10/20/25/40/50 kHz,
#: Neuralynx/Trodes/Open Ephys 30 kHz, ...).
STANDARD_SAMPLING_FREQUENCIES = (10000.0, 12500.0, 20000.0, 25000.0, 30000.0, 40000.0, 50000.0)

_GZIP_MAGIC = b"\x1f\x8b"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

SUPPORTED_FORMATS = ("sjemea_hdf5", "axion_spike_list", "spikeinterface", "phy", "kilosort", "nwb", "neo")


def infer_sampling_frequency(
    spike_times_s: np.ndarray,
    candidates: tuple[float, ...] = STANDARD_SAMPLING_FREQUENCIES,
    tolerance_samples: float = 1e-3,
) -> float | None:
    """Find the sampling rate on whose sample grid every spike time lies.

    Exports that store spike times in seconds (sjemea HDF5, Axion spike lists) lose the acquisition rate, but the
    times are still integer multiples of the sample period. The rate returned is the *lowest* candidate whose grid
    holds every time within ``tolerance_samples``: the coarsest grid that represents every time exactly. It is
    the acquisition rate or a divisor of it (a 25 kHz recording whose times all fall on the 12.5 kHz grid is
    reported as 12.5 kHz); either way converting to samples loses nothing. With thousands of spikes a coarser
    grid holds every time by chance with probability about ``2 ** -n_spikes``.

    Parameters
    ----------
    spike_times_s : np.ndarray
        Spike times in seconds (any shape; non-finite values are ignored).
    candidates : tuple of float, default: STANDARD_SAMPLING_FREQUENCIES
        Rates to test, in Hz.
    tolerance_samples : float, default: 1e-3
        Largest distance to the grid, in samples, still counted as "on the grid" (absorbs float rounding).

    Returns
    -------
    float or None
        The rate in Hz, or None when there are no spike times or no candidate grid holds them all.
    """
    times = np.asarray(spike_times_s, dtype=np.float64).ravel()
    times = times[np.isfinite(times)]
    if times.size == 0:
        return None
    for fs in sorted(float(c) for c in candidates):
        scaled = times * fs
        if np.max(np.abs(scaled - np.round(scaled))) <= tolerance_samples:
            return fs
    return None


#: Largest sample index a reader produces: 2**62 keeps sums and differences of two indices inside int64.
MAX_SAMPLE_INDEX = 2**62


def seconds_to_samples(
    spike_times_s: np.ndarray, sampling_frequency: float, unit_name: str | None = None, source: str | None = None
) -> np.ndarray:
    """Convert seconds to int64 sample indices, rounding to the *nearest* sample (not down).

    Times whose sample index would not fit the int64 grid (beyond ``MAX_SAMPLE_INDEX``, e.g. a corrupt time near
    1e15 s) raise :class:`~spikeinterface_tavrnn.errors.TavrnnInputError` instead of wrapping around.
    """
    scaled = np.round(np.asarray(spike_times_s, dtype=np.float64) * float(sampling_frequency))
    if scaled.size and not np.all(np.abs(scaled) < MAX_SAMPLE_INDEX):
        worst = float(np.asarray(spike_times_s, dtype=np.float64).reshape(-1)[np.argmax(np.abs(scaled.reshape(-1)))])
        where = f"{source}: " if source else ""
        unit = f"unit '{unit_name}' has " if unit_name is not None else ""
        raise TavrnnInputError(
            f"{where}{unit}spike time {worst:g} s, beyond the int64 sample grid at {float(sampling_frequency):g} Hz: "
            "the value is corrupt or not in seconds; remove it or fix the time unit."
        )
    return scaled.astype(np.int64)


def _read_head(path: Path, n_bytes: int = 4096) -> bytes:
    """The first bytes of a file, decompressed when it is gzip; a truncated gzip file still shows its head."""
    with open(path, "rb") as f:
        head = f.read(n_bytes)
        if head[:2] != _GZIP_MAGIC:
            return head
        f.seek(0)
        compressed = f.read(_GZIP_HEAD_BYTES)
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(compressed, n_bytes)
    except zlib.error:
        return b""


#: Compressed bytes read to identify a gzip file's content (enough for its first few kilobytes of text).
_GZIP_HEAD_BYTES = 65536


def _is_sjemea_hdf5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return isinstance(f.get("spikes"), h5py.Dataset) and isinstance(f.get("sCount"), h5py.Dataset)
    except OSError:
        return False


def _check_hdf5_opens(path: Path) -> None:
    """Raise a one-line error for a file that starts like HDF5 but cannot be opened (truncated, damaged)."""
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as err:
        raise TavrnnInputError(
            f"'{path.name}' starts like an HDF5 file but cannot be opened ({str(err).splitlines()[0]}): it is "
            "probably truncated or damaged; copy or export it again."
        ) from None


def _is_nwb_hdf5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "nwb_version" in f.attrs or ("units" in f and "general" in f)
    except OSError:
        return False


def _is_axion_spike_list(head: bytes) -> bool:
    text = head.decode("utf-8-sig", errors="replace")
    first_line = text.replace("\r", "\n").split("\n", 1)[0]
    columns = [c.strip() for c in first_line.split(",")]
    return "Time (s)" in columns and "Electrode" in columns


def _zarr_attributes(path: Path) -> dict:
    """Root attributes of a zarr v2 (``.zattrs``) or v3 (``zarr.json``) folder; {} when absent or unreadable."""
    try:
        if (path / ".zattrs").is_file():
            attrs = json.loads((path / ".zattrs").read_text())
        elif (path / "zarr.json").is_file():
            attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
        else:
            attrs = {}
    except (OSError, ValueError, AttributeError):
        attrs = {}
    return attrs if isinstance(attrs, dict) else {}


def _folder_format(path: Path) -> str | None:
    if (path / "si_folder.json").is_file() or (path / "spikeinterface_info.json").is_file():
        return "spikeinterface"
    if _zarr_attributes(path).keys() & {"zarr_class_info", "spikeinterface_info", "class", "object"}:
        return "spikeinterface"
    if (path / "params.py").is_file() and (path / "spike_times.npy").is_file():
        kilosort_markers = ("cluster_KSLabel.tsv", "rez.mat", "ops.npy")
        if any((path / m).exists() for m in kilosort_markers):
            return "kilosort"
        return "phy"
    return None


def _neo_can_read(path: Path) -> bool:
    try:
        import neo.io
    except ImportError:  # pragma: no cover - neo is a dependency
        return False
    try:
        neo.io.get_io(str(path))
    except Exception:
        return False
    return True


def detect_format(path: str | Path) -> str | None:
    """Identify a spike-data file or folder from its content.

    Parameters
    ----------
    path : str or Path
        A file or a folder.

    Returns
    -------
    str or None
        One of ``"sjemea_hdf5"`` (HDF5 with ``/spikes`` and ``/sCount``), ``"axion_spike_list"`` (CSV, plain or
        gzip, whose header has ``Time (s)`` and ``Electrode`` columns), ``"spikeinterface"`` (a folder or JSON /
        pickle file written by SpikeInterface), ``"phy"`` / ``"kilosort"`` (a folder with ``params.py`` and
        ``spike_times.npy``; ``"kilosort"`` when Kilosort's own files are present), ``"nwb"`` (an NWB HDF5 file),
        ``"neo"`` (a file that ``neo.io.get_io`` recognises), or None when nothing matches. The file extension
        is never trusted alone: HDF5 and CSV files are opened and their content checked.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: '{path}'")
    if path.is_dir():
        folder_format = _folder_format(path)
        if folder_format is not None:
            return folder_format
        return "neo" if _neo_can_read(path) else None

    head = _read_head(path)
    if head.startswith(_HDF5_MAGIC):
        _check_hdf5_opens(path)
        if _is_sjemea_hdf5(path):
            return "sjemea_hdf5"
        if _is_nwb_hdf5(path):
            return "nwb"
    elif _is_axion_spike_list(head):
        return "axion_spike_list"
    elif path.suffix == ".json":
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            content = None
        if isinstance(content, dict) and "class" in content and "kwargs" in content:
            return "spikeinterface"
    if path.suffix == ".nwb":
        return "nwb"
    return "neo" if _neo_can_read(path) else None
