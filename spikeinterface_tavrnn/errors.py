"""The one error type for mistakes in what a user hands the package (inputs, options, files, output paths)."""

from __future__ import annotations

__all__ = ["TavrnnInputError", "TavrnnWriteError"]


class TavrnnInputError(ValueError):
    """A problem with the user's input, options, files or output path; the message names the problem and the fix.

    It is a ``ValueError``, so code that already catches ``ValueError`` keeps working. The ``tavrnn`` command
    prints its message as one line and exits with status 2 (a traceback only with ``--debug``).
    """


class TavrnnWriteError(TavrnnInputError, OSError):
    """A write the user's disk refused (full, size limit, read-only, permissions); nothing old was changed.

    Both a :class:`TavrnnInputError` (the ``tavrnn`` command reports it in one line) and an ``OSError`` (code that
    catches ``OSError`` around writes keeps working). ``errno`` holds the original error number.
    """

    def __init__(self, errno_value: int, message: str) -> None:
        OSError.__init__(self, errno_value, message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return self.__class__, (self.errno, self.args[0])
