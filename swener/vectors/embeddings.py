"""Swedish fastText embeddings: training (gensim), official .bin/.vec import, a compact Flair class.

One compact form serves every source (`CompactVectors`): float16 vectors for the most
frequent words plus a pruned float16 n-gram table that keeps only the hash buckets that
many vocabulary words share, so that a word outside the vocabulary still gets a subword
vector. `CompactFastTextEmbeddings` carries this form inside a saved Flair tagger: the
vocabulary and the kept bucket ids travel as parameters, the two float16 matrices as
buffers of the tagger's state dict (tens of MB instead of the full n-gram table).

Lookup of a token (the same in training text, the intrinsic check and the Flair class):
whitespace inside a token is removed ("5 000" -> "5000"); then the exact form, for an
all-capital word its title-case form ("STOCKHOLM" -> "Stockholm"), then the lower-case
form are looked up in the vocabulary; a word found under none of them is out of
vocabulary and gets the mean of the vectors of its character n-grams (of its exact,
cased form) that are in the table, or a zero vector if none is. Training text is not
lower-cased: case is a strong cue for names.
"""
from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import os
import random
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from flair.data import Sentence
from flair.embeddings import TokenEmbeddings
from flair.embeddings.base import register_embeddings

from swener.data import corpora
from swener.atomic import atomic_dir, write_json
from swener.config import REPO_ROOT
from swener.errors import DataError, SwenerError
from swener.vectors.compact import (CompactVectors, case_variants, embedding_key, find_row, ngram_buckets,  # noqa: F401
                            ngram_type_counts, subword_rows)

EMBEDDINGS_DIR = Path(os.environ.get("SWENER_EMBEDDINGS", REPO_ROOT / "embeddings"))
VECTORS_FILE = "vectors.npz"
MANIFEST_FILE = "manifest.json"
FULL_MODEL_FILE = "fasttext.model"
PROBES: tuple[str, ...] = ("Stockholm", "Sverige", "kung", "måndag", "Volvo", "Göteborg", "regeringen")
CHECK_SPLITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("webbnyheter2012", ("train", "dev", "test")),
    ("uner-talbanken", ("train", "dev", "test")),
    ("uner-pud", ("test",)),
)
FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin file
log = logging.getLogger("swener.vectors.embeddings")
OOV_CACHE_SIZE = 200_000  # OOV words whose subword vectors are kept
_GENERATIONS = itertools.count(1)  # one id space per OOV table


# --------------------------------------------------------------------------- Flair class


@register_embeddings
class CompactFastTextEmbeddings(TokenEmbeddings):
    """Static fastText vectors in the compact form: known words plus subword vectors for OOV words.

    Saved taggers hold the vocabulary and kept bucket ids (parameters) and two float16
    matrices (buffers): `CompactVectors.nbytes()` plus the vocabulary strings.
    """

    def __init__(
        self,
        vectors: str | Path | CompactVectors | None = None,
        oov: str = "subword",
        name: str | None = None,
        field: str | None = None,
        words: list[str] | None = None,
        ngram_ids: list[int] | None = None,
        dim: int | None = None,
        minn: int = 3,
        maxn: int = 6,
        bucket: int = 0,
        source: str = "",
    ) -> None:
        """Build from `vectors` (CompactVectors, or a path for `load_vectors`), or, when a tagger
        is loaded, from the saved parameters (`words`, `ngram_ids`, `dim`, ...) with the
        matrices filled in by the state dict.

        Args:
            vectors: the vectors, or a path: an embeddings folder, vectors.npz, fastText .bin or .vec.
            oov: "subword" (mean of kept n-gram vectors) or "zero" (OOV words get zeros).
            name: the name under which tokens store the embedding.
            field: embed the value of this token label instead of the token text.
        """
        if oov not in ("subword", "zero"):
            raise ValueError(f"oov must be 'subword' or 'zero', not {oov!r}")
        if vectors is not None and not isinstance(vectors, CompactVectors):
            vectors = load_vectors(vectors)
        if isinstance(vectors, CompactVectors):
            words, ngram_ids, dim = vectors.words, vectors.ngram_ids.tolist(), vectors.dim
            minn, maxn, bucket = vectors.minn, vectors.maxn, vectors.bucket
            source = source or str(vectors.meta.get("name", ""))
        if words is None or ngram_ids is None or dim is None:
            raise ValueError("give `vectors`, or `words`, `ngram_ids` and `dim`")
        self.name = name or f"swener-fasttext-{source or 'vectors'}-{oov}"
        self.static_embeddings = True
        super().__init__()
        self.oov, self.field, self.source = oov, field, source
        self.words, self.ngram_ids = list(words), [int(b) for b in ngram_ids]
        self.minn, self.maxn, self.bucket, self._dim = int(minn), int(maxn), int(bucket), int(dim)
        self.index = {word: i for i, word in enumerate(self.words)}
        self.ngram_row = {b: i for i, b in enumerate(self.ngram_ids)}
        if isinstance(vectors, CompactVectors):
            word_matrix = torch.from_numpy(vectors.vectors.copy())
            ngram_matrix = torch.from_numpy(vectors.ngram_vectors.copy())
        else:
            word_matrix = torch.zeros(len(self.words), self._dim, dtype=torch.float16)
            ngram_matrix = torch.zeros(len(self.ngram_ids), self._dim, dtype=torch.float16)
        self.register_buffer("word_vectors", word_matrix)
        self.register_buffer("ngram_vectors", ngram_matrix)
        self._oov_cache: dict[str, torch.Tensor] = {}
        self._reset_oov_table()
        self.eval()

    @property
    def embedding_length(self) -> int:
        return self._dim

    def is_known(self, token: str) -> bool:
        """Whether the token (or its title/lower-case form) is in the vocabulary."""
        return self._row(token) is not None

    def _row(self, token: str) -> int | None:
        return find_row(self.index, token)

    def _subword_vector(self, token: str) -> torch.Tensor | None:
        """The mean of the kept n-gram vectors of an OOV token (float32), or None for a zero vector."""
        rows = subword_rows(self.ngram_row, token, self.minn, self.maxn, self.bucket) if self.oov == "subword" else []
        if not rows:
            return None
        index = torch.tensor(rows, device=self.ngram_vectors.device)
        return self.ngram_vectors.index_select(0, index).float().mean(dim=0)

    def _oov_vector(self, token: str) -> torch.Tensor:
        cached = self._oov_cache.get(token)
        if cached is not None:
            return cached
        vector = self._subword_vector(token)
        if vector is None:
            vector = torch.zeros(self._dim, device=self.word_vectors.device)
        if len(self._oov_cache) > OOV_CACHE_SIZE:
            self._oov_cache.clear()
        self._oov_cache[token] = vector
        return vector

    # ----- the lean batch path: ids once per token text, one gather per batch (no Flair tokens) -----

    def _reset_oov_table(self) -> None:
        """Forget the OOV vectors; ids handed out before (`ids_key` changes) are no longer valid."""
        self._oov_rows: dict[str, int] = {}
        self._oov_matrix = torch.zeros(1024, self._dim, device=self.word_vectors.device)  # row 0: the zero vector
        self._oov_count = 1
        self._misses: dict[str, int] = {}  # texts not in the vocabulary as they are -> id
        self._generation = next(_GENERATIONS)

    def __setstate__(self, state: dict) -> None:
        """A copy (deepcopy, pickle) gets an id space of its own: ids kept on sentences are looked up again."""
        super().__setstate__(state)
        self._generation = next(_GENERATIONS)

    @property
    def ids_key(self) -> int:
        """Identifies the id space: ids cached under another key must be looked up again."""
        return self._generation

    def _oov_id(self, text: str) -> int:
        row = self._oov_rows.get(text)
        if row is None:
            vector = self._subword_vector(text)
            row = 0
            if vector is not None:
                if self._oov_count == self._oov_matrix.size(0):
                    self._oov_matrix = torch.cat([self._oov_matrix, torch.zeros_like(self._oov_matrix)])
                row, self._oov_count = self._oov_count, self._oov_count + 1
                self._oov_matrix[row] = vector
            self._oov_rows[text] = row
        return -1 - row

    def word_ids(self, texts: Sequence[str]) -> list[int]:
        """Ids of token texts for `lookup`: a vocabulary row (>= 0), or -1 - k for the k-th OOV vector (-1: zeros).

        An OOV word's subword vector is computed once and kept (`OOV_CACHE_SIZE` words at most:
        call `trim_oov_table` between batches).
        """
        index = self.index
        ids = []
        for text in texts:
            row = index.get(text)
            if row is None:
                row = self._misses.get(text)
                if row is None:
                    row = find_row(index, text)
                    if row is None:
                        row = self._oov_id(embedding_key(text))
                    self._misses[text] = row
            ids.append(row)
        return ids

    def trim_oov_table(self) -> None:
        """Start the OOV table afresh once it holds more than `OOV_CACHE_SIZE` words (bounded memory)."""
        if len(self._misses) > OOV_CACHE_SIZE:
            self._reset_oov_table()

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """The float32 vectors [..., D] of an id tensor from `word_ids` (-1 for padding gives zeros)."""
        vectors = self.word_vectors[ids.clamp(min=0)].float()
        unknown = ids < 0
        if bool(unknown.any()):
            oov = self._oov_matrix[(-1 - ids).clamp(min=0)]
            vectors = torch.where(unknown.unsqueeze(-1), oov, vectors)
        return vectors

    def _add_embeddings_internal(self, sentences: list[Sentence]) -> list[Sentence]:
        tokens = [token for sentence in sentences for token in sentence.tokens]
        texts = [t.text if self.field is None else t.get_label(self.field).value for t in tokens]
        rows = [self._row(text) for text in texts]
        known = [i for i, row in enumerate(rows) if row is not None]
        known_vectors = None
        if known:
            index = torch.tensor([rows[i] for i in known], device=self.word_vectors.device)
            known_vectors = self.word_vectors.index_select(0, index).float()
        position = {i: j for j, i in enumerate(known)}
        for i, token in enumerate(tokens):
            j = position.get(i)
            token.set_embedding(self.name, known_vectors[j] if j is not None else self._oov_vector(texts[i]))
        return sentences

    def train(self, mode: bool = True) -> "CompactFastTextEmbeddings":
        return super().train(False)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._oov_cache = {}
        self._reset_oov_table()
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> "CompactFastTextEmbeddings":
        result = super()._apply(fn, *args, **kwargs)
        self._oov_cache = {}  # cached vectors live on the old device
        self._reset_oov_table()
        return result

    def __str__(self) -> str:
        return self.name

    def extra_repr(self) -> str:
        return (f"words={len(self.words)}, ngrams={len(self.ngram_ids)}, dim={self._dim}, "
                f"n={self.minn}-{self.maxn}, oov={self.oov!r}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CompactFastTextEmbeddings":
        return cls(**params)

    def to_params(self) -> dict[str, Any]:
        return {"oov": self.oov, "name": self.name, "field": self.field, "words": self.words,
                "ngram_ids": self.ngram_ids, "dim": self._dim, "minn": self.minn, "maxn": self.maxn,
                "bucket": self.bucket, "source": self.source}


# --------------------------------------------------------------------------- loading files


def load_vectors(path: str | Path, max_words: int = 200_000, max_ngrams: int = 200_000) -> CompactVectors:
    """Vectors from a swener embeddings folder or vectors.npz, a Facebook fastText .bin, or a .vec text file.

    .bin and .vec files are compacted on the way (`max_words` words, `max_ngrams` n-grams);
    a .vec file has no n-gram table, so its OOV words get zero vectors.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder; give a swener embeddings folder, "
                        "a fastText .bin or a .vec file")
    if path.is_dir():
        if not (path / VECTORS_FILE).is_file():
            raise DataError(path, f"folder without {VECTORS_FILE}: not a swener embeddings folder; "
                            "run `swener embeddings train` or give a .bin/.vec file")
        return CompactVectors.load(path / VECTORS_FILE)
    if path.suffix == ".npz":
        return CompactVectors.load(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[:2] == b"\x1f\x8b" and not path.name.endswith(".vec.gz"):
        raise DataError(path, "gzip-compressed: decompress it first (gunzip); only .vec.gz is read directly")
    is_bin = len(head) >= 4 and struct.unpack("<i", head[:4])[0] == FASTTEXT_MAGIC
    if path.suffix == ".bin" and not is_bin:
        raise DataError(path, "not a Facebook fastText .bin file (wrong magic number); "
                        "give a model saved by fastText or gensim's save_facebook_model, or a .vec text file")
    meta = {"name": path.name, "source": str(path), "sha256": corpora.sha256_of(path)}
    if is_bin:
        return _load_facebook_bin(path, max_words, max_ngrams, meta)
    return _load_vec(path, max_words, meta)


def _load_facebook_bin(path: Path, max_words: int, max_ngrams: int, meta: dict) -> CompactVectors:
    from gensim.models.fasttext import load_facebook_vectors

    try:
        kv = load_facebook_vectors(str(path))
    except (ValueError, EOFError, struct.error, NotImplementedError, AssertionError, UnicodeDecodeError,
            MemoryError) as err:
        raise DataError(path, f"damaged or unsupported fastText .bin file ({type(err).__name__}: {err})") from None
    meta = {**meta, "format": "fasttext-bin", "full_vocabulary": len(kv.index_to_key), "full_bucket": kv.bucket}
    return CompactVectors.from_keyed_vectors(kv, max_words, max_ngrams, meta)


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _load_vec(path: Path, max_words: int, meta: dict) -> CompactVectors:
    """Read a word2vec/fastText text file (optional `count dim` header, then `word v1 ... vd`)."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    declared: int | None = None
    entries = 0
    seen: set[str] = set()
    with _open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataError(path, "not a UTF-8 text file: a .vec file is text (`word v1 ... vd` per "
                                "line); a binary model must be a fastText .bin", number) from None
            if not line.strip():
                continue
            fields = line.rstrip().split(" ")
            if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                declared, dim = int(fields[0]), int(fields[1])
                continue
            if dim is None:
                dim = len(fields) - 1
                if dim < 1:
                    raise DataError(path, "expected `word v1 ... vd` (or a `count dim` header); "
                                    "this is not a .vec file", number)
            parts = line.rstrip().rsplit(" ", dim)
            if len(parts) != dim + 1:
                raise DataError(path, f"expected a word and {dim} numbers, found {len(parts) - 1} fields", number)
            try:
                values = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataError(path, "expected numbers after the word: not a .vec file", number) from None
            entries += 1
            if parts[0] not in seen:
                seen.add(parts[0])
                words.append(parts[0])
                rows.append(values)
            if entries >= max_words:
                break
    if not words:
        raise DataError(path, "no vectors found: empty or not a .vec file")
    if declared is not None and entries < min(declared, max_words):
        raise DataError(path, f"header announces {declared} vectors but the file holds {entries}: truncated?")
    meta = {**meta, "format": "vec", "full_vocabulary": declared or len(words), "full_bucket": 0}
    return CompactVectors(words, np.vstack(rows), np.zeros(0, dtype=np.int64), np.zeros((0, dim)), 0, 0, 0, meta)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainSettings:
    """Settings of one gensim FastText run and of the compaction that follows it."""

    model: str = "cbow"  # or "skipgram"
    dim: int = 100
    epochs: int = 5
    min_count: int = 5
    minn: int = 3
    maxn: int = 6
    bucket: int = 2_000_000
    window: int = 5
    negative: int = 5
    max_words: int = 200_000
    max_ngrams: int = 200_000
    sample: float | None = None  # a fraction (0, 1] of the raw text lines, or a token budget (> 1)
    ner_train: tuple[str, ...] = ("webbnyheter2012",)
    seed: int = 1
    workers: int = 2

    def __post_init__(self) -> None:
        if self.model not in ("cbow", "skipgram"):
            raise SwenerError(f"model must be cbow or skipgram, not {self.model!r}")
        if self.sample is not None and self.sample <= 0:
            raise SwenerError(f"sample must be a fraction in (0, 1] or a token budget > 1, not {self.sample}")
        if not 0 < self.minn <= self.maxn:
            raise SwenerError(f"need 0 < minn <= maxn, got minn={self.minn}, maxn={self.maxn}")

    def name(self) -> str:
        """The output folder name: model, dim, epochs, a short hash of the other settings, the sample."""
        base = f"{self.model}-d{self.dim}-e{self.epochs}"
        defaults = TrainSettings(model=self.model, dim=self.dim, epochs=self.epochs, sample=self.sample,
                                 workers=self.workers)
        if _settings_key(self) != _settings_key(defaults):
            base += "-" + hashlib.sha256(_settings_key(self).encode()).hexdigest()[:8]
        if self.sample is not None:
            base += f"-sample{_format_sample(self.sample)}"
        return base


def _settings_key(settings: TrainSettings) -> str:
    values = asdict(settings)
    values.pop("workers")  # does not change what is trained (beyond thread scheduling)
    return json.dumps(values, sort_keys=True)


def _format_sample(sample: float) -> str:
    if sample <= 1:
        return f"{sample:g}"
    return f"{sample / 1e6:g}M" if sample >= 1e6 else f"{int(sample)}"


def parse_sample(text: str | None) -> float | None:
    """'0.1' -> a fraction of the raw text; '2M', '500k', '2000000' -> a token budget."""
    if text is None or text == "":
        return None
    factor = {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1.0)
    try:
        value = float(text[:-1] if factor != 1.0 else text) * factor
    except ValueError:
        raise SwenerError(f"--sample {text!r}: give a fraction like 0.1 or a token budget like 2M") from None
    if value <= 0:
        raise SwenerError(f"--sample {text!r}: must be positive")
    return value


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
        digest = corpora.sha256_of(path)
        expected = pinned.get(str(path.resolve()))
        if expected is not None and expected != digest:
            raise DataError(path, f"sha256 mismatch with SHA256SUMS (expected {expected}); restore the file")
        sources.append({"path": str(path), "sha256": digest, "pinned": expected is not None})
    return sources


def _tokenizer_hash() -> str:
    return corpora.sha256_of(Path(__file__).parents[1] / "data" / "tokenizer.py")[:12]


def _read_text_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
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


def write_training_text(settings: TrainSettings, sources: list[dict], target: Path, cache: Path,
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


class _EpochLog:
    """A gensim callback that reports each epoch's time and words per second."""

    def __init__(self, report: Callable[[str], None], words_per_epoch: int, epochs: int) -> None:
        from gensim.models.callbacks import CallbackAny2Vec

        class Callback(CallbackAny2Vec):
            def on_epoch_begin(inner, model) -> None:  # noqa: N805
                self.epoch_start = time.time()

            def on_epoch_end(inner, model) -> None:  # noqa: N805
                self.epoch += 1
                seconds = time.time() - self.epoch_start
                report(f"epoch {self.epoch}/{epochs}: {seconds:.0f} s, "
                       f"{words_per_epoch / max(seconds, 1e-9):,.0f} words/s")

        self.epoch, self.epoch_start = 0, time.time()
        self.callback = Callback()


def train(settings: TrainSettings, texts: Sequence[str | Path] | None = None, out: str | Path | None = None,
          report: Callable[[str], None] = print,
          check_splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS, keep_full: bool = False) -> Path:
    """Train fastText on the raw text plus NER training text; write vectors.npz and manifest.json.

    The folder (default embeddings/<settings.name()>) is written as a temporary sibling and
    renamed when complete; tokenised text is cached in a `.cache` folder next to it.
    `keep_full` also saves the whole gensim model (fasttext.model, about 4 * dim * bucket bytes).
    """
    from gensim.models.fasttext import FastText

    started = time.time()
    out = Path(out) if out else EMBEDDINGS_DIR / settings.name()
    sources = text_sources(texts)
    with atomic_dir(out) as tmp:
        text_file = tmp / "train.txt"
        text_info = write_training_text(settings, sources, text_file, out.parent / ".cache", report)
        report(f"training text: {text_info['lines']:,} lines, {text_info['tokens']:,} tokens "
               f"(sample fraction {text_info['sample_fraction']:.3g} of {text_info['raw_text_tokens']:,} raw tokens "
               f"+ NER train {', '.join(settings.ner_train) or 'none'})")
        _enable_gensim_progress()
        model = FastText(vector_size=settings.dim, window=settings.window, min_count=settings.min_count,
                         sg=int(settings.model == "skipgram"), negative=settings.negative,
                         min_n=settings.minn, max_n=settings.maxn, bucket=settings.bucket,
                         workers=settings.workers, seed=settings.seed, epochs=settings.epochs)
        clock = time.time()
        model.build_vocab(corpus_file=str(text_file))
        vocab_seconds = time.time() - clock
        report(f"vocabulary: {len(model.wv.index_to_key):,} words with count >= {settings.min_count} "
               f"({vocab_seconds:.0f} s)")
        epoch_log = _EpochLog(report, model.corpus_total_words, settings.epochs)
        clock, cpu_clock = time.time(), time.process_time()
        trained, raw = model.train(corpus_file=str(text_file), total_words=model.corpus_total_words,
                                   total_examples=model.corpus_count, epochs=settings.epochs,
                                   callbacks=[epoch_log.callback], report_delay=30.0)
        train_seconds, train_cpu_seconds = time.time() - clock, time.process_time() - cpu_clock
        text_file.unlink()
        report(f"trained in {train_seconds:.0f} s ({train_cpu_seconds:.0f} s of CPU): {raw / train_seconds:,.0f} "
               f"words/s ({trained / train_seconds:,.0f} effective words/s after down-sampling)")
        meta = {"name": out.name}
        compact = CompactVectors.from_keyed_vectors(model.wv, settings.max_words, settings.max_ngrams, meta)
        compact.save(tmp / VECTORS_FILE)
        if keep_full:
            model.save(str(tmp / FULL_MODEL_FILE))
        check = intrinsic_check(compact, full=model.wv, splits=check_splits, report=report)
        manifest = {
            "name": out.name,
            "kind": "trained",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "parameters": asdict(settings),
            "sources": sources,
            "training_text": text_info,
            "token_count": text_info["tokens"],
            "vocabulary_size": len(model.wv.index_to_key),
            "compact": _compact_summary(compact, tmp / VECTORS_FILE),
            "seconds": {"vocabulary": round(vocab_seconds, 2), "training": round(train_seconds, 2),
                        "training_cpu": round(train_cpu_seconds, 2), "total": round(time.time() - started, 1),
                        "total_cpu": round(time.process_time(), 1)},
            "words_per_second": round(raw / train_seconds),
            "effective_words_per_second": round(trained / train_seconds),
            "words_trained": {"raw": raw, "effective": trained},
            "intrinsic": check,
            "versions": _versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    report(f"wrote {out} in {time.time() - started:.0f} s")
    return out


def import_pretrained(path: str | Path, out: str | Path | None = None, max_words: int = 200_000,
                      max_ngrams: int = 200_000, report: Callable[[str], None] = print,
                      check_splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS) -> Path:
    """Compact an official fastText .bin/.vec file into an embeddings folder with a manifest."""
    started = time.time()
    path = Path(path)
    compact = load_vectors(path, max_words, max_ngrams)
    stem = path.name.split(".vec")[0].split(".bin")[0] or path.stem
    out = Path(out) if out else EMBEDDINGS_DIR / f"pretrained-{stem}-w{max_words // 1000}k-g{max_ngrams // 1000}k"
    compact.meta["name"] = out.name
    if not compact.ngram_ids.size:
        report("note: no n-gram table in this file (a .vec holds whole words only): OOV words get zero vectors")
    with atomic_dir(out) as tmp:
        compact.save(tmp / VECTORS_FILE)
        manifest = {
            "name": out.name,
            "kind": "pretrained",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sources": [{"path": str(path), "sha256": compact.meta.get("sha256"),
                         "format": compact.meta.get("format")}],
            "parameters": {"max_words": max_words, "max_ngrams": max_ngrams, "dim": compact.dim,
                           "minn": compact.minn, "maxn": compact.maxn, "bucket": compact.bucket},
            "vocabulary_size": compact.meta.get("full_vocabulary"),
            "compact": _compact_summary(compact, tmp / VECTORS_FILE),
            "seconds": {"total": round(time.time() - started, 1)},
            "intrinsic": intrinsic_check(compact, splits=check_splits, report=report),
            "versions": _versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    report(f"wrote {out}")
    return out


# --------------------------------------------------------------------------- intrinsic check


def intrinsic_check(compact: CompactVectors, full: Any = None, probes: Sequence[str] = PROBES,
                    splits: Sequence[tuple[str, Sequence[str]]] = CHECK_SPLITS,
                    report: Callable[[str], None] = print) -> dict:
    """OOV rates per corpus split, nearest neighbours of the probe words, subword fidelity.

    OOV rates are over running tokens: `oov` = not in the compact vocabulary (after the case
    fallbacks), `no_vector` = OOV and no kept n-gram either (a zero vector), `oov_full_vocab`
    = not in the full trained vocabulary. With `full` (gensim FastTextKeyedVectors), also the
    mean cosine between the compact OOV vector and gensim's own vector for the same word.
    """
    oov: dict[str, dict] = {}
    fidelity_words: set[str] = set()
    for name, names in splits:
        try:
            corpus = corpora.load(name)
        except SwenerError as err:
            report(f"skipping {name} in the OOV check: {err}")
            continue
        for split in names:
            tokens = [t for s in corpus.splits.get(split, []) for t in s.tokens]
            if not tokens:
                continue
            types = set(tokens)
            unknown = {t for t in types if compact.find(t) is None}
            no_vector = {t for t in unknown if not compact.subword_rows(t)}
            row = {
                "tokens": len(tokens),
                "oov": round(sum(t in unknown for t in tokens) / len(tokens), 4),
                "oov_types": round(len(unknown) / len(types), 4),
                "no_vector": round(sum(t in no_vector for t in tokens) / len(tokens), 4),
            }
            if full is not None:
                known_full = full.key_to_index
                row["oov_full_vocab"] = round(sum(
                    not any(f in known_full for f in case_variants(embedding_key(t))) for t in tokens
                ) / len(tokens), 4)
            oov[f"{name}/{split}"] = row
            if name == "webbnyheter2012" and split == "dev":
                fidelity_words = unknown
    neighbours = {}
    for probe in probes:
        known = compact.find(probe) is not None
        neighbours[probe] = {"known": known, "nearest": compact.nearest(probe, 8)}
    check: dict[str, Any] = {"oov": oov, "neighbours": neighbours}
    if full is not None and fidelity_words:
        check["subword_fidelity"] = subword_fidelity(compact, full, sorted(fidelity_words))
    report("OOV rate per split (tokens; oov = not in vocabulary, no_vector = not even an n-gram):")
    for key, row in oov.items():
        extra = f", full vocabulary {row['oov_full_vocab']:.2%}" if "oov_full_vocab" in row else ""
        report(f"  {key:24s} {row['tokens']:7d} tokens  oov {row['oov']:.2%}  types {row['oov_types']:.2%}  "
               f"no_vector {row['no_vector']:.2%}{extra}")
    report("nearest neighbours:")
    for probe, row in neighbours.items():
        words = ", ".join(f"{w} {s:.2f}" for w, s in row["nearest"])
        report(f"  {probe}{'' if row['known'] else ' (OOV)'}: {words}")
    if "subword_fidelity" in check:
        fid = check["subword_fidelity"]
        report(f"subword fidelity on webbnyheter2012/dev OOV words ({fid['words']}): mean centred cosine "
               f"{fid['mean_centred_cosine']:.3f} with the full n-gram table (10th percentile "
               f"{fid['p10_centred_cosine']:.3f})")
    return check


def subword_fidelity(compact: CompactVectors, full: Any, words: Sequence[str]) -> dict:
    """How well the pruned n-gram table reproduces the full model's vectors for OOV words.

    The cosine is taken after subtracting the mean vocabulary vector: fastText vectors share
    a large common direction, so plain cosines are all close to 1 and say little.
    """
    centre = compact.vectors.astype(np.float32).mean(axis=0)
    cosines = []
    for word in words:
        ours = compact.vector(word) - centre
        theirs = np.asarray(full.get_vector(embedding_key(word)), dtype=np.float32) - centre
        denominator = float(np.linalg.norm(ours) * np.linalg.norm(theirs))
        cosines.append(float(ours @ theirs) / denominator if denominator else 0.0)
    return {"words": len(words), "mean_centred_cosine": round(float(np.mean(cosines)), 4),
            "p10_centred_cosine": round(float(np.percentile(cosines, 10)), 4)}


# --------------------------------------------------------------------------- helpers


def _compact_summary(compact: CompactVectors, file: Path) -> dict:
    return {"file": file.name, "bytes": file.stat().st_size, "words": len(compact.words),
            "ngrams": int(compact.ngram_ids.size), "dim": compact.dim, "dtype": "float16",
            "minn": compact.minn, "maxn": compact.maxn, "bucket": compact.bucket}


def _versions() -> dict:
    import flair
    import gensim

    return {"gensim": gensim.__version__, "flair": flair.__version__, "numpy": np.__version__}


def _enable_gensim_progress() -> None:
    """Show gensim's INFO lines (vocabulary scan, per-epoch progress with words/s) on stderr."""
    logger = logging.getLogger("gensim")
    if not any(getattr(h, "_swener", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.addFilter(lambda record: "lifecycle event" not in record.getMessage())  # long dict dumps
        handler._swener = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
