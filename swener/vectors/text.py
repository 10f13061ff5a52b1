"""The training text of the fastText vectors: the shared raw text (checked), tokenised once and cached, sampled, with
NER train splits."""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from swener.data import corpora
from swener.errors import DataError, SwenerError
from swener.files import open_text, sha256_of
from swener.vectors.compact import embedding_key
from swener.vectors.settings import VectorSettings


def text_sources(paths: Iterable[str | Path] | None = None) -> list[dict]:
    """The raw text files (default: all text/*.txt.gz of the shared data), checked against SHA256SUMS."""
    pinned: dict[str, str] = {}
    root = corpora.data_root()
    if paths is None:
        if root is None or not (root / "text").is_dir():
            raise DataError(root or "../shared/data", "no raw text folder (text/*.txt.gz) found; "
                            "set SWENER_DATA to the data mirror or give --text files")
        paths = sorted((root / "text").glob("*.txt.gz"))
        if not paths:
            raise DataError(root / "text", "no *.txt.gz files")
    if root is not None and (root / "SHA256SUMS").is_file():
        for line in (root / "SHA256SUMS").read_text().splitlines():
            digest, _, name = line.partition("  ")
            pinned[str((root / name).resolve())] = digest
    sources = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(path, "no such text file")
        digest = sha256_of(path)
        expected = pinned.get(str(path.resolve()))
        if expected is not None and expected != digest:
            raise DataError(path, f"sha256 mismatch with SHA256SUMS (expected {expected}); restore the file")
        sources.append({"path": str(path), "sha256": digest, "pinned": expected is not None})
    return sources


def _tokenizer_hash() -> str:
    return sha256_of(Path(__file__).parents[1] / "data" / "tokenizer.py")[:12]


def _read_text_lines(path: Path) -> Iterator[str]:
    with open_text(path) as handle:
        yield from handle


def tokenised_source(source: dict, cache: Path, report: Callable[[str], None]) -> tuple[Path, dict]:
    """The source tokenised once (tokens joined by spaces, one paragraph a line), cached by sha256."""
    from swener.data.tokenizer import tokenize_words

    key = f"{source['sha256'][:16]}-{_tokenizer_hash()}"
    target, info_path = cache / f"{key}.txt", cache / f"{key}.json"
    if target.is_file() and info_path.is_file():
        return target, json.loads(info_path.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    started, lines, tokens = time.time(), 0, 0
    tmp = cache / f".{key}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for paragraph in _read_text_lines(Path(source["path"])):
            words = [embedding_key(w) for w in tokenize_words(paragraph)]
            if words:
                out.write(" ".join(words) + "\n")
                lines += 1
                tokens += len(words)
    os.replace(tmp, target)
    info = {"lines": lines, "tokens": tokens}
    info_path.write_text(json.dumps(info))
    report(f"tokenised {Path(source['path']).name}: {lines:,} lines, {tokens:,} tokens "
           f"in {time.time() - started:.0f} s")
    return target, info


def ner_train_text(names: Sequence[str]) -> tuple[list[str], list[dict]]:
    """The training-split sentences (never dev or test) of NER corpora, as token lines."""
    lines: list[str] = []
    records = []
    for name in names:
        corpus = corpora.load(name)
        if "train" not in corpus.splits:
            raise SwenerError(f"{name}: has no train split to add to the embedding text")
        own = [" ".join(embedding_key(t) for t in s.tokens) for s in corpus.splits["train"] if s.tokens]
        digest = hashlib.sha256("\n".join(own).encode("utf-8")).hexdigest()
        source = corpora.REGISTRY.get(name)
        train_file = source.files.get("train") if source else None
        records.append({"corpus": name, "split": "train", "sentences": len(own),
                        "tokens": sum(len(s.tokens) for s in corpus.splits["train"]),
                        "text_sha256": digest, "train_file_sha256": train_file.sha256 if train_file else None})
        lines.extend(own)
    return lines, records


def _interleave(streams: list[tuple[Iterator[str], int]]) -> Iterator[str]:
    """Merge line streams in proportion to their lengths, so every domain spreads over each epoch."""
    done = [0] * len(streams)
    active = [i for i, (_, n) in enumerate(streams) if n > 0]
    while active:
        i = min(active, key=lambda j: (done[j] / streams[j][1], j))
        line = next(streams[i][0], None)
        if line is None:
            active.remove(i)
            continue
        done[i] += 1
        yield line


def estimate_tokens(path: Path, probe_lines: int = 2000) -> tuple[int, int]:
    """(lines, estimated tokens) of a raw text file: whitespace words scaled by the tokeniser's
    tokens-per-word ratio on the first lines; much cheaper than tokenising the whole file."""
    from swener.data.tokenizer import tokenize_words

    lines = words = probe_words = probe_tokens = 0
    for paragraph in _read_text_lines(path):
        count = len(paragraph.split())
        if count and lines < probe_lines:
            probe_words += count
            probe_tokens += len(tokenize_words(paragraph))
        lines += 1
        words += count
    return lines, round(words * probe_tokens / max(probe_words, 1))


def _sampled_source(source: dict, fraction: float, seed: int) -> Iterator[str]:
    """Tokenised lines of a random `fraction` of a raw file's lines (tokenising only those)."""
    from swener.data.tokenizer import tokenize_words

    rng = random.Random(f"{source['sha256']}-{seed}")
    for paragraph in _read_text_lines(Path(source["path"])):
        if rng.random() < fraction:
            words = [embedding_key(w) for w in tokenize_words(paragraph)]
            if words:
                yield " ".join(words) + "\n"


def write_training_text(settings: VectorSettings, sources: list[dict], target: Path, cache: Path,
                        report: Callable[[str], None] = print) -> dict:
    """Write the (sampled) raw text plus the NER training text to one token-per-space file.

    The whole text is tokenised once and cached; a sample picks raw lines first and tokenises
    only those, so a quick run does not pay for tokenising all 26 M tokens.
    """
    estimated = settings.sample is not None
    if estimated:
        sizes = [estimate_tokens(Path(source["path"])) for source in sources]
        total_raw = sum(tokens for _, tokens in sizes)
        fraction = settings.sample if settings.sample <= 1 else min(1.0, settings.sample / max(total_raw, 1))
        report(f"sampling {fraction:.3g} of the raw text lines (about {total_raw:,} tokens in all, estimated)")
        streams = [(_sampled_source(source, fraction, settings.seed), max(1, round(lines * fraction)))
                   for source, (lines, _) in zip(sources, sizes)]
        for source, (lines, tokens) in zip(sources, sizes):
            source.update(lines=lines, tokens_estimated=tokens)
    else:
        parts = [(source, *tokenised_source(source, cache, report)) for source in sources]
        total_raw, fraction = sum(info["tokens"] for _, _, info in parts), 1.0
        streams = [(open(path, encoding="utf-8"), info["lines"]) for _, path, info in parts]
        for source, _, info in parts:
            source.update(lines=info["lines"], tokens=info["tokens"])
    ner_lines, ner_records = ner_train_text(settings.ner_train)
    streams.append((iter(line + "\n" for line in ner_lines), len(ner_lines)))
    lines = tokens = 0
    try:
        with open(target, "w", encoding="utf-8") as out:
            for line in _interleave(streams):
                out.write(line)
                lines += 1
                tokens += line.count(" ") + 1
    finally:
        for stream, _ in streams:
            if hasattr(stream, "close"):
                stream.close()
    return {"lines": lines, "tokens": tokens, "raw_text_tokens": total_raw, "raw_text_tokens_estimated": estimated,
            "sample_fraction": fraction, "ner_train": ner_records}
