"""Text in, spans out: read files lazily, tag in batches, write CoNLL, JSON lines or inline markup.

Input is read as bytes, a line at a time (over-long lines in pieces of at most
`MAX_LINE_BYTES`), decoded as UTF-8, tagged a chunk of sentences at a time and written as
it goes, so memory stays bounded on files of any size. Output to a file goes to a
temporary file beside it that replaces the file only when everything succeeded.

Character offsets (text input) count characters (Unicode code points) of the decoded input
without its byte-order mark, line ends as they are (CRLF is two characters): they index
`open(path, encoding="utf-8-sig", newline="").read()`, one file at a time.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from swener.atomic import atomic_path
from swener.batching import ahead, batched
from swener.data.readers import columns
from swener.data.tags import iob2_of_spans
from swener.data.tokenizer import split_sentences
from swener.errors import DataError, SwenerError
from swener.files import open_text

INPUT_FORMATS = ("text", "tokens", "conll")
OUTPUT_FORMATS = ("conll", "jsonl", "inline")
MAX_LINE_BYTES = 1 << 20  # a longer line is read (and tagged) in pieces
DEFAULT_MAX_TOKENS = 256  # a longer sentence is tagged in chunks of this many tokens
# the model sees at most this much of a token (a base64 blob is not a name); output keeps it whole
MAX_TOKEN_CHARS = 100
LABEL = "ner"
BOM = b"\xef\xbb\xbf"
BINARY = "binary data (a NUL byte), not UTF-8 text; convert the file to UTF-8 text first"

@dataclass
class Item:
    """One sentence to tag, and where it came from."""

    tokens: list[str]
    text: str  # the sentence as it stands in the input (text input), else its tokens joined by spaces
    source: str
    line: int  # 1-based line of its first token
    offsets: list[tuple[int, int]] | None = None  # character spans of the tokens in the input (text input)

@dataclass
class Entity:
    """A predicted entity: its type, token span [start, end) and confidence."""

    type: str
    start: int
    end: int
    confidence: float

@dataclass
class Summary:
    """What one `tag_files` call did."""

    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    seconds: float = 0.0

# --------------------------------------------------------------------------- reading

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

    The byte-order mark is dropped; a NUL byte or (with errors="strict") bytes that are not
    UTF-8 raise a DataError naming the file and line.
    """
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', not {errors!r}")
    max_bytes = max_bytes or MAX_LINE_BYTES
    head = stream.peek(8192)[:8192] if hasattr(stream, "peek") else b""
    if b"\0" in head:  # before any line fails to decode: say what the file is
        raise DataError(name, BINARY, head[:head.index(b"\0")].count(b"\n") + 1)
    number, carry, first = 1, b"", True
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
        if first:
            first = False
            if data.startswith(BOM):
                data = data[len(BOM):]
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

def read_text(lines: Iterable[tuple[int, str]], name: str, max_tokens: int) -> Iterator[Item]:
    """Sentences of raw text (the swener tokeniser), with character offsets into the input."""
    offset = 0
    for number, line in lines:
        for sentence in split_sentences(line):
            for start, end in _chunks(len(sentence), max_tokens):
                part = sentence[start:end]
                yield Item([t.text for t in part], line[part[0].start:part[-1].end], name, number,
                           [(t.start + offset, t.end + offset) for t in part])
        offset += len(line)

def read_tokens(lines: Iterable[tuple[int, str]], name: str, max_tokens: int) -> Iterator[Item]:
    """One pre-tokenised sentence a line, tokens separated by white space."""
    for number, line in lines:
        tokens = line.split()
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
        body = line.rstrip("\r\n")
        if not body.strip():
            if tokens:
                yield Item(tokens, " ".join(tokens), name, first_line)
            tokens = []
            continue
        token = columns(body)[0].strip()
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
    with open_text(path, "rb") as handle:
        yield handle

def read_items(paths: Sequence[str], input_format: str = "text", errors: str = "strict",
               max_tokens: int = DEFAULT_MAX_TOKENS, on_bytes: Callable[[int], None] | None = None) -> Iterator[Item]:
    """The sentences of all inputs, in order, read lazily."""
    if input_format not in READERS:
        raise ValueError(f"input format must be one of {INPUT_FORMATS}, not {input_format!r}")
    if max_tokens < 1:
        raise SwenerError(f"--max-tokens must be at least 1, not {max_tokens}")
    for path in paths:
        name = "<stdin>" if path == "-" else path
        with open_input(path) as stream:
            try:
                yield from READERS[input_format](read_lines(stream, name, errors, on_bytes=on_bytes), name,
                                                 max_tokens)
            except (gzip.BadGzipFile, EOFError) as err:
                raise DataError(name, f"not a readable gzip file ({err})") from None

def check_paths(paths: Sequence[str], out: Path | None) -> None:
    """Fail early, before the model loads, on inputs that do not exist and an output that cannot be written."""
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise SwenerError(f"{path}: no such file" + (" (a folder)" if Path(path).is_dir() else ""))
    if paths.count("-") > 1:
        raise SwenerError("stdin (-) can be read only once")
    if out is not None:
        if out.is_dir():
            raise SwenerError(f"{out}: is a folder; -o takes a file name")
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise SwenerError(f"{out.parent}: no such folder for the output file")
        for path in paths:
            if path != "-" and _same_file(path, out):
                raise SwenerError(f"{out}: the output file is also an input ({path}); tagging would replace "
                                  "the input: write the output to another file")

def _same_file(path: str | Path, out: Path) -> bool:
    """Whether two paths name one file (also through symbolic or hard links)."""
    try:
        return os.path.samefile(path, out)
    except OSError:  # `out` does not exist (yet): it cannot be an input
        return False

@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM unwinds like Ctrl-C (exit status 143), so temporary files are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

# --------------------------------------------------------------------------- tagging

def tag_items(tagger, items: Iterable[Item], batch_size: int = 64, chunk: int | None = None
              ) -> Iterator[tuple[Item, list[Entity]]]:
    """Each item with its predicted entities, tagging `chunk` sentences per call (sorted by length inside).

    A tagger with `tag_tokens` (swener's students and exported taggers) is called on the
    token strings; any other Flair tagger through `predict` on Flair sentences.
    """
    if hasattr(tagger, "tag_tokens") and getattr(tagger, "supports_tag_tokens", True):
        yield from _tag_items_lean(tagger, items, batch_size, chunk)
        return
    from flair.data import Sentence

    for group in batched(items, chunk or max(16 * batch_size, 256)):
        sentences = [Sentence([t[:MAX_TOKEN_CHARS] for t in item.tokens]) for item in group]
        by_length = sorted(sentences, key=len, reverse=True)  # little padding in each mini-batch
        for start in range(0, len(by_length), batch_size):
            # one call per mini-batch: predict() clears the embeddings of all sentences it was given after each
            tagger.predict(by_length[start:start + batch_size], mini_batch_size=batch_size, label_name=LABEL)
        for item, sentence in zip(group, sentences):
            entities = []
            for span in sentence.get_spans(LABEL):
                label = span.get_label(LABEL)
                entities.append(Entity(label.value, span.tokens[0].idx - 1, span.tokens[-1].idx, float(label.score)))
            yield item, entities

def _tag_items_lean(tagger, items: Iterable[Item], batch_size: int, chunk: int | None
                    ) -> Iterator[tuple[Item, list[Entity]]]:
    """`tag_items` for a tagger with `tag_tokens` (BIOES tags and confidences of token lists).

    A tagger that splits tagging into `prepare` (Python: word ids, vectors) and `run` (the
    encoder, which releases the GIL), as exported ones do, reads and prepares the next chunk
    in a thread of its own while the current one is tagged; one line at a time (`chunk` 1,
    someone typing) stays in one thread.
    """
    from swener.data.tags import bioes_spans

    def tokens(group: list[Item]) -> list[list[str]]:
        return [[t[:MAX_TOKEN_CHARS] for t in item.tokens] for item in group]

    groups = batched(items, chunk or max(16 * batch_size, 256))
    if hasattr(tagger, "prepare") and chunk is None:
        tagged = ((group, tagger.run(prepared))
                  for group, prepared in ahead((g, tagger.prepare(tokens(g), batch_size)) for g in groups))
    else:
        tagged = ((group, tagger.tag_tokens(tokens(group), batch_size)) for group in groups)
    for group, results in tagged:
        for item, (tags, scores) in zip(group, results):
            yield item, [Entity(kind, start, end, score) for start, end, kind, score in bioes_spans(tags, scores)]

# --------------------------------------------------------------------------- writing

def format_conll(item: Item, entities: Sequence[Entity]) -> str:
    """token TAB tag lines (IOB2) and a blank line."""
    tags = iob2_of_spans(len(item.tokens), ((e.start, e.end, e.type) for e in entities))
    return "".join(f"{token}\t{tag}\n" for token, tag in zip(item.tokens, tags)) + "\n"

def to_json(item: Item, entities: Sequence[Entity]) -> dict[str, Any]:
    """A sentence as the JSON-lines output describes it."""
    data: dict[str, Any] = {"file": item.source, "line": item.line, "text": item.text}
    if item.offsets is not None:
        data["start"], data["end"] = item.offsets[0][0], item.offsets[-1][1]
    data["tokens"] = item.tokens
    rows = []
    for e in entities:
        row: dict[str, Any] = {"type": e.type}
        if item.offsets is not None:
            first = item.offsets[0][0]
            start, end = item.offsets[e.start][0], item.offsets[e.end - 1][1]
            row.update(text=item.text[start - first:end - first], token_span=[e.start, e.end], start=start, end=end)
        else:
            row.update(text=" ".join(item.tokens[e.start:e.end]), token_span=[e.start, e.end])
        row["confidence"] = round(e.confidence, 4)
        rows.append(row)
    data["entities"] = rows
    return data

def format_jsonl(item: Item, entities: Sequence[Entity]) -> str:
    """One JSON object a line."""
    return json.dumps(to_json(item, entities), ensure_ascii=False) + "\n"

def format_inline(item: Item, entities: Sequence[Entity]) -> str:
    """Tokens separated by spaces with entities in brackets: `[Anna Berg]PER bor i [Umeå]LOC .`"""
    words = list(item.tokens)
    for e in sorted(entities, key=lambda e: e.start, reverse=True):
        words[e.start:e.end] = [f"[{' '.join(words[e.start:e.end])}]{e.type}"]
    return " ".join(words) + "\n"

FORMATTERS: dict[str, Callable[[Item, Sequence[Entity]], str]] = {
    "conll": format_conll, "jsonl": format_jsonl, "inline": format_inline}

@contextmanager
def atomic_output(out: Path | None) -> Iterator[IO[str]]:
    """A text stream to write to: stdout, or a temporary file beside `out` renamed to it on success."""
    if out is None:
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            yield stdout
            stdout.flush()
        finally:
            stdout.detach()
        return
    with atomic_path(out, suffix=".part") as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        yield handle

def _progress(paths: Sequence[str], enabled: bool | None):
    """A tqdm bar over input bytes when stderr is a terminal, else None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    sized = all(p != "-" and not p.endswith(".gz") for p in paths)
    total = sum(os.path.getsize(p) for p in paths) if sized else None
    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, desc="tagging", leave=False)

def tag_files(tagger, paths: Sequence[str], out: Path | None = None, output_format: str = "conll",
              input_format: str = "text", batch_size: int = 64, errors: str = "strict",
              max_tokens: int = DEFAULT_MAX_TOKENS, progress: bool | None = None) -> Summary:
    """Tag files (or stdin, "-") with a flair tagger and write the result to `out` (or stdout)."""
    if output_format not in FORMATTERS:
        raise ValueError(f"output format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    if batch_size < 1:
        raise SwenerError(f"--batch-size must be at least 1, not {batch_size}")
    check_paths(paths, out)
    formatter = FORMATTERS[output_format]
    summary, started = Summary(), time.perf_counter()
    interactive = "-" in paths and sys.stdin.isatty()  # someone typing: answer each line, do not read ahead
    flush_every = 1 if interactive else batch_size
    bar = _progress(paths, progress)
    try:
        items = read_items(paths, input_format, errors, max_tokens, on_bytes=bar.update if bar else None)
        with sigterm_unwinds(), atomic_output(out) as handle:
            pending = 0
            for item, entities in tag_items(tagger, items, batch_size, chunk=1 if interactive else None):
                handle.write(formatter(item, entities))
                summary.sentences += 1
                summary.tokens += len(item.tokens)
                summary.entities += len(entities)
                pending += 1
                if out is None and pending >= flush_every:  # let a reader of a pipe see output as it comes
                    handle.flush()
                    pending = 0
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
