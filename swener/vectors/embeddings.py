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
lower-cased: case is a strong cue for names."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Callable

import torch
from flair.data import Sentence
from flair.embeddings import TokenEmbeddings
from flair.embeddings.base import register_embeddings

from swener.vectors.compact import (  # noqa: F401
    CompactVectors,
    WordIds,
    case_variants,
    embedding_key,
    find_row,
    ngram_buckets,
    ngram_type_counts,
    subword_rows,
)
from swener.vectors.files import load_vectors

log = logging.getLogger("swener.vectors.embeddings")


OOV_CACHE_SIZE = 200_000  # OOV words whose subword vectors are kept


_GENERATIONS = itertools.count(1)  # one id space per OOV table


# --------------------------------------------------------------------------- Flair class


@register_embeddings
class CompactFastTextEmbeddings(WordIds, TokenEmbeddings):
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

    def _empty_table(self, rows: int) -> torch.Tensor:
        return torch.zeros(rows, self._dim, device=self.word_vectors.device)

    def _grown(self, table: torch.Tensor) -> torch.Tensor:
        return torch.cat([table, torch.zeros_like(table)])

    def _reset_oov_table(self) -> None:
        """Forget the OOV vectors; ids handed out before (`ids_key` changes) are no longer valid."""
        super()._reset_oov_table()
        self._generation = next(_GENERATIONS)

    def __setstate__(self, state: dict) -> None:
        """A copy (deepcopy, pickle) gets an id space of its own: ids kept on sentences are looked up again."""
        super().__setstate__(state)
        self._generation = next(_GENERATIONS)

    @property
    def ids_key(self) -> int:
        """Identifies the id space: ids cached under another key must be looked up again."""
        return self._generation

    def trim_oov_table(self) -> None:
        """Start the OOV table afresh once it holds more than `OOV_CACHE_SIZE` words (bounded memory)."""
        self._trim_ids(OOV_CACHE_SIZE)

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
