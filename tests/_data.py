"""Locate the real recordings of ``../shared/data`` (outside the repository) for tests that use them.

Set the environment variable ``TAVRNN_SHARED_DATA`` to point elsewhere. Tests that need the data use the
``requires_shared_data`` marker (or call :func:`shared_data_dir` and skip) so that the suite passes without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path | None:
    """The shared real-data folder, or None when it is absent."""
    env = os.environ.get("TAVRNN_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None


def shared_data_path(*parts: str) -> Path:
    """A path inside the shared data folder; skips the calling test when it does not exist."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("shared real data not found (set TAVRNN_SHARED_DATA)")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared real data file missing: {path}")
    return path


requires_shared_data = pytest.mark.skipif(
    shared_data_dir() is None, reason="shared real data not found (set TAVRNN_SHARED_DATA)"
)
