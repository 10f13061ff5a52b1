"""`swener export`: a trained student as an ONNX Runtime tagger that needs neither torch nor Flair.

The folder holds:

- `model.onnx`: the encoder, word vectors [B, T, D] float32 and lengths [B] int64 in
  (sentences sorted longest first), emissions [B, T, K] out; exported with torch's
  TorchScript-based exporter (`dynamo=False`) and dynamic batch and length axes (torch's
  dynamo exporter gave a bidirectional-LSTM graph that failed at another sequence length).
- `vectors.npz`: the student's fastText vocabulary and pruned n-gram table (`CompactVectors`).
- `tagger.json`: tags, CRF transitions, `<START>`/`<STOP>`, OOV rule, the model card and
  where the model came from (path, sha256).

`swener.serve.onnx.OnnxTagger` reads it; `swener tag FOLDER` (or `--engine onnx`) uses it.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from swener.atomic import atomic_dir
from swener.errors import SwenerError
from swener.files import sha256_of
from swener.serve.onnx import (  # noqa: F401
    CONFIG_FILE,
    FORMAT,
    MODEL_FILE,
    VECTORS_FILE,
    default_folder,
    is_export,
)

VERSION = 1
OPSET = 17


def export(tagger, model_path: Path, out: Path) -> Path:
    """Write the export folder of a loaded StudentTagger (float32) to `out`, atomically."""
    import numpy as np
    import torch

    from swener.students.tagger import StudentTagger
    from swener.vectors.compact import CompactVectors
    from swener.vectors.embeddings import CompactFastTextEmbeddings

    if not isinstance(tagger, StudentTagger) or not isinstance(tagger.embeddings, CompactFastTextEmbeddings):
        raise SwenerError(f"{model_path}: only swener students (fastText embeddings) can be exported, "
                          f"not a {type(tagger).__name__}")
    if tagger.embeddings.field is not None:
        raise SwenerError(f"{model_path}: a student that embeds a token label ({tagger.embeddings.field}) "
                          "cannot be exported")
    if getattr(tagger, "precision", "float32") == "int8":
        raise SwenerError(f"{model_path}: an int8 student cannot be exported to ONNX; export the float model")
    tagger = tagger.eval()
    embeddings = tagger.embeddings
    names = [tagger.label_dictionary.get_item_for_index(i) for i in range(len(tagger.label_dictionary))]

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = tagger

        def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return self.student.emissions(vectors, lengths)

    sample_lengths = torch.tensor([5, 3], dtype=torch.long)
    sample = torch.randn(2, 5, embeddings.embedding_length)
    compact = CompactVectors(list(embeddings.words), embeddings.word_vectors.cpu().numpy(),
                             np.asarray(embeddings.ngram_ids, dtype=np.int64), embeddings.ngram_vectors.cpu().numpy(),
                             embeddings.minn, embeddings.maxn, embeddings.bucket, {"name": embeddings.source})
    config = {
        "format": FORMAT, "version": VERSION, "tags": names, "use_crf": bool(tagger.use_crf),
        "transitions": tagger.crf.transitions.detach().cpu().tolist() if tagger.use_crf else None,
        "start": names.index("<START>") if "<START>" in names else None,
        "stop": names.index("<STOP>") if "<STOP>" in names else None,
        "oov": embeddings.oov, "dim": embeddings.embedding_length, "tag_type": tagger.tag_type,
        "family": tagger.card.get("family"), "card": tagger.card,
        "source": {"path": str(model_path), "sha256": sha256_of(model_path)},
        "opset": OPSET, "torch": torch.__version__,
    }
    with atomic_dir(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        # the LSTM's batch-size warning: the graph has no initial states, so ONNX Runtime starts from zeros
        # at any batch size (tests/test_export.py runs it at other batch sizes and lengths)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(Encoder(), (sample, sample_lengths), str(tmp / MODEL_FILE), dynamo=False,
                          input_names=["vectors", "lengths"], output_names=["emissions"], opset_version=OPSET,
                          dynamic_axes={"vectors": {0: "batch", 1: "length"}, "lengths": {0: "batch"},
                                        "emissions": {0: "batch", 1: "length"}})
        compact.save(tmp / VECTORS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def write_variant(tagger, model_path: Path, variant: str, out: Path | None = None) -> Path:
    """`swener export`: the ONNX folder, or a bf16 / int8 student file; returns what was written."""
    from swener.atomic import atomic_path
    from swener.serve import quantize

    if variant == "onnx":
        return export(tagger, model_path, out or default_folder(model_path))
    quantize._student(tagger, model_path)
    target = out or model_path.with_name(model_path.name[:-len(".pt")] + f".{variant}.pt"
                                         if model_path.name.endswith(".pt") else model_path.name + f".{variant}.pt")
    if variant == "bf16":
        tagger.precision = "bf16"
        tagger.card = {**tagger.card, "precision": "bf16"}
        with atomic_path(target) as tmp:
            tagger.save(tmp)
        return target
    if variant == "int8":
        if not target.name.endswith(quantize.INT8_SUFFIX):
            raise SwenerError(f"{target}: an int8 student's file name must end in {quantize.INT8_SUFFIX}")
        quantized = quantize.quantize_int8(tagger)
        with atomic_path(target) as tmp:
            quantize.save_int8(quantized, tagger, tmp)
        return target
    raise SwenerError(f"variant must be onnx, bf16 or int8, not {variant!r}")
