"""Many recordings at once: one Dask task per recording (connectivity, embeddings, report), results in one table.

A plate, a cohort or months of cultures are processed on a ``dask.distributed`` cluster: a ``LocalCluster`` on this
machine by default, or any running scheduler (``scheduler="tcp://host:8786"``). On a SLURM cluster, start the
workers with dask-jobqueue and pass its client::

    from dask_jobqueue import SLURMCluster
    from dask.distributed import Client
    cluster = SLURMCluster(cores=4, memory="16GB", walltime="02:00:00")
    cluster.scale(jobs=10)
    run_batch(paths, "results/", client=Client(cluster))

A recording that fails is reported in the table (status "failed" and the error) and does not stop the others.
A recording whose output already holds a finished report is skipped, so a rerun only does what is missing.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Sequence

#: Columns of the batch table, in order (link-score columns are appended when present).
TABLE_COLUMNS = ["input", "output", "status", "time_s", "n_units", "n_windows", "final_loss", "error"]


def expand_inputs(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Paths from a glob pattern, a path, or a list of either; sorted, without duplicates."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        matches = sorted(glob.glob(str(item))) if any(ch in str(item) for ch in "*?[") else [str(item)]
        if not matches:
            raise FileNotFoundError(f"No input matches {item!r}.")
        paths.extend(Path(match) for match in matches)
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise ValueError("No inputs given.")
    return unique


def output_folder_for(input_path: Path, output_dir: Path) -> Path:
    """Where the results of one input go: ``output_dir / <input name without suffix>``."""
    name = input_path.name
    for suffix in (".gz", ".csv", ".h5", ".hdf5", ".nwb", ".zarr"):
        name = name.removesuffix(suffix)
    return output_dir / name


def is_finished(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run (the report's summary is written last)."""
    return (folder / "report" / "summary.json").is_file()


def process_recording(input_path: str | Path, output: str | Path, options: dict[str, Any]) -> dict[str, Any]:
    """Run the whole pipeline on one recording; never raises: failures are returned as a row.

    Parameters
    ----------
    input_path : str or Path
        A recording :func:`spikeinterface_tavrnn.io.read_sorting` reads.
    output : str or Path
        Its output folder (analyzer and report).
    options : dict
        Options of the ``tavrnn run`` command, by their Python names (``method``, ``window_s``, ``epochs``, ...).

    Returns
    -------
    dict
        One row of the batch table.
    """
    from .cli import build_parser, run_pipeline
    from .io import read_sorting

    input_path, output = Path(input_path), Path(output)
    row: dict[str, Any] = {"input": str(input_path), "output": str(output), "status": "failed", "error": ""}
    start = time.perf_counter()
    try:
        args = build_parser().parse_args(["run", str(input_path)])
        for key, value in options.items():
            if not hasattr(args, key):
                raise ValueError(f"Unknown option {key!r} for a batch run.")
            setattr(args, key, value)
        args.output = output
        reader_kwargs = {} if args.sampling_frequency is None else {"sampling_frequency": args.sampling_frequency}
        sorting = read_sorting(input_path, format=args.format, **reader_kwargs)
        run_pipeline(sorting, args, title=f"TAVRNN: {input_path.name}")
        row.update(_summary_row(output))
        row["status"] = "done"
    except Exception as error:  # a failed recording must not stop the batch
        row["error"] = f"{type(error).__name__}: {error}"
        row["traceback"] = traceback.format_exc()
    row["time_s"] = round(time.perf_counter() - start, 3)
    return row


def _summary_row(folder: Path) -> dict[str, Any]:
    summary = json.loads((folder / "report" / "summary.json").read_text())
    row = {}
    for key in ("n_units", "n_windows", "final_loss"):
        row[key] = _find_key(summary, key)
    scores = _find_key(summary, "link_scores")
    if isinstance(scores, dict):
        row.update({f"link_{name}": value for name, value in scores.items() if isinstance(value, (int, float))})
    return row


def _find_key(tree: Any, key: str) -> Any:
    """First value stored under ``key`` anywhere in a nested JSON tree (the report groups its numbers)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for value in tree:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def run_batch(
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    options: dict[str, Any] | None = None,
    scheduler: str | None = None,
    client=None,
    n_workers: int | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Process many recordings on a Dask cluster, one task per recording, and collect one table.

    Parameters
    ----------
    inputs : str, Path or list of them
        Recordings, or glob patterns (``"plates/*.h5"``).
    output_dir : str or Path
        Each recording's analyzer and report go to ``output_dir/<name>``; the table to
        ``output_dir/batch_summary.csv`` (and ``.json``).
    options : dict or None, default: None
        Options of ``tavrnn run`` by Python name (``method="sttc"``, ``window_s=120``, ``epochs=300``, ...).
    scheduler : str or None, default: None
        Address of a running Dask scheduler; None starts a ``LocalCluster``.
    client : dask.distributed.Client or None, default: None
        An existing client (for example on a dask-jobqueue cluster); overrides ``scheduler``.
    n_workers : int or None, default: None
        Workers of the local cluster (one thread each); Dask's default when None.
    overwrite : bool, default: False
        Recompute recordings that already have a finished output (else they are skipped, status "skipped").
    verbose : bool, default: True
        Progress bar over recordings (the per-recording progress bars are always off).

    Returns
    -------
    list of dict
        One row per recording, also written to ``batch_summary.csv``.
    """
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    paths = expand_inputs(inputs)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    options = {**(options or {}), "quiet": True, "overwrite": overwrite}

    rows, todo = [], []
    for path in paths:
        folder = output_folder_for(path, output_dir)
        if is_finished(folder) and not overwrite:
            rows.append({"input": str(path), "output": str(folder), "status": "skipped", **_summary_row(folder)})
        else:
            todo.append((path, folder))

    own_cluster = None
    if todo:
        if client is None:
            if scheduler is None:
                own_cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
                client = Client(own_cluster)
            else:
                client = Client(scheduler)
        try:
            futures = [client.submit(process_recording, str(p), str(f), options, pure=False) for p, f in todo]
            for future in tqdm(as_completed(futures), total=len(futures), disable=not verbose, desc="recordings"):
                rows.append(future.result())
        finally:
            if own_cluster is not None:
                client.close()
                own_cluster.close()

    order = {str(path): i for i, path in enumerate(paths)}
    rows.sort(key=lambda row: order[row["input"]])
    write_table(rows, output_dir / "batch_summary.csv")
    (output_dir / "batch_summary.json").write_text(json.dumps(rows, indent=2, default=str))
    return rows


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the batch rows as CSV (standard columns first, then link scores; tracebacks stay in the JSON)."""
    extra = sorted({key for row in rows for key in row} - set(TABLE_COLUMNS) - {"traceback"})
    columns = TABLE_COLUMNS + extra
    temporary = path.with_suffix(".csv.partial")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in columns})
    temporary.replace(path)


def batch_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``tavrnn run`` options of a parsed ``tavrnn batch`` command line."""
    skip = {"command", "inputs", "output", "scheduler", "n_workers", "overwrite", "quiet", "intervals"}
    return {key: value for key, value in vars(args).items() if key not in skip}
