"""Vector files: a swener embeddings folder (vectors.npz + manifest.json), a Facebook fastText .bin, a .vec text
file."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from swener.config import REPO_ROOT
from swener.errors import DataError
from swener.files import open_text, sha256_of
from swener.vectors.compact import CompactVectors

EMBEDDINGS_DIR = Path(os.environ.get("SWENER_EMBEDDINGS", REPO_ROOT / "embeddings"))


VECTORS_FILE = "vectors.npz"


MANIFEST_FILE = "manifest.json"


FULL_MODEL_FILE = "fasttext.model"


FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin file


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
    meta = {"name": path.name, "source": str(path), "sha256": sha256_of(path)}
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


def _load_vec(path: Path, max_words: int, meta: dict) -> CompactVectors:
    """Read a word2vec/fastText text file (optional `count dim` header, then `word v1 ... vd`)."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    declared: int | None = None
    entries = 0
    seen: set[str] = set()
    with open_text(path, "rb") as handle:
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


def _compact_summary(compact: CompactVectors, file: Path) -> dict:
    return {"file": file.name, "bytes": file.stat().st_size, "words": len(compact.words),
            "ngrams": int(compact.ngram_ids.size), "dim": compact.dim, "dtype": "float16",
            "minn": compact.minn, "maxn": compact.maxn, "bucket": compact.bucket}


def _versions() -> dict:
    import flair
    import gensim

    return {"gensim": gensim.__version__, "flair": flair.__version__, "numpy": np.__version__}
