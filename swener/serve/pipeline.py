"""Tagging in worker processes: the main process reads and writes, workers tokenise, tag and format.

`swener tag` with an exported (ONNX) tagger spends as much time in Python (tokenising, word
ids, subword vectors, Viterbi, formatting) as in the encoder, and Python runs one thread at a
time. Here the main process reads the input a line at a time (`read_lines`: the same checks,
errors and line numbers as the one-process path), cuts it into chunks of whole lines, and
hands each chunk, with the character offset of its first line, to a pool of worker processes
forked after the tagger was loaded (each opens its own ONNX Runtime session and keeps its own
cache of subword vectors for the whole run). Results are written in input order as they come
back; at most `2 * workers` chunks are in flight, so memory does not grow with the input.

Used for text and tokens input written as CoNLL, JSON lines or inline markup (each sentence's
output needs nothing from its neighbours); everything else takes the one-process path.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from typing import IO, Callable, Iterator, Sequence

from swener.errors import SwenerError

CHUNK_CHARS = 1 << 17  # characters of input per task: a few hundred sentences, large enough to sort by length
PIPELINE_FORMATS = {"input": ("text", "tokens"), "output": ("conll", "jsonl", "inline")}

_tagger = None  # the tagger of a worker process (inherited through fork)


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes by default: one per usable core, none (the one-process path) on a single core."""
    cores = usable_cores()
    return cores if cores > 1 else 1


def fits(tagger, input_format: str, output_format: str, workers: int) -> bool:
    """Whether this pipeline can tag: several workers, a tagger that can reopen itself after fork, line formats."""
    return (workers > 1 and hasattr(tagger, "reopen") and input_format in PIPELINE_FORMATS["input"]
            and output_format in PIPELINE_FORMATS["output"] and "fork" in multiprocessing.get_all_start_methods())


def chunks(lines: Iterator[tuple[int, str]], size: int = CHUNK_CHARS) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """Lists of whole (numbered) lines of about `size` characters, each with the character offset of its first."""
    offset, chars, batch = 0, 0, []
    for number, line in lines:
        batch.append((number, line))
        chars += len(line)
        if chars >= size:
            yield offset, batch
            offset, chars, batch = offset + chars, 0, []
    if batch:
        yield offset, batch


def _start_worker() -> None:
    """In a new worker: Ctrl-C is the main process's to handle; open the tagger's own ONNX Runtime session."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _tagger.reopen()


def tag_chunk(tagger, name: str, offset: int, lines: list[tuple[int, str]], input_format: str, output_format: str,
              max_tokens: int, batch_size: int) -> tuple[str, int, int, int]:
    """Tag one chunk of lines: its output text and its sentence, token and entity counts."""
    from swener.data.tags import bioes_spans
    from swener.serve.formats import FORMATTERS, Entity
    from swener.serve.reading import MAX_TOKEN_CHARS, read_text, read_tokens

    items = list(read_text(lines, name, max_tokens, offset) if input_format == "text"
                 else read_tokens(lines, name, max_tokens))
    results = tagger.tag_tokens([[t[:MAX_TOKEN_CHARS] for t in item.tokens] for item in items], batch_size)
    body = FORMATTERS[output_format]
    parts, tokens, entities = [], 0, 0
    for item, (tags, scores) in zip(items, results):
        found = [Entity(kind, start, end, score) for start, end, kind, score in bioes_spans(tags, scores)]
        parts.append(body(item, found))
        tokens += len(item.tokens)
        entities += len(found)
    sentences = len(items)
    return "".join(parts), sentences, tokens, entities


def _work(task: tuple) -> tuple[str, int, int, int] | str:
    """A worker's task; an error comes back as its message (exceptions of ours need not pickle)."""
    try:
        return tag_chunk(_tagger, *task)
    except SwenerError as err:
        return str(err)


def tag_streams(tagger, sources: Sequence[tuple[str, Callable[[], Iterator[tuple[int, str]]]]], handle: IO[str],
                input_format: str, output_format: str, max_tokens: int, batch_size: int, workers: int,
                on_done: Callable[[int, int, int], None], flush: bool = False) -> None:
    """Tag the lines of each (name, lines) source with `workers` processes, writing to `handle` in input order.

    `lines()` is called in the main process when that source's turn comes (it opens the file);
    `on_done(sentences, tokens, entities)` is called per chunk written; `flush` flushes after each.
    """
    global _tagger
    _tagger = tagger
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_start_worker)
    try:
        pending: deque = deque()

        def write_one() -> None:
            result = pending.popleft().get()
            if isinstance(result, str):
                raise SwenerError(result)
            text, sentences, tokens, entities = result
            handle.write(text)
            if flush:
                handle.flush()
            on_done(sentences, tokens, entities)

        for name, lines in sources:
            for offset, batch in chunks(lines()):
                pending.append(pool.apply_async(_work, ((name, offset, batch, input_format, output_format,
                                                         max_tokens, batch_size),)))
                while len(pending) > 2 * workers:
                    write_one()
        while pending:
            write_one()
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _tagger = None
