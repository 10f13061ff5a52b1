"""The on-disk cache of teacher distributions: one file per (teacher, corpus, split).

A file is an uncompressed `.npz` with
- `header`: UTF-8 JSON (format version, tag list, tag scheme, teacher sha256, token sha256,
  corpus, split, sentence and token counts, top-k or dense),
- `offsets`: int64 [sentences + 1], token offsets of each sentence,
- dense form: `logp` float16 [tokens, tags], log-probabilities at temperature 1,
- top-k form: `topk_idx` int16 and `topk_logp` float16 [tokens, k]; the rest of the mass is
  spread evenly over the other tags when read back.
The tag list is canonical (see `canonical_tags`): students map tags by name, never by the
index of Flair's frequency-ordered dictionary.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from swener.atomic import atomic_path
from swener.errors import DataError, SwenerError

FORMAT_VERSION = 1
SCHEME = "BIOES"


def canonical_tags(types: Iterable[str]) -> list[str]:
    """O, then for each entity type in alphabetical order its B-, I-, E-, S- tags."""
    return ["O"] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in "BIES"]


def token_checksum(sentences: Iterable[Sequence[str]]) -> str:
    """sha256 over the token sequences (tokens joined by a unit separator, sentences by newlines)."""
    digest = hashlib.sha256()
    for tokens in sentences:
        digest.update("\x1f".join(tokens).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class SoftLabels:
    """Teacher log-distributions of one split, with the header that identifies them."""

    header: dict
    logp: np.ndarray  # float16 [tokens, tags], dense (top-k files are expanded on reading)
    offsets: np.ndarray  # int64 [sentences + 1]

    @property
    def tags(self) -> list[str]:
        """The tag names of the columns of `logp`."""
        return list(self.header["tags"])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def first(self, n: int) -> "SoftLabels":
        """The distributions of the first n sentences (same header)."""
        return SoftLabels(self.header, self.logp[: self.offsets[n]], self.offsets[: n + 1])

    def sentence(self, i: int) -> np.ndarray:
        """The [tokens, tags] log-probabilities of sentence i."""
        return self.logp[self.offsets[i]:self.offsets[i + 1]]


def write(path: Path, distributions: Sequence[np.ndarray], *, tags: Sequence[str], tokens: Sequence[Sequence[str]],
          teacher_sha256: str, corpus: str, split: str, topk: int | None = None, extra: dict | None = None) -> Path:
    """Write log-distributions (one [n_tokens, n_tags] array per sentence) atomically."""
    if len(distributions) != len(tokens):
        raise ValueError(f"{len(distributions)} distributions for {len(tokens)} sentences")
    for i, (dist, words) in enumerate(zip(distributions, tokens)):
        if dist.shape != (len(words), len(tags)):
            raise ValueError(f"sentence {i}: expected shape {(len(words), len(tags))}, got {dist.shape}")
    lengths = [len(words) for words in tokens]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    logp = (np.concatenate(distributions) if distributions else np.zeros((0, len(tags)))).astype(np.float32)
    header = {
        "format": FORMAT_VERSION, "tags": list(tags), "scheme": SCHEME, "temperature": 1.0,
        "teacher_sha256": teacher_sha256, "tokens_sha256": token_checksum(tokens),
        "corpus": corpus, "split": split, "sentences": len(tokens), "tokens": int(offsets[-1]),
        "topk": topk, **(extra or {}),
    }
    arrays: dict[str, np.ndarray] = {"offsets": offsets}
    if topk:
        order = np.argsort(-logp, axis=1)[:, :topk]
        arrays["topk_idx"] = order.astype(np.int16)
        arrays["topk_logp"] = np.take_along_axis(logp, order, axis=1).astype(np.float16)
    else:
        arrays["logp"] = np.maximum(logp, np.finfo(np.float16).min).astype(np.float16)
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def read(path: Path) -> SoftLabels:
    """Read a cache file; a missing or damaged file is a DataError."""
    if not path.is_file():
        raise DataError(path, "no soft-label file here; run `swener teacher soft-labels` (or `make soft-labels`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            offsets = data["offsets"]
            if header.get("topk"):
                logp = _expand_topk(data["topk_idx"], data["topk_logp"], len(header["tags"]))
            else:
                logp = data["logp"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(path, f"not a swener soft-label file ({err}); delete it and write it again") from None
    if header.get("format") != FORMAT_VERSION:
        raise DataError(path, f"format {header.get('format')} but this swener reads {FORMAT_VERSION}; rewrite it")
    return SoftLabels(header, logp, offsets)


def _expand_topk(index: np.ndarray, top: np.ndarray, n_tags: int) -> np.ndarray:
    """Dense log-probabilities from a top-k form, spreading the remaining mass evenly."""
    probs = np.exp(top.astype(np.float32))
    rest = np.clip(1.0 - probs.sum(axis=1, keepdims=True), 1e-8, None) / max(n_tags - index.shape[1], 1)
    dense = np.broadcast_to(rest, (len(index), n_tags)).copy()
    np.put_along_axis(dense, index.astype(np.int64), probs, axis=1)
    return np.log(dense).astype(np.float16)


def validate(soft: SoftLabels, path: Path, tokens: Sequence[Sequence[str]], *, split: str | None = None,
             teacher_sha256: str | None = None, allow_test: bool = False) -> None:
    """Refuse a cache that does not belong to these sentences (or to this split, teacher, use)."""
    header = soft.header
    if header["split"] == "test" and not allow_test:
        raise SwenerError(f"{path}: this cache holds the test split; students never train on test data")
    if split is not None and header["split"] != split:
        raise SwenerError(f"{path}: cache of split {header['split']!r}, expected {split!r}")
    if header["sentences"] != len(tokens):
        raise SwenerError(f"{path}: {header['sentences']} sentences in the cache, {len(tokens)} in the corpus; "
                          "the corpus changed: rewrite the soft labels")
    if header["tokens_sha256"] != token_checksum(tokens):
        raise SwenerError(f"{path}: the token sequences differ from the corpus's; rewrite the soft labels")
    if teacher_sha256 is not None and header["teacher_sha256"] != teacher_sha256:
        raise SwenerError(f"{path}: written by another teacher ({header['teacher_sha256'][:12]}); rewrite it")
    if header.get("scheme") != SCHEME:
        raise SwenerError(f"{path}: tag scheme {header.get('scheme')!r}, expected {SCHEME}")
