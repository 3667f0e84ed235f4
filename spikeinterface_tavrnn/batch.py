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
A recording whose output already holds a finished report is skipped, so a rerun only does what is missing (an
output left half-replaced by a killed run is restored or recomputed). Results come back as values from
:func:`~spikeinterface_tavrnn.pipeline.run_pipeline`; ``batch_summary.csv`` and ``.json`` are written atomically.
"""

from __future__ import annotations

import copy
import csv
import glob
import io
import json
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import TavrnnInputError
from .fileio import write_text_atomic
from .outputs import recover_output
from .pipeline import PipelineOptions, run_pipeline, summarize_analyzer

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
    """Whether ``folder`` holds a finished run (an output of this package with its report's summary)."""
    from .outputs import is_package_output

    return is_package_output(folder) and (folder / "report" / "summary.json").is_file()


def process_recording(
    input_path: str | Path,
    output: str | Path,
    options: PipelineOptions | Mapping[str, Any] | None = None,
    reader: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline on one recording; never raises: failures are returned as a row.

    Parameters
    ----------
    input_path : str or Path
        A recording :func:`spikeinterface_tavrnn.io.read_sorting` reads.
    output : str or Path
        Its output folder (analyzer and report); an earlier output of this package there is replaced.
    options : PipelineOptions, dict or None, default: None
        The settings (a dict by flat names, see :meth:`PipelineOptions.from_dict`); their output folder and
        progress settings are replaced by ``output`` and quiet.
    reader : dict or None, default: None
        Keyword arguments of ``read_sorting`` (``format``, ``sampling_frequency``; None values are dropped).

    Returns
    -------
    dict
        One row of the batch table, with the numbers of the :class:`~spikeinterface_tavrnn.pipeline.PipelineResult`.
    """
    from .io import read_sorting

    input_path, output = Path(input_path), Path(output)
    row: dict[str, Any] = {"input": str(input_path), "output": str(output), "status": "failed", "error": ""}
    start = time.perf_counter()
    try:
        options = _as_options(options)
        options.output.folder = output
        options.output.overwrite = True  # only ever replaces an output of this package (output_folder checks)
        options.output.quiet = True
        options.output.title = f"TAVRNN: {input_path.name}"
        reader_kwargs = {key: value for key, value in (reader or {}).items() if value is not None}
        sorting = read_sorting(input_path, **reader_kwargs)
        result = run_pipeline(sorting, options, inputs=[input_path])
        row.update(_summary_row(result.summary))
        row["status"] = "done"
    except Exception as error:  # a failed recording must not stop the batch
        row["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        row["traceback"] = traceback.format_exc()
    row["time_s"] = round(time.perf_counter() - start, 3)
    return row


def _as_options(options: PipelineOptions | Mapping[str, Any] | None) -> PipelineOptions:
    if isinstance(options, PipelineOptions):
        return copy.deepcopy(options)
    return PipelineOptions.from_dict({key: value for key, value in (options or {}).items()
                                      if key not in ("quiet", "overwrite", "output")})  # fmt: skip


def _summary_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    row = {key: summary.get(key) for key in ("n_units", "n_windows", "final_loss")}
    scores = summary.get("link_scores")
    if isinstance(scores, Mapping):
        row.update({f"link_{name}": value for name, value in scores.items() if isinstance(value, (int, float))})
    return row


def _finished_row(path: Path, folder: Path) -> dict[str, Any]:
    """The row of a recording finished by an earlier run, from its analyzer (the same numbers as a new run)."""
    from .analyzer import load_sorting_analyzer

    analyzer_folder = folder / "analyzer.zarr" if (folder / "analyzer.zarr").exists() else folder / "analyzer"
    row = {"input": str(path), "output": str(folder), "status": "skipped", "error": ""}
    row.update(_summary_row(summarize_analyzer(load_sorting_analyzer(analyzer_folder))))
    return row


def run_batch(
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    options: PipelineOptions | Mapping[str, Any] | None = None,
    reader: Mapping[str, Any] | None = None,
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
    options : PipelineOptions, dict or None, default: None
        The settings of every recording's run (a dict by flat names: ``method="sttc"``, ``window_s=120``,
        ``epochs=300``, ...; see :meth:`PipelineOptions.from_dict <spikeinterface_tavrnn.pipeline.PipelineOptions.from_dict>`).
        None for the package's defaults.
    reader : dict or None, default: None
        Keyword arguments of ``read_sorting`` (``format``, ``sampling_frequency``).
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
    if output_dir.exists() and not output_dir.is_dir():
        raise TavrnnInputError(f"batch output {str(output_dir)!r} is a file; give a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    options = _as_options(options)
    options.validate()

    rows, todo = [], []
    for path in paths:
        folder = output_folder_for(path, output_dir)
        try:
            recover_output(folder)  # a run killed mid-swap may have left a finished output beside the folder
        except TavrnnInputError:
            pass  # another run holds the folder: its task will report the lock
        if is_finished(folder) and not overwrite:
            try:
                rows.append(_finished_row(path, folder))
                continue
            except Exception:  # an unreadable earlier result is computed again
                pass
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
            futures = [client.submit(process_recording, str(p), str(f), options, reader, pure=False) for p, f in todo]
            for future in tqdm(as_completed(futures), total=len(futures), disable=not verbose, desc="recordings"):
                rows.append(future.result())
        finally:
            if own_cluster is not None:
                client.close()
                own_cluster.close()

    order = {str(path): i for i, path in enumerate(paths)}
    rows.sort(key=lambda row: order[row["input"]])
    write_table(rows, output_dir / "batch_summary.csv")
    write_text_atomic(output_dir / "batch_summary.json", json.dumps(rows, indent=2, default=str))
    return rows


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the batch rows as CSV, atomically (standard columns first, then link scores; tracebacks stay in the JSON)."""
    extra = sorted({key for row in rows for key in row} - set(TABLE_COLUMNS) - {"traceback"})
    columns = TABLE_COLUMNS + extra
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    write_text_atomic(path, buffer.getvalue())
