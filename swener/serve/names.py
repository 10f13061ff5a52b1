"""Finding and loading trained taggers: by path, or by the short name of a model the Makefile trained.

Short names: `FAMILY` (a family of `swener.config.FAMILIES`: bilstm-crf, bilstm, cnn, ...) is the KD student
of that family from the latest full run (max_sentences null), the best seed on dev; `FAMILY-plain` the
same without KD; `teacher` the latest full teacher. Without a full run the latest run is
used, with a note on stderr. Listing reads the results.json / training.json files beside
the models, never the models themselves, so it is quick.
"""
from __future__ import annotations

import logging
import os
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from swener import config, runs
from swener.errors import DataError, SwenerError
from swener.files import read_json

log = logging.getLogger("swener")

FAMILIES: tuple[str, ...] = tuple(config.FAMILIES)
SHORT_NAMES: tuple[str, ...] = (*FAMILIES, *(f"{f}-plain" for f in FAMILIES), "teacher")


def models_dir() -> Path:
    """Where the Makefile puts trained models: $SWENER_MODELS, else ./models."""
    return Path(os.environ.get("SWENER_MODELS", "models"))


@dataclass
class ModelEntry:
    """One trained model as its results file describes it (the key facts of its model card)."""

    name: str  # the short name it answers to: "bilstm-crf", "cnn-plain", "teacher"
    path: Path  # its best-model.pt
    run: Path  # the settings folder shared by the seeds of one run
    family: str
    corpus: str | None
    max_sentences: int | None
    seed: int | None
    alpha: float | None = None
    temperature: float | None = None
    dev_f1: float | None = None
    test_f1: float | None = None
    licence: str | None = None
    teacher: str | None = None
    written: float = 0.0  # mtime of the results file
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        """Trained on whole corpus splits (not a quick run)."""
        return self.max_sentences is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts."""
        data = asdict(self)
        data.update(path=str(self.path), run=str(self.run), full=self.full)
        data.pop("written")
        return data


def _read_json(path: Path) -> dict | None:
    try:
        data = read_json(path, "unreadable", "skipped")
    except DataError as err:
        log.warning("%s", err)
        return None
    return data if isinstance(data, dict) else None


def _licence(corpus: str | None) -> str | None:
    from swener.data.corpora import REGISTRY

    source = REGISTRY.get(corpus or "")
    return source.licence if source else None


def _dev_test(scores: dict, corpus: str | None) -> tuple[float | None, float | None]:
    def f1(split: str) -> float | None:
        row = scores.get(f"{corpus}/{split}")
        if row is None:  # results without a corpus field: the first score of that split
            row = next((v for k, v in scores.items() if k.endswith(f"/{split}")), None)
        return float(row["micro_f1"]) if isinstance(row, dict) and "micro_f1" in row else None

    return f1("dev"), f1("test")


def _teacher_id(soft_dir: str | None) -> str | None:
    """The teacher of a KD student, as the last two parts of its soft-label folder (corpus/settings)."""
    if not soft_dir:
        return None
    parts = Path(soft_dir).parts
    return "/".join(parts[-2:])


def student_entries(family: str, kind: str, root: Path | None = None) -> list[ModelEntry]:
    """Every trained student of a family, kind "kd" or "plain", with a results.json and a best-model.pt."""
    entries = []
    for results_path in runs.find_results(root or models_dir(), family=family, mode=kind):
        model = results_path.parent / runs.MODEL_FILE
        try:
            results = runs.StudentResults.read(results_path)
        except DataError as err:
            log.warning("%s (skipped)", err)
            continue
        if not model.is_file():
            continue
        settings = results.settings
        corpus = results.corpus or settings.get("corpus")
        dev, test = _dev_test(results.scores, corpus)
        soft = results.soft_labels
        entries.append(ModelEntry(
            name=family if kind == "kd" else f"{family}-plain", path=model, run=results_path.parent.parent,
            family=settings.get("family", family), corpus=corpus, max_sentences=settings.get("max_sentences"),
            seed=settings.get("seed"), alpha=settings.get("alpha"), temperature=settings.get("temperature"),
            dev_f1=dev, test_f1=test, licence=_licence(corpus), teacher=_teacher_id(soft),
            written=results_path.stat().st_mtime))
    return entries


def teacher_entries(root: Path | None = None) -> list[ModelEntry]:
    """Every trained teacher (models/teacher/<corpus>/<settings>/best-model.pt with training.json)."""
    base = (root or models_dir()) / "teacher"
    entries = []
    for training_path in sorted(base.glob("*/*/training.json")) if base.is_dir() else []:
        model = training_path.parent / "best-model.pt"
        if training_path.parent.suffix in (".partial", ".old"):  # a run being trained or swapped in
            continue
        training = _read_json(training_path)
        if training is None or not model.is_file():
            continue
        corpus = training_path.parent.parent.name
        scored = training_path.with_name("teacher.json")  # written by `swener teacher evaluate`
        scores = (_read_json(scored) or {}).get("scores", {}) if scored.is_file() else {}
        dev, test = _dev_test(scores, corpus)
        entries.append(ModelEntry(name="teacher", path=model, run=training_path.parent, family="transformer",
                                  corpus=corpus, max_sentences=training.get("max_sentences"),
                                  seed=training.get("seed"), dev_f1=dev, test_f1=test, licence=_licence(corpus),
                                  written=training_path.stat().st_mtime,
                                  extra={"epochs": training.get("epochs")}))
    return entries


def entries_for(name: str, root: Path | None = None) -> list[ModelEntry]:
    """All trained models a short name could mean."""
    if name == "teacher":
        return teacher_entries(root)
    family, kind = (name[: -len("-plain")], "plain") if name.endswith("-plain") else (name, "kd")
    return student_entries(family, kind, root)


def choose(entries: list[ModelEntry]) -> tuple[ModelEntry | None, bool]:
    """The best seed on dev of the latest full run (else of the latest run); and whether it is a full run."""
    if not entries:
        return None, False
    runs: dict[Path, list[ModelEntry]] = {}
    for entry in entries:
        runs.setdefault(entry.run, []).append(entry)
    full = {run: seeds for run, seeds in runs.items() if all(e.full for e in seeds)}
    pool = full or runs
    latest = max(pool.values(), key=lambda seeds: max(e.written for e in seeds))
    best = max(latest, key=lambda e: (e.dev_f1 if e.dev_f1 is not None else -1.0, -(e.seed or 0)))
    return best, bool(full)


def resolve(model: str, root: Path | None = None, note: Callable[[str], None] | None = None) -> Path:
    """The model file that MODEL (a path or a short name) stands for."""
    path = Path(model)
    if path.is_file() or (path.is_dir() and (path / "best-model.pt").is_file()) or model not in SHORT_NAMES:
        return path
    entry, full = choose(entries_for(model, root))
    where = root or models_dir()
    if entry is None:
        raise SwenerError(f"{model}: no trained model of that name under {where}/; train it first "
                          "(make students / make teacher), or give the path of a .pt file")
    if not full:
        (note or _note)(f"no full run of {model} under {where}/; using the latest run, {entry.run.name} "
                        f"(max_sentences={entry.max_sentences})")
    return entry.path


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def available(root: Path | None = None) -> list[tuple[ModelEntry, bool]]:
    """For `swener models`: per short name, the model it resolves to and whether it is from a full run."""
    found = []
    for name in SHORT_NAMES:
        entry, full = choose(entries_for(name, root))
        if entry is not None:
            found.append((entry, full))
    return found


ENGINES: tuple[str, ...] = ("auto", "flair", "onnx")
PRECISIONS: tuple[str, ...] = ("float32", "bf16", "int8")


def load_tagger(model: str, engine: str = "auto", precision: str = "float32", threads: int = 1):
    """Load a tagger from a .pt file, a folder with best-model.pt, an export folder or a short name.

    engine "auto" runs an export folder (`swener export`) with ONNX Runtime and anything else
    with Flair; "onnx" also finds the export beside a .pt file; "flair" never uses ONNX.
    precision (Flair students only): "bf16" predicts under bfloat16 autocast, "int8" applies
    dynamic int8 quantisation (`swener.serve.quantize`). A missing file or a file that is not a
    tagger is a clear SwenerError.
    """
    if engine not in ENGINES:
        raise SwenerError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if precision not in PRECISIONS:
        raise SwenerError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    path = resolve(model)
    if engine != "flair":
        from swener.serve.onnx import OnnxTagger, default_folder, is_export

        folder = path if is_export(path) else None
        if folder is None and engine == "onnx":
            if path.is_dir() and (path / "best-model.pt").is_file():
                path = path / "best-model.pt"
            if not is_export(default_folder(path)):
                raise SwenerError(f"{model}: no exported model at {default_folder(path)}; "
                                  f"run `swener export {model}` first")
            folder = default_folder(path)
        if folder is not None:
            if precision != "float32":
                raise SwenerError(f"{folder}: an exported model runs in float32; --precision is for .pt students")
            return OnnxTagger(folder, threads=threads)
    tagger = _load_flair(model, path)
    if precision != "float32":
        from swener.serve.quantize import apply_precision

        tagger = apply_precision(tagger, precision, path)
    return tagger


def _load_flair(model: str, path: Path):
    """A flair tagger from a resolved path (a file, or a folder with best-model.pt)."""
    if path.is_dir() and (path / "best-model.pt").is_file():
        path = path / "best-model.pt"
    if not path.is_file():
        hint = f"; short names are {', '.join(SHORT_NAMES)}" if os.sep not in model and "." not in model else ""
        raise SwenerError(f"{model}: no such model file; give the path of a trained tagger (.pt){hint}")
    from swener.serve.quantize import INT8_SUFFIX

    if path.name.endswith(INT8_SUFFIX) and zipfile.is_zipfile(path):
        from swener.serve.quantize import load_int8

        return load_int8(path)
    import swener.students.tagger  # noqa: F401  (StudentTagger: Flair finds a saved model's class by name)
    import swener.teacher.model  # noqa: F401  (TeacherTagger)
    import swener.vectors.embeddings  # noqa: F401  (CompactFastTextEmbeddings)
    from swener.train.saved import load_flair

    return load_flair(path)


def listing(show_all: bool = False, root: Path | None = None) -> list[tuple[ModelEntry, bool, bool]]:
    """`swener models`: (entry, from a full run, picked by its short name) per model (all of them with show_all)."""
    picked = available(root)
    if not show_all:
        return [(e, full, True) for e, full in picked]
    chosen = {e.path for e, _ in picked}
    return [(e, e.full, e.path in chosen) for name in SHORT_NAMES for e in entries_for(name, root)]


def table(rows: list[tuple[ModelEntry, bool, bool]], show_all: bool = False) -> list[str]:
    """The lines of `swener models` (a * marks the picked model when every model is listed)."""
    if not rows:
        return [f"no trained models under {models_dir()}/ (train them with make students / make teacher)"]

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"  {'name':17s} {'corpus':16s} {'run':10s} {'seed':>4s} {'alpha':>5s} {'T':>4s} {'dev F1':>7s} "
             f"{'test F1':>7s}  {'licence':12s} path"]
    for e, full, is_picked in rows:
        run = "full" if full else f"n={e.max_sentences}"
        lines.append(f"{'*' if is_picked and show_all else ' '} {e.name:17s} {e.corpus or '-':16s} {run:10s} "
                     f"{e.seed if e.seed is not None else '-':>4} {num(e.alpha, '.2g'):>5s} "
                     f"{num(e.temperature, '.2g'):>4s} {num(e.dev_f1, '.4f'):>7s} {num(e.test_f1, '.4f'):>7s}  "
                     f"{e.licence or '-':12s} {e.path}")
        if e.teacher:
            lines.append(f"{'':20s}teacher: {e.teacher}")
    if not all(full for _, full, _ in rows):
        lines.append("(n=...: a quick run; a short name picks a full run when there is one)")
    return lines
