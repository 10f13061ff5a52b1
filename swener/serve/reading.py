"""Reading the inputs of `swener tag`: bytes to numbered lines (checked, decoded), lines to sentences (Items).

See swener.serve.tagging for the offsets and marks these keep.
"""
from __future__ import annotations

import gzip
import sys
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

from swener.data.readers import columns
from swener.data.tokenizer import sentence_tokens
from swener.errors import DataError, SwenerError
from swener.files import open_text
from swener.serve.formats import Item

INPUT_FORMATS = ("text", "tokens", "conll")
MAX_LINE_BYTES = 1 << 20  # a longer line is read (and tagged) in pieces
DEFAULT_MAX_TOKENS = 256  # a longer sentence is tagged in chunks of this many tokens
# the model sees at most this much of a token (a base64 blob is not a name); output keeps it whole
MAX_TOKEN_CHARS = 100
MARKS = "\ufeff\u200b\u200c\u200d\u2060"  # byte-order and zero-width marks: not part of any token
MAX_GAP_CHARS = 10_000  # longer white space between two sentences is kept as at most two line breaks
BINARY = "binary data (a NUL byte), not UTF-8 text; convert the file to UTF-8 text first"


def _cut(data: bytes) -> int:
    """Where to split an over-long line: after its last blank in the second half, else before its last character."""
    blank = max(data.rfind(b" "), data.rfind(b"\t"))
    if blank >= len(data) // 2:
        return blank + 1
    last = len(data) - 1
    while last > len(data) - 4 and data[last] & 0xC0 == 0x80:  # UTF-8 continuation bytes
        last -= 1
    return last if data[last] >= 0xC0 else len(data)

def read_lines(stream: BinaryIO, name: str, errors: str = "strict", max_bytes: int | None = None,
               on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[int, str]]:
    """Decoded lines (with their line ends) and their 1-based numbers; an over-long line comes in pieces.

    Every character is kept, a byte-order mark too (offsets count it); a NUL byte or (with
    errors="strict") bytes that are not UTF-8 raise a DataError naming the file and line.
    """
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', not {errors!r}")
    max_bytes = max_bytes or MAX_LINE_BYTES
    head = stream.peek(8192)[:8192] if hasattr(stream, "peek") else b""
    if b"\0" in head:  # before any line fails to decode: say what the file is
        raise DataError(name, BINARY, head[:head.index(b"\0")].count(b"\n") + 1)
    number, carry = 1, b""
    while True:
        data = stream.readline(max_bytes - len(carry))
        if on_bytes is not None and data:
            on_bytes(len(data))
        data, carry = carry + data, b""
        if not data:
            return
        whole = data.endswith(b"\n") or len(data) < max_bytes
        if not whole:
            cut = _cut(data)
            data, carry = data[:cut], data[cut:]
        if b"\0" in data:
            raise DataError(name, BINARY, number)
        try:
            text = data.decode("utf-8", errors)
        except UnicodeDecodeError as err:
            raise DataError(name, f"not UTF-8 (byte 0x{data[err.start]:02x} at byte {err.start + 1} of the line); "
                            "fix the encoding or use --errors replace", number) from None
        yield number, text
        if whole:
            number += 1

def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) ranges of at most `size` of n positions."""
    for start in range(0, n, size):
        yield start, min(start + size, n)

def _short_gap(gap: str) -> str:
    """White space between sentences, kept whole up to MAX_GAP_CHARS, else as its (at most two) line breaks."""
    if len(gap) <= MAX_GAP_CHARS:
        return gap
    return "\n" * min(gap.count("\n"), 2) or " "

def read_text(lines: Iterable[tuple[int, str]], name: str, max_tokens: int, offset: int = 0) -> Iterator[Item]:
    """Sentences of raw text (the swener tokeniser), with character offsets into the input (its first line
    at character `offset`) and the text before each."""
    gap = ""
    for number, line in lines:
        cursor = 0
        for texts, spans in sentence_tokens(line):
            for start, end in _chunks(len(texts), max_tokens):
                first, last = spans[start][0], spans[end - 1][1]
                before = _short_gap(gap + line[cursor:first])
                yield Item(texts[start:end], line[first:last], name, number,
                           [(a + offset, b + offset) for a, b in spans[start:end]], before)
                gap, cursor = "", last
        gap = _short_gap(gap + line[cursor:])
        offset += len(line)

def read_tokens(lines: Iterable[tuple[int, str]], name: str, max_tokens: int) -> Iterator[Item]:
    """One pre-tokenised sentence a line, tokens separated by white space."""
    for number, line in lines:
        tokens = [token for token in (word.strip(MARKS) for word in line.split()) if token]
        for start, end in _chunks(len(tokens), max_tokens):
            yield Item(tokens[start:end], " ".join(tokens[start:end]), name, number)

def read_conll_tokens(lines: Iterable[tuple[int, str]], name: str, max_tokens: int) -> Iterator[Item]:
    """A column file: the token in the first column (tab-separated, else blank-separated), blank line between
    sentences."""
    tokens: list[str] = []
    first_line = previous = 0
    for number, line in lines:
        if number == previous:  # read_lines cut an over-long line
            raise DataError(name, f"a line of more than {MAX_LINE_BYTES} bytes: not a CoNLL column file", number)
        previous = number
        body = line.rstrip("\r\n").strip(MARKS)
        if not body.strip():
            if tokens:
                yield Item(tokens, " ".join(tokens), name, first_line)
            tokens = []
            continue
        token = columns(body)[0].strip().strip(MARKS)
        if token == "-DOCSTART-" or not token:
            continue
        if not tokens:
            first_line = number
        tokens.append(token)
        if len(tokens) == max_tokens:
            yield Item(tokens, " ".join(tokens), name, first_line)
            tokens = []
    if tokens:
        yield Item(tokens, " ".join(tokens), name, first_line)

READERS = {"text": read_text, "tokens": read_tokens, "conll": read_conll_tokens}

@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """A binary stream of a file, a .gz file or stdin ("-")."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open_text(path, "rb")
    except OSError as err:
        raise DataError(path, f"cannot be read ({err.strerror}); check that it exists and you may read it") from None
    with handle:
        yield handle

def read_items(paths: Sequence[str], input_format: str = "text", errors: str = "strict",
               max_tokens: int = DEFAULT_MAX_TOKENS, on_bytes: Callable[[int], None] | None = None,
               on_file: Callable[[str], None] | None = None) -> Iterator[Item]:
    """The sentences of all input files, in order, read lazily (`on_file` is told each file as it opens)."""
    if input_format not in READERS:
        raise ValueError(f"input format must be one of {INPUT_FORMATS}, not {input_format!r}")
    if max_tokens < 1:
        raise SwenerError(f"--max-tokens must be at least 1, not {max_tokens}")
    for path in paths:
        name = _name(path)
        yield from READERS[input_format](input_lines(path, errors, on_bytes, on_file), name, max_tokens)


def _name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def input_lines(path: str, errors: str = "strict", on_bytes: Callable[[int], None] | None = None,
                on_file: Callable[[str], None] | None = None) -> Iterator[tuple[int, str]]:
    """The numbered lines of one input (`read_lines`), opened when the first is asked for."""
    name = _name(path)
    if on_file is not None:
        on_file(name)
    with open_input(path) as stream:
        try:
            yield from read_lines(stream, name, errors, on_bytes=on_bytes)
        except (gzip.BadGzipFile, EOFError) as err:
            raise DataError(name, f"not a readable gzip file ({err})") from None

