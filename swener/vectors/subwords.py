"""The teacher's subword table as a student input, without torch (numpy, tokenizers, safetensors).

A word's subword vector is the mean (or, with pooling "first", the first) of the input
embeddings of the pieces the teacher's tokenizer cuts it into, tokenised alone as the form
the fastText lookup uses (`embedding_key`). "first" skips a bare word-start piece ("▁")
that more pieces follow. The piece table may be reduced to d dimensions by PCA (centred,
components from the covariance; each component's sign fixed so that its largest entry is
positive): a linear map, so the mean of reduced pieces is the reduced mean.

`SubwordTable` is what a student keeps: the (reduced) piece table, the tokenizer (its
tokenizer.json text, so an unseen word is cut without the backbone folder) and, for the words
the model was built for (its train/dev/test words and the fastText vocabulary), their pieces
once cut, as CSR arrays (`offsets`, `piece_ids`): a word's vector is computed from its few
rows, so the table of known words costs 4 bytes a piece instead of d floats a word.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from swener.errors import DataError
from swener.vectors.compact import embedding_key

POOLINGS = ("mean", "first")
WORD_START = "\u2581"  # SentencePiece's word-start piece
TOKENIZER_FILE, WEIGHTS_FILE = "tokenizer.json", "model.safetensors"
EMBEDDING_KEY_SUFFIX = "word_embeddings.weight"  # BERT / XLM-R input embedding table in a safetensors file


def read_backbone(folder: str | Path) -> tuple[str, np.ndarray]:
    """The tokenizer.json text and the input embedding table [pieces, H] (float32) of a backbone folder."""
    folder = Path(folder)
    tokenizer, weights = folder / TOKENIZER_FILE, folder / WEIGHTS_FILE
    for path in (tokenizer, weights):
        if not path.is_file():
            raise DataError(path, "missing: --subwords needs a backbone folder with tokenizer.json and "
                            "model.safetensors (make backbone writes embeddings/e5-small-sv)")
    from safetensors import safe_open

    with safe_open(str(weights), "np") as handle:
        keys = [k for k in handle.keys() if k.endswith(EMBEDDING_KEY_SUFFIX)]
        if len(keys) != 1:
            raise DataError(weights, f"expected one tensor named *{EMBEDDING_KEY_SUFFIX}, found {len(keys)}; "
                            "not a BERT/XLM-R backbone")
        matrix = np.asarray(handle.get_tensor(keys[0]), dtype=np.float32)
    return tokenizer.read_text(encoding="utf-8"), matrix


def pca(matrix: np.ndarray, dim: int) -> tuple[np.ndarray, dict]:
    """The rows of `matrix` projected on its first `dim` principal components, and the map's facts."""
    if not 1 <= dim <= matrix.shape[1]:
        raise ValueError(f"a subword dimension must lie in [1, {matrix.shape[1]}], got {dim}")
    data = matrix.astype(np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    values, vectors = np.linalg.eigh(centred.T @ centred)  # ascending
    order = np.argsort(values)[::-1][:dim]
    components = vectors[:, order].T  # [dim, H]
    signs = np.sign(components[np.arange(dim), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    explained = float(values[order].sum() / max(values.sum(), 1e-30))
    return (centred @ components.T).astype(np.float32), {"pca_dim": dim, "explained_variance": round(explained, 4)}


def _word_start_ids(tokenizer: Any) -> set[int]:
    piece = tokenizer.token_to_id(WORD_START)
    return set() if piece is None else {piece}


def cut(tokenizer: Any, texts: Sequence[str], pooling: str, word_start: set[int]) -> list[list[int]]:
    """The piece ids of each text (`embedding_key` form, tokenised alone); one piece each under "first"."""
    encodings = tokenizer.encode_batch([embedding_key(t) for t in texts], add_special_tokens=False)
    out = []
    for encoding in encodings:
        ids = list(encoding.ids)
        if pooling == "first" and ids:
            ids = [ids[1]] if len(ids) > 1 and ids[0] in word_start else ids[:1]
        out.append(ids)
    return out


@dataclass
class SubwordTable:
    """A (reduced) piece table, its tokenizer, and the known words' pieces (CSR)."""

    tokenizer_json: str
    pieces: np.ndarray  # [P, d]
    words: list[str]
    offsets: np.ndarray  # [V + 1] int64: word i's pieces are piece_ids[offsets[i]:offsets[i + 1]]
    piece_ids: np.ndarray  # int32
    pooling: str = "mean"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.piece_ids = np.asarray(self.piece_ids, dtype=np.int32)
        if len(self.offsets) != len(self.words) + 1 or int(self.offsets[-1]) != len(self.piece_ids):
            raise ValueError(f"{len(self.words)} words need {len(self.words) + 1} offsets ending at "
                             f"{len(self.piece_ids)}, got {len(self.offsets)}")
        self.index = {word: i for i, word in enumerate(self.words)}
        self._tokenizer = None
        self._cut: dict[str, list[int]] = {}

    @property
    def dim(self) -> int:
        """The vector length."""
        return int(self.pieces.shape[1])

    @property
    def tokenizer(self) -> Any:
        """The teacher's tokenizer (`tokenizers.Tokenizer`), built from the kept tokenizer.json on first use."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.tokenizer_json)
            self._word_start = _word_start_ids(self._tokenizer)
        return self._tokenizer

    def prepare(self, texts: Sequence[str]) -> None:
        """Cut the unseen words among `texts` in one tokenizer call (`pieces_of` then finds them kept)."""
        keys = {embedding_key(t) for t in texts}
        new = [k for k in keys if k not in self.index and k not in self._cut]
        if new:
            if len(self._cut) + len(new) > 200_000:
                self._cut.clear()
            self.tokenizer  # noqa: B018  (built on first use, with its word-start piece)
            self._cut.update(zip(new, cut(self.tokenizer, new, self.pooling, self._word_start)))

    def pieces_of(self, text: str) -> list[int]:
        """The piece ids of a token: the kept ones of a known word, else cut by the tokenizer (and kept)."""
        key = embedding_key(text)
        row = self.index.get(key)
        if row is not None:
            return self.piece_ids[self.offsets[row]:self.offsets[row + 1]].tolist()
        ids = self._cut.get(key)
        if ids is None:
            ids = cut(self.tokenizer, [key], self.pooling, self._word_start)[0]
            if len(self._cut) > 200_000:
                self._cut.clear()
            self._cut[key] = ids
        return ids

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, d]: each token's subword vector (zeros for a token without pieces)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        self.prepare(texts)
        for i, text in enumerate(texts):
            ids = self.pieces_of(text)
            if ids:
                out[i] = self.pieces[ids].astype(np.float32).mean(axis=0)
        return out

    def nbytes(self) -> int:
        """Bytes of the piece table, the CSR arrays and the tokenizer text (the word strings not counted)."""
        return int(self.pieces.nbytes + self.offsets.nbytes + self.piece_ids.nbytes
                   + len(self.tokenizer_json.encode("utf-8")))

    def save(self, path: Path) -> None:
        """Write an uncompressed .npz without pickles (an exported tagger's subwords.npz)."""
        text = {"words": "\n".join(self.words), "tokenizer": self.tokenizer_json,
                "config": json.dumps({"pooling": self.pooling, "meta": self.meta})}
        with open(path, "wb") as handle:
            np.savez(handle, pieces=self.pieces, offsets=self.offsets, piece_ids=self.piece_ids,
                     **{k: np.frombuffer(v.encode("utf-8"), dtype=np.uint8) for k, v in text.items()})

    @classmethod
    def load(cls, path: str | Path) -> "SubwordTable":
        """Read a file written by `save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                words = data["words"].tobytes().decode("utf-8")
                config = json.loads(data["config"].tobytes().decode("utf-8"))
                return cls(data["tokenizer"].tobytes().decode("utf-8"), data["pieces"],
                           words.split("\n") if words else [], data["offsets"], data["piece_ids"],
                           config["pooling"], config.get("meta", {}))
        except (OSError, ValueError, KeyError) as err:
            raise DataError(path, f"not a swener subword table ({err}); export the model again") from None


def build_table(folder: str | Path, words: Iterable[str], dim: int | None = None, pooling: str = "mean",
                dtype: type = np.float16) -> SubwordTable:
    """The subword table of a backbone folder for `words` (deduplicated in their `embedding_key` form),
    its pieces reduced to `dim` by PCA (None: kept whole) and stored as `dtype`."""
    from tokenizers import Tokenizer

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    tokenizer_json, matrix = read_backbone(folder)
    tokenizer = Tokenizer.from_str(tokenizer_json)
    if tokenizer.get_vocab_size() > matrix.shape[0]:
        raise DataError(Path(folder) / TOKENIZER_FILE, f"{tokenizer.get_vocab_size()} pieces but the embedding "
                        f"table has {matrix.shape[0]} rows: tokenizer and model do not belong together")
    meta: dict = {"source": str(folder), "pieces": int(matrix.shape[0]), "backbone_dim": int(matrix.shape[1])}
    if dim is not None and dim != matrix.shape[1]:
        matrix, facts = pca(matrix, dim)
        meta.update(facts)
    unique = list(dict.fromkeys(embedding_key(w) for w in words))
    cuts = cut(tokenizer, unique, pooling, _word_start_ids(tokenizer)) if unique else []
    offsets = np.zeros(len(unique) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in cuts]) if cuts else []
    piece_ids = np.fromiter((p for c in cuts for p in c), dtype=np.int32, count=int(offsets[-1]))
    return SubwordTable(tokenizer_json, matrix.astype(dtype), unique, offsets, piece_ids, pooling, meta)
