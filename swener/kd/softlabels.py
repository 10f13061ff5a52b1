"""The on-disk cache of teacher distributions: one file per (teacher, corpus, split).

A file is an uncompressed `.npz` with
- `header`: UTF-8 JSON (format version, tag list, tag scheme, teacher sha256, token sha256,
  corpus, split, sentence and token counts, top-k or dense),
- `offsets`: int64 [sentences + 1], token offsets of each sentence,
- dense form: `logp` float16 [tokens, tags], log-probabilities at temperature 1,
- top-k form: `topk_idx` int16 and `topk_logp` float16 [tokens, k], the teacher's k most
  likely tags and their log-probabilities; read back, they are renormalised over the kept
  tags and every other tag gets probability 0 (-inf), so no uniform tail is invented,
- optional k-best paths (`add_kbest`, for `--kd-target kbest`): `kbest_paths` int16
  [tokens, k], path j's tag (an index of the header's tags) at each token, and `kbest_logp`
  float32 [sentences, k], each path's log-probability under the teacher (-inf: no such
  path, a sentence with fewer than k valid paths); the header's `kbest` is k.
The tag list is canonical (see `canonical_tags`): students map tags by name, never by the
index of Flair's frequency-ordered dictionary.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
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
    kbest_paths: np.ndarray | None = None  # int16 [tokens, k], the teacher's k best paths, if cached
    kbest_logp: np.ndarray | None = None  # float32 [sentences, k], their log-probabilities

    @property
    def tags(self) -> list[str]:
        """The tag names of the columns of `logp`."""
        return list(self.header["tags"])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def first(self, n: int) -> "SoftLabels":
        """The distributions of the first n sentences (same header)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"{n} sentences asked for, {len(self)} cached")
        paths = None if self.kbest_paths is None else self.kbest_paths[: self.offsets[n]]
        scores = None if self.kbest_logp is None else self.kbest_logp[:n]
        return SoftLabels(self.header, self.logp[: self.offsets[n]], self.offsets[: n + 1], paths, scores)

    def sentence(self, i: int) -> np.ndarray:
        """The [tokens, tags] log-probabilities of sentence i."""
        return self.logp[self.offsets[i]:self.offsets[i + 1]]

    def sentence_kbest(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sentence i's k best teacher paths [k, tokens] and their log-probabilities [k]."""
        if self.kbest_paths is None or self.kbest_logp is None:
            raise ValueError("this cache holds no k-best paths (swener teacher kbest adds them)")
        return self.kbest_paths[self.offsets[i]:self.offsets[i + 1]].T, self.kbest_logp[i]


def write(path: Path, distributions: Sequence[np.ndarray], *, tags: Sequence[str],
          tokens: Sequence[Sequence[str]] | None = None, teacher_sha256: str, corpus: str, split: str,
          topk: int | None = None, extra: dict | None = None, lengths: Sequence[int] | None = None,
          tokens_sha256: str | None = None,
          kbest: tuple[Sequence[np.ndarray], Sequence[np.ndarray], int] | None = None) -> Path:
    """Write log-distributions (one [n_tokens, n_tags] array per sentence) atomically.

    The sentences are `tokens`, or, for caches joined from caches of the same sentences,
    their `lengths` and `tokens_sha256`; `kbest`: the k best paths, their log-probabilities
    and k, as `add_kbest` takes them, written in the same file at once.
    """
    if tokens is not None:
        lengths, tokens_sha256 = [len(words) for words in tokens], token_checksum(tokens)
    if lengths is None or tokens_sha256 is None:
        raise ValueError("give the sentences' tokens, or their lengths and token checksum")
    if len(distributions) != len(lengths):
        raise ValueError(f"{len(distributions)} distributions for {len(lengths)} sentences")
    for i, (dist, n) in enumerate(zip(distributions, lengths)):
        if dist.shape != (n, len(tags)):
            raise ValueError(f"sentence {i}: expected shape {(n, len(tags))}, got {dist.shape}")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    logp = (np.concatenate(distributions) if distributions else np.zeros((0, len(tags)))).astype(np.float32)
    header = {
        "format": FORMAT_VERSION, "tags": list(tags), "scheme": SCHEME, "temperature": 1.0,
        "teacher_sha256": teacher_sha256, "tokens_sha256": tokens_sha256,
        "corpus": corpus, "split": split, "sentences": len(lengths), "tokens": int(offsets[-1]),
        "topk": topk, **(extra or {}),
    }
    arrays: dict[str, np.ndarray] = {"offsets": offsets}
    if kbest is not None:
        header["kbest"] = int(kbest[2])
        arrays.update(_kbest_arrays(*kbest, offsets, header, path))
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


REWRITE = "delete it and write it again (`swener teacher soft-labels`, or `make soft-labels`)"
LOGSUMEXP_TOLERANCE = 0.03  # a row's probabilities must sum to 1 within about 3 % (float16 storage, top-k spread)


def read(path: Path) -> SoftLabels:
    """Read a cache file and check its structure and content; any fault is a DataError naming the file.

    Checked: the arrays are there with integer offsets and float distributions of the right
    shapes; the offsets start at 0, never decrease and end at the row count, which is the
    header's token count; every value is finite or -inf; every row is a log-distribution.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no soft-label file here; run `swener teacher soft-labels` (or `make soft-labels`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            missing = sorted({"header", "offsets"} - names)
            if missing:
                raise DataError(path, f"not a swener soft-label file (no {', '.join(missing)} array); {REWRITE}")
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            _check_header(header, path)
            offsets = data["offsets"]
            if header.get("topk"):
                index, top = _arrays(data, path, "topk_idx", "topk_logp")
                logp = _expand_topk(_checked_topk(index, top, len(header["tags"]), path), top, len(header["tags"]))
            else:
                (logp,) = _arrays(data, path, "logp")
            kbest_paths = kbest_logp = None
            if header.get("kbest"):
                kbest_paths, kbest_logp = _arrays(data, path, "kbest_paths", "kbest_logp")
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        reason = "an empty file" if path.stat().st_size == 0 else f"{type(err).__name__}: {err}"
        raise DataError(path, f"damaged or not a swener soft-label file ({reason}); {REWRITE}") from None
    _check_offsets(offsets, header, path)
    _check_rows(logp, offsets, len(header["tags"]), path)
    if kbest_paths is not None:
        _check_kbest(kbest_paths, kbest_logp, header, offsets, path)
    return SoftLabels(header, logp, offsets, kbest_paths, kbest_logp)


def add_kbest(path: Path, paths: Sequence[np.ndarray], logp: Sequence[np.ndarray], k: int) -> Path:
    """Add (or replace) the k-best arrays of a cache file, atomically; its other arrays are kept as they are.

    `paths`: one int array [k, tokens] per sentence (indices of the header's tags), `logp`:
    one [k] array per sentence, each path's log-probability (-inf for a missing path).
    """
    path = Path(path)
    soft = read(path)  # checks the file first
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name not in ("header", "kbest_paths", "kbest_logp")}
    header = {**soft.header, "kbest": int(k)}
    arrays.update(_kbest_arrays(paths, logp, k, soft.offsets, header, path))
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    before = path.stat()
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    # the distributions are unchanged, so neither is the file's time: whatever Make built from
    # them (KD students, the teacher's scores) stays up to date; the k-best step has its own stamp
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return path


def _kbest_arrays(paths: Sequence[np.ndarray], logp: Sequence[np.ndarray], k: int, offsets: np.ndarray,
                  header: dict, path: Path) -> dict[str, np.ndarray]:
    """The `kbest_paths` and `kbest_logp` arrays of one path set [k, tokens] and score set [k] per sentence."""
    if len(paths) != len(offsets) - 1 or len(logp) != len(offsets) - 1:
        raise ValueError(f"{len(paths)} path sets and {len(logp)} score sets for {len(offsets) - 1} sentences")
    for i, (rows, scores) in enumerate(zip(paths, logp)):
        n = int(offsets[i + 1] - offsets[i])
        if np.shape(rows) != (k, n) or np.shape(scores) != (k,):
            raise ValueError(f"sentence {i}: expected paths of shape {(k, n)} and scores of shape {(k,)}, got "
                             f"{np.shape(rows)} and {np.shape(scores)}")
    arrays = {"kbest_paths": (np.concatenate([np.asarray(r).T for r in paths]) if paths
                              else np.zeros((0, k))).astype(np.int16),
              "kbest_logp": (np.stack([np.asarray(s) for s in logp]) if logp else np.zeros((0, k))).astype(np.float32)}
    _check_kbest(arrays["kbest_paths"], arrays["kbest_logp"], header, offsets, path)
    return arrays


def _check_kbest(paths: np.ndarray, logp: np.ndarray, header: dict, offsets: np.ndarray, path: Path) -> None:
    """k-best arrays: [tokens, k] tag indices of the header's tags and [sentences, k] log-probabilities, best first."""
    k, n_tags = header["kbest"], len(header["tags"])
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise DataError(path, f"the header's kbest is {k!r}, not a count of paths; {REWRITE}")
    if paths.shape != (offsets[-1], k) or not np.issubdtype(paths.dtype, np.integer):
        raise DataError(path, f"k-best paths of shape {paths.shape} ({paths.dtype}), expected integers "
                        f"[{offsets[-1]} tokens, {k}]; {REWRITE}")
    if logp.shape != (len(offsets) - 1, k) or not np.issubdtype(logp.dtype, np.floating):
        raise DataError(path, f"k-best scores of shape {logp.shape} ({logp.dtype}), expected floats "
                        f"[{len(offsets) - 1} sentences, {k}]; {REWRITE}")
    if paths.size and (paths.min() < 0 or paths.max() >= n_tags):
        raise DataError(path, f"k-best path tags outside 0..{n_tags - 1}; {REWRITE}")
    bad = ~((np.isfinite(logp) & (logp <= LOGSUMEXP_TOLERANCE)) | (logp == -np.inf))
    if len(logp) and (bad.any() or not np.isfinite(logp[:, 0]).all()):
        raise DataError(path, f"k-best scores that are not log-probabilities (finite and at most 0, or -inf after "
                        f"a finite best path); {REWRITE}")


def _arrays(data: np.lib.npyio.NpzFile, path: Path, *names: str) -> list[np.ndarray]:
    """The named arrays of an open .npz, each one a DataError if absent."""
    missing = [name for name in names if name not in data.files]
    if missing:
        raise DataError(path, f"the {', '.join(missing)} array is missing; {REWRITE}")
    return [data[name] for name in names]


def _check_header(header: object, path: Path) -> None:
    """The JSON header: this format, a list of distinct tag names, integer counts."""
    if not isinstance(header, dict):
        raise DataError(path, f"the header is not a JSON object; {REWRITE}")
    if header.get("format") != FORMAT_VERSION:
        raise DataError(path, f"format {header.get('format')} but this swener reads {FORMAT_VERSION}; {REWRITE}")
    tags = header.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags) \
            or len(set(tags)) != len(tags):
        raise DataError(path, f"the header's tag list is not a list of distinct tag names ({tags!r}); {REWRITE}")
    for key in ("sentences", "tokens"):
        if not isinstance(header.get(key), int) or isinstance(header.get(key), bool) or header[key] < 0:
            raise DataError(path, f"the header's {key} count is {header.get(key)!r}, not a count; {REWRITE}")
    for key in ("split", "tokens_sha256", "teacher_sha256"):
        if not isinstance(header.get(key), str):
            raise DataError(path, f"the header has no {key}; {REWRITE}")


def _checked_topk(index: np.ndarray, top: np.ndarray, n_tags: int, path: Path) -> np.ndarray:
    """The top-k tag indices, checked against the top-k values and the tag list."""
    if index.ndim != 2 or index.shape != top.shape or not np.issubdtype(index.dtype, np.integer):
        raise DataError(path, f"top-k arrays of shapes {index.shape} ({index.dtype}) and {top.shape}, expected "
                        f"integer indices and values of one shape [tokens, k]; {REWRITE}")
    if index.size and (index.min() < 0 or index.max() >= n_tags):
        raise DataError(path, f"top-k tag indices outside 0..{n_tags - 1}; {REWRITE}")
    if not np.issubdtype(top.dtype, np.floating) or not np.all(np.isfinite(top) | (top == -np.inf)):
        raise DataError(path, f"top-k values that are not finite log-probabilities; {REWRITE}")
    return index


def _check_offsets(offsets: np.ndarray, header: dict, path: Path) -> None:
    """Offsets [sentences + 1] of integers: from 0, never decreasing, ending at the header's token count."""
    if offsets.ndim != 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise DataError(path, f"offsets of shape {offsets.shape} and type {offsets.dtype}, expected one row of "
                        f"integers; {REWRITE}")
    if len(offsets) != header["sentences"] + 1:
        raise DataError(path, f"{len(offsets)} offsets for {header['sentences']} sentences (expected "
                        f"{header['sentences'] + 1}); {REWRITE}")
    if offsets[0] != 0:
        raise DataError(path, f"the offsets start at {offsets[0]}, not 0; {REWRITE}")
    falling = np.flatnonzero(np.diff(offsets) < 0)
    if len(falling):
        raise DataError(path, f"the offsets decrease at sentence {falling[0]}; {REWRITE}")
    if offsets[-1] != header["tokens"]:
        raise DataError(path, f"the offsets end at {offsets[-1]} tokens, the header says {header['tokens']}; "
                        f"{REWRITE}")


def _check_rows(logp: np.ndarray, offsets: np.ndarray, n_tags: int, path: Path) -> None:
    """[tokens, tags] floats, one row per token, every row a log-distribution (values finite or -inf)."""
    if logp.ndim != 2 or not np.issubdtype(logp.dtype, np.floating) or logp.shape[1] != n_tags:
        raise DataError(path, f"distributions of shape {logp.shape} and type {logp.dtype}, expected floats "
                        f"[tokens, {n_tags} tags]; {REWRITE}")
    if len(logp) != offsets[-1]:
        raise DataError(path, f"{len(logp)} rows of distributions but the offsets count {offsets[-1]} tokens; "
                        f"{REWRITE}")
    values = logp.astype(np.float32)
    bad = ~(np.isfinite(values) | (values == -np.inf))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(path, f"{_where(row, offsets)} holds {values[row][bad[row]][0]} (NaN or +inf); {REWRITE}")
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = values.max(axis=1, initial=-np.inf, keepdims=True)
        total = np.log(np.exp(values - np.where(np.isfinite(peak), peak, 0)).sum(axis=1)) + peak[:, 0]
    off = np.flatnonzero(~(np.abs(total) <= LOGSUMEXP_TOLERANCE))
    if len(off):
        row = int(off[0])
        raise DataError(path, f"{_where(row, offsets)} is not a log-distribution (its probabilities sum to "
                        f"{np.exp(total[row]):.4g}, expected 1); {len(off)} such rows; {REWRITE}")


def _where(row: int, offsets: np.ndarray) -> str:
    """'sentence i, token j' of a row of the cache."""
    sentence = int(np.searchsorted(offsets, row, side="right") - 1)
    return f"sentence {sentence}, token {row - int(offsets[sentence])}"


def _expand_topk(index: np.ndarray, top: np.ndarray, n_tags: int) -> np.ndarray:
    """Dense log-probabilities from a top-k form: renormalised over the kept tags, -inf (probability 0) elsewhere."""
    kept = top.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = kept.max(axis=1, keepdims=True, initial=-np.inf)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        total = np.log(np.exp(kept - peak).sum(axis=1, keepdims=True)) + peak
    dense = np.full((len(index), n_tags), -np.inf, dtype=np.float32)
    np.put_along_axis(dense, index.astype(np.int64), kept - total, axis=1)
    return dense.astype(np.float16)


def validate(soft: SoftLabels, path: Path, tokens: Sequence[Sequence[str]], *, split: str | None = None,
             teacher_sha256: str | None = None, allow_test: bool = False,
             types: Iterable[str] | None = None) -> None:
    """Refuse a cache that does not belong to these sentences (or to this split, teacher, use, tag set).

    `types`: the student's entity types; the cache's tags must then be exactly their canonical tags.
    """
    header = soft.header
    if header["split"] == "test" and not allow_test:
        raise SwenerError(f"{path}: this cache holds the test split; students never train on test data: "
                          "write the train split's cache (`swener teacher soft-labels --split train`)")
    if split is not None and header["split"] != split:
        raise SwenerError(f"{path}: cache of split {header['split']!r}, expected {split!r}; write the "
                          f"{split} split's cache there (`swener teacher soft-labels`)")
    if header["sentences"] != len(tokens):
        raise SwenerError(f"{path}: {header['sentences']} sentences in the cache, {len(tokens)} in the corpus; "
                          "the corpus changed: rewrite the soft labels")
    if header["tokens_sha256"] != token_checksum(tokens):
        raise SwenerError(f"{path}: the token sequences differ from the corpus's; rewrite the soft labels")
    rows = np.diff(soft.offsets)
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    differ = np.flatnonzero(rows != lengths)
    if len(differ):
        i = int(differ[0])
        raise DataError(path, f"sentence {i} has {rows[i]} rows of distributions for its {lengths[i]} tokens; "
                        f"{REWRITE}")
    if teacher_sha256 is not None and header["teacher_sha256"] != teacher_sha256:
        raise SwenerError(f"{path}: written by another teacher ({header['teacher_sha256'][:12]}); rewrite it")
    if header.get("scheme") != SCHEME:
        raise SwenerError(f"{path}: tag scheme {header.get('scheme')!r}, expected {SCHEME}")
    if types is not None:
        _check_tags(soft.tags, canonical_tags(types), path)


def _check_tags(tags: Sequence[str], expected: Sequence[str], path: Path) -> None:
    """The cache's tag names must be the student's: none unknown, none missing."""
    unknown = [t for t in tags if t not in expected]
    missing = [t for t in expected if t not in tags]
    if unknown or missing:
        parts = ([f"tags the student does not know: {', '.join(unknown)}"] if unknown else []) + \
                ([f"student tags it lacks: {', '.join(missing)}"] if missing else [])
        raise DataError(path, f"{'; '.join(parts)}; the cache was written for another tag set: write it again "
                        "from a teacher of this corpus (`swener teacher soft-labels`)")

