"""A transfer text in tokens form: one token a line, an empty line after each sentence.

A raw text goes through swener's sentence splitter and tokeniser; a file named `*.tokens` (or
`*.tokens.gz`) is read back as exactly the tokens written, so a teacher's cache of held-back
corpus sentences has the corpus's own tokens. Tags are never written to it.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterable, Sequence

from swener.atomic import atomic_path
from swener.errors import DataError
from swener.files import open_text

SUFFIXES = (".tokens", ".tokens.gz")


def is_tokens_file(path: str | Path) -> bool:
    """Whether a transfer text is in tokens form (by its name: *.tokens or *.tokens.gz)."""
    return str(path).endswith(SUFFIXES)


def write_tokens(path: Path, sentences: Iterable[Sequence[str]]) -> int:
    """Write sentences of tokens atomically (gzip if the name ends in .gz); returns how many were written."""
    path = Path(path)
    if not is_tokens_file(path):
        raise DataError(path, f"a tokens file must be named *{SUFFIXES[0]} or *{SUFFIXES[1]} "
                              "(other names are read as raw text)")
    count = 0
    with atomic_path(path) as tmp:
        opener = gzip.open(tmp, "wt", encoding="utf-8") if path.name.endswith(".gz") else open(
            tmp, "w", encoding="utf-8")
        with opener as handle:
            for number, tokens in enumerate(sentences):
                bad = [t for t in tokens if not t.strip() or "\n" in t or "\r" in t]
                if bad or not tokens:
                    raise DataError(path, f"sentence {number + 1}: " + (f"token {bad[0]!r} is empty or breaks the "
                                    "line" if bad else "no tokens") + "; it cannot be written one token a line")
                handle.write("\n".join(tokens) + "\n\n")
                count += 1
    return count


def read_tokens(path: Path, max_sentences: int | None = None) -> list[list[str]]:
    """The sentences of a tokens file, each token exactly as written (the first `max_sentences` of them)."""
    sentences: list[list[str]] = []
    current: list[str] = []
    with open_text(path) as handle:
        for line in handle:
            token = line.rstrip("\n")
            if token:
                current.append(token)
                continue
            if current:
                sentences.append(current)
                current = []
                if max_sentences is not None and len(sentences) >= max_sentences:
                    return sentences
    if current:
        sentences.append(current)
    return sentences[:max_sentences]
