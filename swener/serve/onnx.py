"""An exported student run by ONNX Runtime: numpy word lookup, ONNX encoder, numpy Viterbi.

Imports neither torch nor Flair, so `swener tag` starts in well under a second plus the
time to read the vectors. It tags like the student it was exported from (same lookup
rules, same decoder; float rounding in the encoder may flip a near-tie).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from swener.errors import SwenerError
from swener.files import read_json
from swener.kd import decoding
from swener.vectors.compact import CompactVectors, WordTable

FORMAT = "swener-onnx-tagger"  # as swener.serve.export.FORMAT (that module imports torch when it exports)
MODEL_FILE, VECTORS_FILE, CONFIG_FILE = "model.onnx", "vectors.npz", "tagger.json"


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


class OnnxTagger:
    """A tagger from an export folder with `tag_tokens`, the interface `swener.serve.tagging` uses."""

    def __init__(self, folder: str | Path, threads: int = 1) -> None:
        folder = Path(folder)
        config = read_json(folder / CONFIG_FILE, "not an exported swener tagger",
                           "export one with `swener export MODEL`")
        if config.get("format") != FORMAT:
            raise SwenerError(f"{folder}/{CONFIG_FILE}: not an exported swener tagger (format "
                              f"{config.get('format')!r}); export one with `swener export MODEL`")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types on a damaged file
            raise SwenerError(f"{folder}/{MODEL_FILE}: ONNX Runtime cannot load it ({err})") from None
        self.folder, self.config = folder, config
        self.tags: list[str] = list(config["tags"])
        self.tag_type: str = config.get("tag_type", "ner")
        self.card: dict = config.get("card") or {}
        self.use_crf: bool = bool(config["use_crf"])
        self.transitions = np.asarray(config["transitions"], dtype=np.float32) if self.use_crf else None
        self.table = WordTable(CompactVectors.load(folder / VECTORS_FILE), config.get("oov", "subword"))

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
