"""Files: one sha256, one "open plain or gzip", one "read JSON or say clearly why not"."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import IO, Any

from swener.errors import DataError


def sha256_of(data: bytes | str | Path) -> str:
    """The hex sha256 of bytes, or of a file (a path), read in 1 MB blocks."""
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_name(path: str | Path) -> str:
    """A text file's short name, its file name up to the first dot: ../text/almedalen.txt.gz -> almedalen."""
    return Path(path).name.split(".")[0]


def open_text(path: str | Path, mode: str = "rt") -> IO:
    """A file opened for reading, gzip-decompressed when its name ends in .gz; text modes read UTF-8."""
    opener = gzip.open if str(path).endswith(".gz") else open
    if "b" in mode:
        return opener(path, mode)
    return opener(path, mode, encoding="utf-8")


def read_json(path: str | Path, what: str, fix: str) -> Any:
    """The JSON value in a file; an unreadable or malformed file is one DataError: '<path>: <what> (<why>); <fix>'."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise DataError(path, f"{what} ({err}); {fix}") from None
