"""Where the ``results_*.py`` scripts put their output: ``<folder>/<name>[_quick].md`` and ``.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spikeinterface_tavrnn.fileio import write_text_atomic


def write_results(folder: str | Path, name: str, quick: bool, table: str, payload: dict[str, Any]) -> None:
    """Write the Markdown table and the JSON payload of one results script, each beside then renamed.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing).
    name : str
        File stem, e.g. ``"dblp"``; ``"_quick"`` is appended for a smoke run.
    quick : bool
        Whether this is a ``--quick`` smoke run.
    table : str
        The Markdown text (a final newline is added).
    payload : dict
        The raw numbers, written as indented JSON.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_quick" if quick else name
    write_text_atomic(out / f"{stem}.md", table + "\n")
    write_text_atomic(out / f"{stem}.json", json.dumps(payload, indent=1))
