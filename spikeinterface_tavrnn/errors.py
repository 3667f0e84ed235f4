"""The one error type for mistakes in what a user hands the package (inputs, options, files, output paths)."""

from __future__ import annotations

__all__ = ["TavrnnInputError"]


class TavrnnInputError(ValueError):
    """A problem with the user's input, options, files or output path; the message names the problem and the fix.

    It is a ``ValueError``, so code that already catches ``ValueError`` keeps working. The ``tavrnn`` command
    prints its message as one line and exits with status 2 (a traceback only with ``--debug``).
    """
