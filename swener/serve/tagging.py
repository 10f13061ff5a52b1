"""Text in, spans out: read files and folders lazily, tag in batches, write CoNLL, JSON lines, inline markup
or HTML pages.

Input is read as bytes, a line at a time (over-long lines in pieces of at most
`MAX_LINE_BYTES`), decoded as UTF-8, tagged a chunk of sentences at a time and written as
it goes, so memory stays bounded on files of any size. Output to a file goes to a
temporary file beside it that replaces the file only when everything succeeded. A folder
stands for every non-hidden file under it; with an output folder each input gets its own
output file (`EXTENSIONS`), each written that way. Finding inputs and checking outputs:
swener.serve.paths; the line formats: swener.serve.formats; HTML pages: swener.serve.html.

Character offsets (text input) count characters (Unicode code points) of the input decoded
as UTF-8 with nothing dropped: a byte-order mark is a character (U+FEFF) like any other, and
line ends are as they are (CRLF is two characters). They index
`open(path, encoding="utf-8", newline="").read()`, one file at a time. Byte-order and
zero-width marks never belong to a token.
"""
from __future__ import annotations

import io
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Sequence

from swener.atomic import atomic_path
from swener.batching import ahead, batched
from swener.data.tokenizer import split_sentences  # noqa: F401 - its sentences, for callers
from swener.errors import SwenerError
from swener.serve import pipeline
from swener.serve.formats import EXTENSIONS, FORMATTERS, OUTPUT_FORMATS, Entity, Item, LineWriter
from swener.serve.paths import Input, input_size, plan_outputs
from swener.serve.reading import (  # noqa: F401 - the reading API, re-exported
    BINARY,
    DEFAULT_MAX_TOKENS,
    INPUT_FORMATS,
    MARKS,
    MAX_GAP_CHARS,
    MAX_LINE_BYTES,
    MAX_TOKEN_CHARS,
    READERS,
    _name,
    input_lines,
    open_input,
    read_conll_tokens,
    read_items,
    read_lines,
    read_text,
    read_tokens,
)

LABEL = "ner"

@dataclass
class Summary:
    """What one `tag_files` call did."""

    files: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)  # the files written with an output folder

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
            yield item, [Entity(kind, start, end, score if scores is not None else None)
                         for start, end, kind, score in bioes_spans(tags, scores)]

# --------------------------------------------------------------------------- writing

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

def _writer(output_format: str, title: str, model: str | None):
    """What writes one output: head(), body(item, entities) per sentence, tail()."""
    if output_format == "html":
        from swener.serve.html import HtmlPage

        return HtmlPage(title, model)
    if output_format not in FORMATTERS:
        raise ValueError(f"output format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    return LineWriter(output_format)

def _progress(inputs: Sequence[Input], enabled: bool | None):
    """A tqdm bar over the bytes of all inputs, with the file being read, when stderr is a terminal; else None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    sizes = [input_size(i.path) for i in inputs]
    total = None if None in sizes else sum(sizes)
    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, desc="tagging", leave=False)

def _file_counter(bar, count: int) -> Callable[[str], None]:
    """An on_file callback that shows `file k/count` on the bar."""
    seen = [0]

    def next_file(name: str) -> None:
        seen[0] += 1
        if bar is not None:
            bar.set_description_str(f"file {seen[0]}/{count}", refresh=False)
    return next_file

def _write(handle: IO[str], writer, tagged: Iterable[tuple[Item, list[Entity]]], summary: Summary,
           flush_every: int | None = None) -> None:
    """Write one output from tagged sentences, counting them; flush every so many sentences (a pipe's reader)."""
    handle.write(writer.head())
    pending = 0
    for item, entities in tagged:
        handle.write(writer.body(item, entities))
        summary.sentences += 1
        summary.tokens += len(item.tokens)
        summary.entities += len(entities)
        pending += 1
        if flush_every is not None and pending >= flush_every:
            handle.flush()
            pending = 0
    handle.write(writer.tail())

def _tag_in_workers(tagger, plan, input_format: str, output_format: str, batch_size: int, errors: str,
                    max_tokens: int, workers: int, summary: Summary, on_bytes, on_file) -> None:
    """`tag_files` through `swener.serve.pipeline`: the same outputs, written the same way."""

    def done(sentences: int, tokens: int, entities: int) -> None:
        summary.sentences += sentences
        summary.tokens += tokens
        summary.entities += entities

    def source(path: str) -> tuple[str, Callable[[], Iterator[tuple[int, str]]]]:
        return _name(path), lambda: input_lines(path, errors, on_bytes, on_file)

    def run(paths: list[str], handle: IO[str], flush: bool) -> None:
        pipeline.tag_streams(tagger, [source(p) for p in paths], handle, input_format, output_format, max_tokens,
                             batch_size, workers, done, flush)

    if plan.targets is None:
        with atomic_output(plan.out) as handle:
            run([i.path for i in plan.inputs], handle, plan.out is None)
        summary.files = len(plan.inputs)
        return
    for source_input, target in zip(plan.inputs, plan.targets):
        with atomic_output(target) as handle:
            run([source_input.path], handle, False)
        summary.files += 1
        summary.outputs.append(target)


def tag_files(tagger, paths: Sequence[str], out: Path | None = None, output_format: str = "conll",
              input_format: str = "text", batch_size: int = 64, errors: str = "strict",
              max_tokens: int = DEFAULT_MAX_TOKENS, progress: bool | None = None, out_dir: Path | None = None,
              model: str | None = None, workers: int = 1) -> Summary:
    """Tag files, folders (every non-hidden file under them) or stdin ("-") with a tagger.

    Without `out_dir` all inputs go, in order, to `out` (or stdout); with it each input gets its
    own file there (`plan_outputs`), each replaced only when its tagging succeeded, so a failure
    leaves the outputs of the inputs before it complete and nothing half-written. `model` names
    the model on HTML pages. With `workers` > 1 an exported tagger tags in that many worker
    processes (`swener.serve.pipeline`) where the formats allow; the output is the same.
    """
    if output_format not in EXTENSIONS:
        raise ValueError(f"output format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    if batch_size < 1:
        raise SwenerError(f"--batch-size must be at least 1, not {batch_size}")
    plan = plan_outputs(paths, out, out_dir, output_format)
    summary, started = Summary(), time.perf_counter()
    bar = _progress(plan.inputs, progress)
    on_bytes = bar.update if bar is not None else None
    next_file = _file_counter(bar, len(plan.inputs))
    try:
        with sigterm_unwinds():
            interactive = any(i.path == "-" for i in plan.inputs) and sys.stdin.isatty()  # answer each line
            if not interactive and pipeline.fits(tagger, input_format, output_format, workers):
                if max_tokens < 1:
                    raise SwenerError(f"--max-tokens must be at least 1, not {max_tokens}")
                _tag_in_workers(tagger, plan, input_format, output_format, batch_size, errors, max_tokens, workers,
                                summary, on_bytes, next_file)
            elif plan.targets is None:
                items = read_items([i.path for i in plan.inputs], input_format, errors, max_tokens, on_bytes,
                                   next_file)
                title = "<stdin>" if plan.inputs[0].path == "-" else plan.inputs[0].path  # html: 1 input
                with atomic_output(plan.out) as handle:
                    _write(handle, _writer(output_format, title, model),
                           tag_items(tagger, items, batch_size, chunk=1 if interactive else None), summary,
                           (1 if interactive else batch_size) if plan.out is None else None)
                summary.files = len(plan.inputs)
            else:
                for source, target in zip(plan.inputs, plan.targets):
                    items = read_items([source.path], input_format, errors, max_tokens, on_bytes, next_file)
                    with atomic_output(target) as handle:
                        _write(handle, _writer(output_format, source.path, model),
                               tag_items(tagger, items, batch_size), summary)
                    summary.files += 1
                    summary.outputs.append(target)
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
