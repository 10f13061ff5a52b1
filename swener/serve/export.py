"""`swener export`: a trained student as an ONNX Runtime tagger that needs neither torch nor Flair.

The folder holds:

- `model.onnx`: the encoder, word vectors [B, T, D] float32 and lengths [B] int64 in
  (sentences sorted longest first), emissions [B, T, K] out; exported with torch's
  TorchScript-based exporter (`dynamo=False`) and dynamic batch and length axes (torch's
  dynamo exporter gave a bidirectional-LSTM graph that failed at another sequence length).
- `vectors.npz`: the student's fastText vocabulary and pruned n-gram table (`CompactVectors`).
- `tagger.json`: tags, CRF transitions, `<START>`/`<STOP>`, OOV rule, the model card and
  where the model came from (path, sha256).
- `MODEL.md`: the model card for a reader (`model_card`): corpus and licence, training
  settings, dev/test F1 and tokens/s from the run's results.json, the teacher, and the safety
  note. It is the form of a model to share: no file in it is a pickle (a `.pt` file is one,
  and loading it runs any code it holds).

`swener.serve.onnx.OnnxTagger` reads it; `swener tag FOLDER` (or `--engine onnx`) uses it.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from swener import config as settings
from swener import runs
from swener.atomic import atomic_dir
from swener.errors import SwenerError
from swener.files import sha256_of
from swener.serve import names
from swener.serve.onnx import (  # noqa: F401
    CARD_FILE,
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
    if getattr(tagger, "has_word_features", False):  # issue 37: the graph and runtime inputs are not built yet
        raise SwenerError(f"{model_path}: a student with character or subword inputs cannot be exported to ONNX "
                          "yet; tag it with --engine flair, or train it without --chars/--subwords to export it")
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
        (tmp / CARD_FILE).write_text(model_card(model_path, tagger.card, config["source"]["sha256"], out.name),
                                     encoding="utf-8")
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


# --------------------------------------------------------------------------- the model card


def _f1(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.4f}"


def _bench_rows(model_path: Path, bench_root: Path) -> list[dict]:
    """Rows of `swener.serve.bench` files (bench_root/*/bench.json) that measured this model file."""
    rows = []
    for path in sorted(bench_root.glob("*/bench.json")) if bench_root.is_dir() else []:
        data = names._read_json(path) or {}
        for row in data.get("models", []) if isinstance(data.get("models"), list) else []:
            if isinstance(row, dict) and row.get("path") and Path(row["path"]).resolve() == model_path.resolve():
                rows.append({**row, "file": str(path), "machine": data.get("machine"), "created": data.get("created")})
    return rows


def _teacher_lines(model_path: Path, card: dict, results: dict, corpus: str | None) -> list[str]:
    """The teacher a KD student learnt from: its id, file and, when its teacher.json is found, its F1."""
    teacher = card.get("teacher") or {}
    soft = results.get("soft_labels") or teacher.get("soft_labels")
    teacher_id = names._teacher_id(soft)
    lines = [f"- Teacher: `{teacher_id or 'unknown'}` (soft labels `{soft or 'unknown'}`)"]
    if teacher.get("path"):
        lines.append(f"- Teacher file: `{teacher['path']}` (sha256 {str(teacher.get('sha256', '?'))[:16]}...)")
    folders = [Path(teacher["path"]).parent] if teacher.get("path") else []
    if teacher_id and model_path.parent.name.startswith("seed-") and len(model_path.parents) > 4:
        folders.append(model_path.parents[4] / runs.TEACHER_DIR / teacher_id)  # models/<family>/<mode>/<set>/seed-N
    scores = next((found for folder in folders if (found := names.teacher_scores(folder))), {})
    dev, test = names._dev_test(scores, corpus)
    if scores:
        lines.append(f"- Teacher dev F1 {_f1(dev)}, test F1 {_f1(test)} (its teacher.json)")
    else:
        lines.append("- Teacher F1: not known (no teacher.json of `swener teacher evaluate` found)")
    transfer = results.get("transfer") or teacher.get("transfer")
    if transfer:
        lines.append(f"- Transfer set: {transfer.get('sentences')} sentences of `{transfer.get('text')}` "
                     "(unlabelled, learnt from the teacher only)")
    return lines


def _training_lines(facts: dict, results: dict, card: dict, kd: bool) -> list[str]:
    """The training settings of a student, from results.json's settings or the model's card."""
    family = facts.get("family") or "unknown"
    encoder, head = settings.FAMILIES.get(family, ("?", "?"))
    lines = [f"- Family: {family} (encoder {encoder}, {head} head), seed {facts.get('seed', 'not recorded')}"]
    if kd:
        anneal = f", annealed to {facts['alpha_end']:g}" if facts.get("alpha_end") is not None else ""
        lines.append(f"- Knowledge distillation: alpha {facts.get('alpha'):g}{anneal}, temperature "
                     f"{facts.get('temperature'):g}, target {facts.get('kd_target')}")
    else:
        lines.append("- Plain: trained on the gold labels only (no teacher)")

    def fact(key: str) -> str:
        return str(facts.get(key, "not recorded"))

    sentences = "all of the train split" if facts.get("max_sentences") is None else facts["max_sentences"]
    profile, inferred = names.profile_of(results) if results else (None, False)
    lines += [f"- Epochs {fact('epochs')}, learning rate {fact('learning_rate')}, batch size {fact('batch_size')}, "
              f"hidden size {fact('hidden_size')}",
              f"- Embeddings: `{results.get('embeddings') or card.get('embeddings') or 'not recorded'}` (fastText; "
              f"out-of-vocabulary words: {facts.get('oov', 'subword')})",
              f"- Sentences: {sentences}"]
    if profile:
        lines.append(f"- Profile: {profile}" + (" (inferred from the settings)" if inferred else ""))
    return lines


def _speed_lines(model_path: Path, results: dict, bench_root: Path) -> list[str]:
    """Tokens/s measured after training (results.json) and by the benchmark (bench.json), or "not measured"."""
    lines = []
    cost = results.get("cost") or {}
    if cost.get("tokens_per_second"):
        threads = (results.get("settings") or {}).get("threads", "?")
        machine = results.get("machine") or "an unrecorded machine"
        lines.append(f"- {cost['tokens_per_second']:,.0f} tokens/s: the Flair model in float32, {threads} threads, "
                     f"measured after training on {machine} (results.json)")
    for row in _bench_rows(model_path, bench_root):
        lines.append(f"- {row['tokens_per_second']:,} tokens/s: variant {row.get('variant')}, {row.get('threads')} "
                     f"thread(s), on {row.get('machine')} ({row['file']}, {row.get('created')})")
    return lines or ["- tokens/s: not measured"]


def model_card(model_path: Path, card: dict, sha256: str, folder_name: str = "FOLDER",
               bench_root: Path = Path("results")) -> str:
    """MODEL.md of an export: what the model is, how it was trained, how well and fast it tags, and the safety note.

    Numbers come from the run's results.json beside the model file (written by `swener train`)
    and the bench files that measured it; what is not recorded there is said to be so.
    """
    results_path = model_path.with_name(runs.RESULTS_FILE)
    results = (names._read_json(results_path) if results_path.is_file() else None) or {}
    facts = {**card, **(results.get("settings") or {})}  # results.json's settings, else the card in the model
    corpus = results.get("corpus") or card.get("corpus")
    kd = runs.mode_of(facts) == "kd"
    licence = names._licence(corpus) or card.get("corpus_licence") or "not recorded"
    source = f"`{results_path}`" if results else "the model's own card (no results.json beside the model)"
    scores = results.get("scores") or {f"{corpus}/{split}": {"micro_f1": card.get(f"{split}_f1")}
                                       for split in ("dev", "test")}
    lines = [f"# {facts.get('family') or 'unknown'} ({'knowledge distillation' if kd else 'plain'}): "
             "a swener Swedish NER tagger", "",
             f"Exported by `swener export` on {time.strftime('%Y-%m-%d', time.gmtime())} from `{model_path}` "
             f"(sha256 {sha256[:16]}...). Tag with `swener tag {folder_name} FILE`: it needs numpy and "
             "onnxruntime, not torch or Flair.", "",
             "## Safety", "",
             f"No file in this folder is code or a Python pickle: `{MODEL_FILE}` is an ONNX graph, `{VECTORS_FILE}` "
             f"holds plain number arrays (read with `allow_pickle=False`), `{CONFIG_FILE}` and this card are text. "
             "`swener tag` refuses an export folder in which a pickle was put (a .pt, .pkl, .pickle, ... file, "
             "or arrays of Python objects). Share this folder rather than the `.pt` file: a `.pt` file is a "
             "pickle, and loading one (Flair, `torch.load`) runs any code it holds.", "",
             "## Data", "",
             f"- Corpus: {corpus or 'not recorded'}, licence {licence}",
             f"- Entity types: {', '.join(card.get('types') or []) or 'not recorded'}", "",
             "## Training", "", *_training_lines(facts, results, card, kd), "",
             "## Scores", "", f"Strict IOB2 micro F1, from {source}.", "", "| data | micro F1 |", "|---|---|",
             *(f"| {name} | {_f1(row.get('micro_f1'))} |" for name, row in scores.items() if isinstance(row, dict)),
             "", "## Speed", "", *_speed_lines(model_path, results, bench_root), "",
             "## Teacher", "",
             *(_teacher_lines(model_path, card, results, corpus) if kd
               else ["- None: a plain model learns from no teacher"])]
    return "\n".join(lines) + "\n"
