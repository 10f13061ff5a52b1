"""The compact fastText form without torch or Flair: word lookup, subword hashing, `CompactVectors`.

Everything here needs numpy only, so that an exported tagger (`swener.serve.onnx`) can
look words up the same way a Flair student does without importing torch. The rules of a
lookup are described in `swener.vectors.embeddings`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from swener.errors import DataError


def embedding_key(token: str) -> str:
    """The form of a token used for training and lookup: whitespace inside it removed."""
    return "".join(token.split()) if " " in token or "\t" in token else token


def case_variants(word: str) -> list[str]:
    """The forms looked up in the vocabulary, in order: exact, title case (if all caps), lower case."""
    variants = [word]
    if word.isupper() and len(word) > 1:
        variants.append(word[0] + word[1:].lower())
    lower = word.lower()
    if lower not in variants:
        variants.append(lower)
    return variants


def ft_hash(data: bytes) -> int:
    """fastText's 32-bit FNV-1a hash of a byte string (each byte sign-extended, as Facebook's C++ does)."""
    h = 2166136261
    for byte in data:
        h = ((h ^ (byte if byte < 128 else byte | 0xFFFFFF00)) * 16777619) & 0xFFFFFFFF
    return h


def char_ngrams(word: str, minn: int, maxn: int) -> list[str]:
    """The character n-grams of `<word>` in fastText's order (single brackets `<` and `>` excluded)."""
    text = f"<{word}>"
    grams = []
    for i in range(len(text)):
        for n in range(1, maxn + 1):
            if i + n > len(text):
                break
            if n >= minn and not (n == 1 and (i == 0 or i + n == len(text))):
                grams.append(text[i:i + n])
    return grams


def ngram_buckets(word: str, minn: int, maxn: int, bucket: int) -> list[int]:
    """The fastText hash buckets of the character n-grams of `<word>` (= gensim's `ft_ngram_hashes`).

    FNV-1a runs byte by byte, so the hash of an n-gram continues from that of its first n - 1
    characters: each start position hashes its longest n-gram once.
    """
    if bucket <= 0 or maxn < minn or maxn <= 0:
        return []
    chars = [[b if b < 128 else b | 0xFFFFFF00 for b in c.encode("utf-8")] for c in f"<{word}>"]
    size, out = len(chars), []
    for i in range(size):
        h = 2166136261
        for n in range(1, min(maxn, size - i) + 1):
            for byte in chars[i + n - 1]:
                h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
            if n >= minn and not (n == 1 and (i == 0 or i + n == size)):
                out.append(h % bucket)
    return out


def find_row(index: dict[str, int], token: str) -> int | None:
    """The vocabulary row of a token under its exact, title-case or lower-case form; None if OOV."""
    for form in case_variants(embedding_key(token)):
        row = index.get(form)
        if row is not None:
            return row
    return None


def subword_rows(ngram_row: dict[int, int], token: str, minn: int, maxn: int, bucket: int) -> list[int]:
    """Rows of a pruned n-gram table for the n-grams of a token's exact form that the table kept."""
    return [ngram_row[b] for b in ngram_buckets(embedding_key(token), minn, maxn, bucket) if b in ngram_row]


# --------------------------------------------------------------------------- compact form


@dataclass
class CompactVectors:
    """Word vectors for a vocabulary plus a pruned n-gram table, both float16.

    `ngram_ids` are sorted fastText bucket ids (hash mod `bucket`); row i of
    `ngram_vectors` belongs to bucket `ngram_ids[i]`.
    """

    words: list[str]
    vectors: np.ndarray
    ngram_ids: np.ndarray
    ngram_vectors: np.ndarray
    minn: int
    maxn: int
    bucket: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float16)
        self.ngram_vectors = np.asarray(self.ngram_vectors, dtype=np.float16).reshape(-1, self.dim)
        self.ngram_ids = np.asarray(self.ngram_ids, dtype=np.int64)
        if self.vectors.shape[0] != len(self.words):
            raise ValueError(f"{len(self.words)} words but {self.vectors.shape[0]} vector rows")
        if self.ngram_vectors.shape[0] != self.ngram_ids.shape[0]:
            raise ValueError(f"{self.ngram_ids.shape[0]} n-gram ids but {self.ngram_vectors.shape[0]} rows")
        self._index: dict[str, int] | None = None
        self._ngram_row: dict[int, int] | None = None

    @property
    def dim(self) -> int:
        """The vector length."""
        return int(self.vectors.shape[1])

    @property
    def index(self) -> dict[str, int]:
        """Word -> row of `vectors`."""
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.words)}
        return self._index

    @property
    def ngram_row(self) -> dict[int, int]:
        """Bucket id -> row of `ngram_vectors`."""
        if self._ngram_row is None:
            self._ngram_row = {int(b): i for i, b in enumerate(self.ngram_ids)}
        return self._ngram_row

    def find(self, token: str) -> int | None:
        """The vocabulary row of a token (exact, title-case, lower-case form), or None if OOV."""
        return find_row(self.index, token)

    def subword_rows(self, token: str) -> list[int]:
        """Rows of `ngram_vectors` for the kept n-grams of a token."""
        return subword_rows(self.ngram_row, token, self.minn, self.maxn, self.bucket)

    def vector(self, token: str, subwords: bool = True) -> np.ndarray:
        """The float32 vector of a token; zeros if it is OOV and has no kept n-gram (or not `subwords`)."""
        row = self.find(token)
        if row is not None:
            return self.vectors[row].astype(np.float32)
        rows = self.subword_rows(token) if subwords else []
        if not rows:
            return np.zeros(self.dim, dtype=np.float32)
        return self.ngram_vectors[rows].astype(np.float32).mean(axis=0)

    def nearest(self, token: str, k: int = 8) -> list[tuple[str, float]]:
        """The k vocabulary words closest to a token by cosine (the token itself excluded)."""
        query = self.vector(token)
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return []
        matrix = self._unit_matrix()
        scores = matrix @ (query / norm)
        own = self.find(token)
        if own is not None:
            scores[own] = -np.inf
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.words[i], round(float(scores[i]), 3)) for i in top if np.isfinite(scores[i])]

    def _unit_matrix(self) -> np.ndarray:
        if getattr(self, "_unit", None) is None:
            matrix = self.vectors.astype(np.float32)
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)
            self._unit = matrix
        return self._unit

    def nbytes(self) -> int:
        """Bytes of the two float16 matrices and the bucket ids."""
        return int(self.vectors.nbytes + self.ngram_vectors.nbytes + self.ngram_ids.nbytes)

    def save(self, path: Path) -> None:
        """Write an uncompressed .npz (no pickles: words joined by newlines as UTF-8 bytes)."""
        words = "\n".join(self.words).encode("utf-8")
        config = json.dumps({"minn": self.minn, "maxn": self.maxn, "bucket": self.bucket, "meta": self.meta})
        with open(path, "wb") as handle:
            np.savez(handle, words=np.frombuffer(words, dtype=np.uint8), vectors=self.vectors,
                     ngram_ids=self.ngram_ids, ngram_vectors=self.ngram_vectors,
                     config=np.frombuffer(config.encode("utf-8"), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | Path) -> "CompactVectors":
        """Read a file written by `save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                words = data["words"].tobytes().decode("utf-8")
                config = json.loads(data["config"].tobytes().decode("utf-8"))
                return cls(words.split("\n") if words else [], data["vectors"], data["ngram_ids"],
                           data["ngram_vectors"], config["minn"], config["maxn"], config["bucket"],
                           config.get("meta", {}))
        except (OSError, ValueError, KeyError) as err:
            raise DataError(path, f"not a swener compact vectors file ({err}); "
                            "rerun `swener embeddings train` to rebuild it") from None

    @classmethod
    def from_keyed_vectors(cls, kv: Any, max_words: int, max_ngrams: int, meta: dict | None = None
                           ) -> "CompactVectors":
        """Compact a gensim (FastText)KeyedVectors: its first `max_words` words, `max_ngrams` n-grams.

        Words keep their full fastText vectors (word + n-grams). N-gram buckets are ranked by
        the number of vocabulary words whose n-grams fall in them, counting every word of
        the full vocabulary (not just the kept ones): productive stems and endings come
        first, buckets no word uses are never kept.
        """
        n_words = min(max_words, len(kv.index_to_key))
        words = list(kv.index_to_key[:n_words])
        vectors = kv.vectors[:n_words]
        minn, maxn = int(getattr(kv, "min_n", 0)), int(getattr(kv, "max_n", 0))
        bucket = int(getattr(kv, "bucket", 0) or 0)
        ngrams = getattr(kv, "vectors_ngrams", None)
        if bucket == 0 or ngrams is None or max_ngrams <= 0 or len(ngrams) == 0:
            ids = np.zeros(0, dtype=np.int64)
            return cls(words, vectors, ids, np.zeros((0, kv.vector_size)), minn, maxn, bucket, meta or {})
        counts = ngram_type_counts(kv.index_to_key, minn, maxn, bucket)
        used = np.flatnonzero(counts)
        if len(used) > max_ngrams:
            order = np.lexsort((used, -counts[used]))  # most words first, ties by bucket id
            used = np.sort(used[order[:max_ngrams]])
        return cls(words, vectors, used, ngrams[used], minn, maxn, bucket, meta or {})


def ngram_type_counts(words: Sequence[str], minn: int, maxn: int, bucket: int, chunk: int = 200_000
                      ) -> np.ndarray:
    """For every bucket, the number of words whose n-grams hash into it."""
    from gensim.models.fasttext import ft_ngram_hashes

    counts = np.zeros(bucket, dtype=np.int64)
    for start in range(0, len(words), chunk):
        ids: list[int] = []
        for word in words[start:start + chunk]:
            ids.extend(set(ft_ngram_hashes(word, minn, maxn, bucket)))
        counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=bucket)
    return counts


class WordIds:
    """Word ids for a lookup table: a vocabulary row (>= 0), or -1 - k for the k-th OOV vector (-1: zeros).

    The one id logic of `WordTable` (numpy, for ONNX Runtime) and of swener's Flair embeddings
    class (torch): a text is looked up once (the rules of `find_row`), an OOV word's subword
    vector is computed once and kept in a table of its own. A subclass gives `index` (word ->
    row), `_subword_vector(text)` (a vector, or None for zeros), `_empty_table(rows)` and
    `_grown(table)` in its array type.
    """

    index: dict[str, int]

    def _subword_vector(self, text: str) -> Any:  # pragma: no cover - given by the subclass
        raise NotImplementedError

    def _empty_table(self, rows: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _grown(self, table: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _reset_oov_table(self) -> None:
        """Forget the OOV vectors (ids handed out before are no longer valid)."""
        self._oov_rows: dict[str, int] = {}
        self._oov_matrix = self._empty_table(1024)  # row 0: the zero vector
        self._oov_count = 1
        self._misses: dict[str, int] = {}  # texts not in the vocabulary as they are -> id

    def _oov_id(self, text: str) -> int:
        row = self._oov_rows.get(text)
        if row is None:
            vector = self._subword_vector(text)
            row = 0
            if vector is not None:
                if self._oov_count == len(self._oov_matrix):
                    self._oov_matrix = self._grown(self._oov_matrix)
                row, self._oov_count = self._oov_count, self._oov_count + 1
                self._oov_matrix[row] = vector
            self._oov_rows[text] = row
        return -1 - row

    def word_ids(self, texts: Sequence[str]) -> list[int]:
        """The ids of token texts (the lookup rules of `find_row`, then subword vectors)."""
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

    def _trim_ids(self, limit: int) -> None:
        """Start the OOV table afresh once it holds more than `limit` words (between batches)."""
        if len(self._misses) > limit:
            self._reset_oov_table()


class WordTable(WordIds):
    """Word ids and vectors in numpy, as `CompactFastTextEmbeddings.word_ids` / `lookup` give them in torch.

    Ids: a vocabulary row (>= 0), or -1 - k for the k-th OOV vector (-1: the zero vector,
    also used for padding). An OOV word's subword vector is computed once and kept.
    """

    def __init__(self, compact: CompactVectors, oov: str = "subword", cache_size: int = 200_000) -> None:
        if oov not in ("subword", "zero"):
            raise ValueError(f"oov must be 'subword' or 'zero', not {oov!r}")
        self.compact, self.oov, self.cache_size = compact, oov, cache_size
        self.index = compact.index
        self._reset_oov_table()

    def _subword_vector(self, text: str) -> np.ndarray | None:
        rows = self.compact.subword_rows(text) if self.oov == "subword" else []
        return self.compact.ngram_vectors[rows].astype(np.float32).mean(axis=0) if rows else None

    def _empty_table(self, rows: int) -> np.ndarray:
        return np.zeros((rows, self.compact.dim), dtype=np.float32)

    def _grown(self, table: np.ndarray) -> np.ndarray:
        return np.concatenate([table, np.zeros_like(table)])

    def trim(self) -> None:
        """Start the OOV table afresh once it holds more than `cache_size` words (between batches)."""
        self._trim_ids(self.cache_size)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors [..., D] of an id array."""
        ids = np.asarray(ids, dtype=np.int64)
        out = self.compact.vectors[np.maximum(ids, 0)].astype(np.float32)
        unknown = ids < 0
        if unknown.any():
            out[unknown] = self._oov_matrix[-1 - ids[unknown]]
        return out
