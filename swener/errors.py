"""The one exception type that the command line turns into a single error line."""
from __future__ import annotations

from pathlib import Path


class SwenerError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""


class DataError(SwenerError):
    """Bad input data, located by file and (where known) line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line
