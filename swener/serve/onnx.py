"""An exported student run by ONNX Runtime: numpy word lookup, ONNX encoder, numpy Viterbi.

Imports neither torch nor Flair, so `swener tag` starts in well under a second plus the
time to read the vectors. It tags like the student it was exported from (same lookup
rules, same decoder; float rounding in the encoder may flip a near-tie).

An export folder is the form of a model to share: it holds no code. Nothing here unpickles
(arrays are read with `allow_pickle=False`), and a folder in which someone put a pickle (a
.pt/.pkl/... file, a file with a pickle header, an .npy/.npz of Python objects) is refused
before anything in it is read (`check_no_pickles`).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

import numpy as np

from swener.errors import SwenerError
from swener.files import read_json
from swener.kd import decoding
from swener.vectors.compact import CompactVectors, WordTable

FORMAT = "swener-onnx-tagger"  # as swener.serve.export.FORMAT (that module imports torch when it exports)
MODEL_FILE, VECTORS_FILE, CONFIG_FILE = "model.onnx", "vectors.npz", "tagger.json"
CARD_FILE = "MODEL.md"  # the model card written beside them
# files that are (or usually are) Python pickles: torch, joblib and pickle's own suffixes
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".bin"})


@dataclass
class Prepared:
    """Sentences ready for the encoder (`OnnxTagger.prepare`): their count, lengths and batches."""

    sentences: int
    lengths: list[int]
    batches: list[tuple[list[int], np.ndarray, np.ndarray]]  # (sentence indices, vectors, lengths)


def default_folder(model_path: Path) -> Path:
    """Where `swener export MODEL` writes by default: `<model without .pt>-onnx/` beside it."""
    return model_path.with_name(model_path.stem + "-onnx")


def is_export(path: Path) -> bool:
    """Whether a path is a folder written by `swener export`."""
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / MODEL_FILE).is_file()


def _array_reason(stream: IO[bytes], name: str) -> str | None:
    """Why an .npy stream may unpickle when loaded (an array of Python objects, or a header not checked); else None."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            return f"{name}: an array file of format version {version[0]}.{version[1]}, which swener cannot check"
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        _, _, dtype = read(stream)
    except ValueError:  # not an .npy file: numpy (allow_pickle=False) would not load it either
        return None
    return f"{name}: an array of Python objects (loading it unpickles)" if dtype.hasobject else None


def pickle_reason(path: Path) -> str | None:
    """Why a file may hold a Python pickle (by its name, its first bytes, or the arrays in it); None if not."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return f"a {suffix} file, which is a Python pickle"
    with open(path, "rb") as handle:
        head = handle.read(4)
        if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode of pickle protocols 2-5
            return "a Python pickle (it starts with a pickle header)"
        if suffix == ".npy":
            handle.seek(0)
            return _array_reason(handle, path.name)
    if head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):  # .npz, and torch's zipped pickles
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if Path(info.filename).suffix.lower() in PICKLE_SUFFIXES:
                    return f"an archive holding a pickle ({info.filename})"
                if info.filename.endswith(".npy"):
                    with archive.open(info) as member:
                        reason = _array_reason(member, info.filename)
                    if reason:
                        return f"an archive holding {reason}"
    return None


def check_no_pickles(folder: Path) -> None:
    """Refuse an export folder with a file that may be a pickle: one SwenerError naming the file and the fix."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            reason = pickle_reason(path)
        except (OSError, zipfile.BadZipFile) as err:
            raise SwenerError(f"{path}: cannot be read to check that it is no pickle ({err}); fix its permissions "
                              "or delete it") from None
        if reason:
            raise SwenerError(f"{path}: {reason}; an export folder must hold no pickle (unpickling can run "
                              f"code), so it is not loaded: delete the file if you trust the rest of the folder, "
                              f"else export the model again with `swener export MODEL`")


class OnnxTagger:
    """A tagger from an export folder with `tag_tokens`, the interface `swener.serve.tagging` uses."""

    def __init__(self, folder: str | Path, threads: int = 1, precision: str = "float32") -> None:
        folder = Path(folder)
        check_no_pickles(folder)
        config = read_json(folder / CONFIG_FILE, "not an exported swener tagger",
                           "export one with `swener export MODEL`")
        if config.get("format") != FORMAT:
            raise SwenerError(f"{folder}/{CONFIG_FILE}: not an exported swener tagger (format "
                              f"{config.get('format')!r}); export one with `swener export MODEL`")
        self.folder, self.config, self.threads = folder, config, threads
        self.precision = precision
        self.model_file = self._model_file(precision)
        self.session = self._open_session()
        self.tags: list[str] = list(config["tags"])
        self.tag_type: str = config.get("tag_type", "ner")
        self.card: dict = config.get("card") or {}
        self.use_crf: bool = bool(config["use_crf"])
        self.transitions = np.asarray(config["transitions"], dtype=np.float32) if self.use_crf else None
        self.table = WordTable(CompactVectors.load(folder / VECTORS_FILE), config.get("oov", "subword"))

    def _model_file(self, precision: str) -> Path:
        """The ONNX graph of a precision: model.onnx (float32) or its dynamic int8 form (`swener.serve.precision`)."""
        if precision == "float32":
            return self.folder / MODEL_FILE
        if precision == "int8":
            from swener.serve.precision import int8_model

            return int8_model(self.folder / MODEL_FILE)
        raise SwenerError(f"{self.folder}: an exported model runs in float32 or int8, not {precision} "
                          "(ONNX Runtime has no bf16 kernels on CPU; bf16: the .pt model with --engine flair)")

    def _open_session(self):
        """An ONNX Runtime session of `model_file` with this tagger's threads."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        try:
            return onnxruntime.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types on a damaged file
            raise SwenerError(f"{self.model_file}: ONNX Runtime cannot load it ({err})") from None

    def reopen(self) -> None:
        """A session of its own, for a process forked after this tagger was loaded (`swener.serve.pipeline`)."""
        self.session = self._open_session()

    def inputs(self, id_lists: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's inputs for sentences given as word ids: vectors [B, T, D] and lengths [B]."""
        lengths = np.asarray([len(ids) for ids in id_lists], dtype=np.int64)
        padded = np.full((len(id_lists), int(lengths.max())), -1, dtype=np.int64)
        for row, ids in enumerate(id_lists):
            padded[row, :len(ids)] = ids
        return self.table.lookup(padded), lengths

    def encode(self, vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Emissions [B, T, K] from the encoder's inputs (ONNX Runtime; it releases the GIL)."""
        (scores,) = self.session.run(["emissions"], {"vectors": vectors, "lengths": lengths})
        return scores

    def emissions(self, id_lists: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Emissions [B, T, K] of sentences given as word ids, longest first; and their lengths."""
        vectors, lengths = self.inputs(id_lists)
        return self.encode(vectors, lengths), lengths

    def decode(self, scores: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag ids and confidences [B, T]."""
        if self.use_crf:
            tags, viterbi_scores = decoding.viterbi(scores, lengths, self.transitions, self.config["start"],
                                                    self.config["stop"])
            return tags, decoding.max_softmax(viterbi_scores)
        return decoding.softmax_tags(scores)

    def prepare(self, token_lists: Sequence[Sequence[str]], batch_size: int = 64) -> Prepared:
        """The Python part of tagging: length-sorted batches as (sentence indices, vectors, lengths).

        Word ids, first-time subword vectors and the vector lookup happen here, so that a
        reader thread can prepare the next sentences while `run` tags these (ONNX Runtime
        releases the GIL). Only one thread may call it.
        """
        order = sorted((i for i, tokens in enumerate(token_lists) if tokens), key=lambda i: -len(token_lists[i]))
        batches = []
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            self.table.trim()  # between batches: the ids below are used at once
            batches.append((batch, *self.inputs([self.table.word_ids(list(token_lists[i])) for i in batch])))
        return Prepared(len(token_lists), [len(tokens) for tokens in token_lists], batches)

    def run(self, prepared: Prepared) -> list[tuple[list[str], list[float]]]:
        """BIOES tags and confidences of prepared sentences, in their original order."""
        results: list[tuple[list[str], list[float]]] = [([], []) for _ in range(prepared.sentences)]
        for batch, vectors, lengths in prepared.batches:
            tags, confidences = self.decode(self.encode(vectors, lengths), lengths)
            for row, i in enumerate(batch):
                n = prepared.lengths[i]
                results[i] = ([self.tags[t] for t in tags[row, :n].tolist()], confidences[row, :n].tolist())
        return results

    def tag_tokens(self, token_lists: Sequence[Sequence[str]], batch_size: int = 64
                   ) -> list[tuple[list[str], list[float]]]:
        """BIOES tags and confidences of tokenised sentences (length-sorted batches)."""
        return self.run(self.prepare(token_lists, batch_size))
