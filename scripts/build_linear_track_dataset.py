"""Build ``spikeinterface_tavrnn/data/linear_track.npz`` from the nelpy linear-track example recording.

Source: github nelpy/example-data, commit 099548c, folder ``linear-track/`` (Kemere lab, MIT licence, kept as
``spikeinterface_tavrnn/data/LICENSE-nelpy``): rat CA1 tetrode units and the animal's position on a linear track.

Inputs (``--source``, default ``../shared/data/nelpy_linear_track`` next to the repository):

- ``spikes.mat``: MatClust output, a nested MATLAB cell array tetrode -> cluster -> struct with fields ``time``
  (spike times in s, already divided by the 30 kHz acquisition clock), ``timerange`` and ``meanrate``.
- ``trajectory.videoPositionTracking``: Trodes position file: a text header ending in ``<End settings>\\n``
  (with ``clockrate: 30000``), then packed little-endian records ``uint32 timestamp, uint16 x, y, x2, y2``
  (60 Hz camera; timestamps count the same 30 kHz clock as the spikes). ``y == 8`` or ``y == 479`` mark frames
  where the LED was lost.

Output: a compressed ``.npz`` (no pickled objects) with every time as an int64 sample index of the 30 kHz clock,
relative to the start of the clustering time range (``t_offset_samples`` holds that start on the original
clock), spike samples concatenated unit by unit with per-unit counts, and the position as float32 pixels with NaN
for lost frames. Run: ``python scripts/build_linear_track_dataset.py [--source DIR] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import scipy.io

SAMPLING_FREQUENCY = 30000.0
LOST_Y_VALUES = (8, 479)
END_OF_HEADER = b"<End settings>\n"
RECORD_DTYPE = np.dtype([("t", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
SOURCE = "nelpy/example-data@099548c linear-track (Kemere lab, MIT licence)"


def _unwrap(cell):
    while isinstance(cell, np.ndarray) and cell.dtype == object and cell.size == 1:
        cell = cell.flat[0]
    return cell


def read_matclust_units(path: Path) -> tuple[list[str], list[int], list[int], list[np.ndarray], tuple[float, float]]:
    """Non-empty units of the MatClust ``spikes.mat``: ids, 1-based tetrode and cluster, times (s), time range."""
    tetrodes = _unwrap(scipy.io.loadmat(path)["spikes"])
    unit_ids, tetrode_numbers, cluster_numbers, times, ranges = [], [], [], [], []
    for t in range(tetrodes.size):
        clusters = tetrodes.flat[t]
        for c in range(clusters.size):
            entry = clusters.flat[c]
            if entry.size == 0 or entry.dtype.names is None or "time" not in entry.dtype.names:
                continue
            spike_times = np.asarray(_unwrap(entry["time"]), dtype=np.float64).ravel()
            if spike_times.size == 0:
                continue
            unit_ids.append(f"tetrode{t + 1}_cluster{c + 1}")
            tetrode_numbers.append(t + 1)
            cluster_numbers.append(c + 1)
            times.append(np.sort(spike_times))
            ranges.append(np.asarray(_unwrap(entry["timerange"]), dtype=np.float64).ravel())
    ranges = np.array(ranges)
    return unit_ids, tetrode_numbers, cluster_numbers, times, (float(ranges[:, 0].min()), float(ranges[:, 1].max()))


def read_trodes_position(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Trodes ``.videoPositionTracking``: clock timestamps, x, y (float, NaN when the LED was lost), header."""
    raw = path.read_bytes()
    end = raw.find(END_OF_HEADER)
    if end < 0:
        raise ValueError(f"{path}: no '<End settings>' line; not a Trodes position file.")
    header_text = raw[:end].decode("ascii", errors="replace")
    header = dict(re.findall(r"^\s*([^:<>\n]+):\s*(.*?)\s*$", header_text, flags=re.M))
    clockrate = float(header.get("clockrate", "nan"))
    if clockrate != SAMPLING_FREQUENCY:
        raise ValueError(f"{path}: clockrate {clockrate} Hz, expected {SAMPLING_FREQUENCY:g} Hz.")
    body = raw[end + len(END_OF_HEADER) :]
    if len(body) % RECORD_DTYPE.itemsize:
        raise ValueError(
            f"{path}: {len(body)} data bytes is not a whole number of {RECORD_DTYPE.itemsize}-byte records."
        )
    records = np.frombuffer(body, dtype=RECORD_DTYPE)
    timestamps = records["t"].astype(np.int64)
    keep = np.r_[True, np.diff(timestamps) > 0]  # a few frames repeat a timestamp: keep the first
    records, timestamps = records[keep], timestamps[keep]
    if np.any(np.diff(timestamps) <= 0):
        raise ValueError(f"{path}: position timestamps go backwards.")
    lost = np.isin(records["y"], LOST_Y_VALUES)
    x = np.where(lost, np.nan, records["x"].astype(np.float64))
    y = np.where(lost, np.nan, records["y"].astype(np.float64))
    return timestamps, x, y, header


def build(source: Path, output: Path) -> dict:
    unit_ids, tetrodes, clusters, times, (t_begin_s, t_end_s) = read_matclust_units(source / "spikes.mat")
    t_offset_samples = int(round(t_begin_s * SAMPLING_FREQUENCY))
    t_stop_samples = int(round(t_end_s * SAMPLING_FREQUENCY)) - t_offset_samples
    spike_samples = [np.round(t * SAMPLING_FREQUENCY).astype(np.int64) - t_offset_samples for t in times]
    all_samples = np.concatenate(spike_samples)
    if all_samples.min() < 0 or all_samples.max() > t_stop_samples:
        raise ValueError("spikes outside the MatClust time range")

    timestamps, x, y, header = read_trodes_position(source / "trajectory.videoPositionTracking")
    position_samples = timestamps - t_offset_samples
    inside = (position_samples >= 0) & (position_samples <= t_stop_samples)
    valid = inside & np.isfinite(x)
    if not valid.any():
        raise ValueError("no valid position sample overlaps the spike time range: check the clocks")

    arrays = dict(
        sampling_frequency=np.float64(SAMPLING_FREQUENCY),
        t_offset_samples=np.int64(t_offset_samples),
        t_stop_samples=np.int64(t_stop_samples),
        unit_ids=np.array(unit_ids, dtype=str),
        tetrode=np.array(tetrodes, dtype=np.int16),
        cluster=np.array(clusters, dtype=np.int16),
        spike_counts=np.array([s.size for s in spike_samples], dtype=np.int64),
        spike_samples=all_samples,
        position_samples=position_samples[inside].astype(np.int64),
        position_x=x[inside].astype(np.float32),
        position_y=y[inside].astype(np.float32),
        camera_resolution=np.array(header.get("camera resolution", "640x480").split("x"), dtype=np.int64),
        source=np.array(SOURCE),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays)
    return {
        "units": len(unit_ids),
        "spikes": int(all_samples.size),
        "t_offset_s": t_offset_samples / SAMPLING_FREQUENCY,
        "duration_s": t_stop_samples / SAMPLING_FREQUENCY,
        "position_samples": int(inside.sum()),
        "valid_position_s": (
            float(position_samples[valid][0] / SAMPLING_FREQUENCY),
            float(position_samples[valid][-1] / SAMPLING_FREQUENCY),
        ),
        "bytes": output.stat().st_size,
    }


def main() -> None:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=repo.parent / "shared" / "data" / "nelpy_linear_track")
    parser.add_argument("--output", type=Path, default=repo / "spikeinterface_tavrnn" / "data" / "linear_track.npz")
    args = parser.parse_args()
    print(build(args.source, args.output))


if __name__ == "__main__":
    main()
