"""Finding and loading trained taggers: by path, or by the short name of a model the Makefile trained.

Short names (`swener models` lists them):

- `FAMILY` (a family of `swener.config.FAMILIES`: bilstm-crf, bilstm, cnn, ...): the model of that
  family with the best dev F1 over everything trained for it, plain and KD, every settings
  folder and seed;
- `FAMILY-kd`, `FAMILY-plain`: the same over its KD runs only, or its plain runs only;
- `teacher`: the teacher with the best dev F1 (from `swener teacher evaluate`; else the latest).

Dev F1 is compared only between like runs: runs on whole corpus splits when there are any
(a run on a slice was scored on a slice of dev), and runs on the default corpus when the
candidates span several corpora. Resolving a short name says on stderr, in one line, which
model it picked. Listing reads the results.json / training.json files beside the models,
never the models themselves, so it is quick.

The profile of a run (`quick` for QUICK=1, else `full`) is what `swener train --profile` wrote
into results.json (the Makefile passes it). Runs from before that are inferred from the quick
profile's marks (`profile_of`), and shown as inferred.
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
KINDS: tuple[str, ...] = ("kd", "plain")  # the explicit suffixes: FAMILY-kd, FAMILY-plain
SHORT_NAMES: tuple[str, ...] = (*FAMILIES, *(f"{f}-{k}" for f in FAMILIES for k in KINDS), "teacher")
PROFILES: tuple[str, ...] = runs.PROFILES


def models_dir() -> Path:
    """Where the Makefile puts trained models: $SWENER_MODELS, else ./models."""
    return Path(os.environ.get("SWENER_MODELS", "models"))


@dataclass
class ModelEntry:
    """One trained model as its results file describes it (the key facts of its model card)."""

    name: str  # its explicit short name: "bilstm-crf-kd", "cnn-plain", "teacher"
    kind: str  # "kd", "plain" or "teacher"
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
    profile: str | None = None  # "quick" or "full"
    profile_inferred: bool = False  # not written by training: inferred from the settings (`profile_of`)
    written: float = 0.0  # mtime of the results file
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def whole_splits(self) -> bool:
        """Trained and scored on whole corpus splits (max_sentences not set)."""
        return self.max_sentences is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts."""
        data = asdict(self)
        data.update(path=str(self.path), run=str(self.run), whole_splits=self.whole_splits)
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


def profile_of(results: dict) -> tuple[str | None, bool]:
    """The profile that made a student run (from its results.json), and whether it was inferred.

    A results.json written by `swener train --profile P` records P. For one without, the quick
    profile is recognised by its marks in swener.config: fastText vectors trained on a sample
    of the raw text (QUICK_EMB_SAMPLE: an embeddings folder named `*-sample*`) or
    QUICK_STUDENT_EPOCHS epochs; any other run is `full`.
    """
    recorded = results.get("profile")
    if recorded in PROFILES:
        return recorded, False
    settings = results.get("settings") or {}
    embeddings = Path(str(results.get("embeddings") or "")).name
    quick = "-sample" in embeddings or settings.get("epochs") == config.QUICK_STUDENT_EPOCHS
    return ("quick" if quick else "full"), True


def teacher_profile_of(training: dict) -> tuple[str | None, bool]:
    """The profile of a teacher from its training.json: recorded, else QUICK_TEACHER_EPOCHS epochs is quick."""
    recorded = training.get("profile")
    if recorded in PROFILES:
        return recorded, False
    return ("quick" if training.get("epochs") == config.QUICK_TEACHER_EPOCHS else "full"), True


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
        profile, inferred = profile_of(results.to_dict())
        entries.append(ModelEntry(
            name=f"{family}-{kind}", kind=kind, path=model, run=results_path.parent.parent,
            family=settings.get("family", family), corpus=corpus, max_sentences=settings.get("max_sentences"),
            seed=settings.get("seed"), alpha=settings.get("alpha"), temperature=settings.get("temperature"),
            dev_f1=dev, test_f1=test, licence=_licence(corpus), teacher=_teacher_id(results.soft_labels),
            profile=profile, profile_inferred=inferred, written=results_path.stat().st_mtime))
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
        scores = teacher_scores(training_path.parent)
        dev, test = _dev_test(scores, corpus)
        profile, inferred = teacher_profile_of(training)
        entries.append(ModelEntry(name="teacher", kind="teacher", path=model, run=training_path.parent,
                                  family="transformer", corpus=corpus, max_sentences=training.get("max_sentences"),
                                  seed=training.get("seed"), dev_f1=dev, test_f1=test, licence=_licence(corpus),
                                  profile=profile, profile_inferred=inferred,
                                  written=training_path.stat().st_mtime, extra={"epochs": training.get("epochs")}))
    return entries


def teacher_scores(folder: Path) -> dict:
    """The scores in a teacher folder's teacher.json (written by `swener teacher evaluate`); {} without one."""
    scored = folder / runs.TEACHER_FILE
    return (_read_json(scored) or {}).get("scores", {}) if scored.is_file() else {}


def parse_name(name: str) -> tuple[str, tuple[str, ...]] | None:
    """A short name as (family or "teacher", the kinds it covers); None if it is not one."""
    if name == "teacher":
        return "teacher", ("teacher",)
    if name in FAMILIES:
        return name, KINDS
    for kind in KINDS:
        if name.endswith(f"-{kind}") and name[: -len(kind) - 1] in FAMILIES:
            return name[: -len(kind) - 1], (kind,)
    return None


def entries_for(name: str, root: Path | None = None) -> list[ModelEntry]:
    """All trained models a short name could mean ([] for a name that is not a short name)."""
    parsed = parse_name(name)
    if parsed is None:
        return []
    family, kinds = parsed
    if family == "teacher":
        return teacher_entries(root)
    return [e for kind in kinds for e in student_entries(family, kind, root)]


def comparable(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The entries whose dev F1 can be compared: on whole splits if any are, on one corpus (the default if present)."""
    pool = [e for e in entries if e.whole_splits] or list(entries)
    corpora = {e.corpus for e in pool}
    if len(corpora) > 1:
        keep = config.DEFAULT_CORPUS if config.DEFAULT_CORPUS in corpora else \
            max(corpora, key=lambda c: (sum(e.corpus == c for e in pool), str(c)))
        pool = [e for e in pool if e.corpus == keep]
    return pool


def _rank(entry: ModelEntry) -> tuple:
    """Best dev F1 first; a model without one last; ties: the newer, then the lower seed."""
    return (entry.dev_f1 is not None, entry.dev_f1 or 0.0, entry.written, -(entry.seed or 0))


def choose(entries: list[ModelEntry]) -> tuple[ModelEntry | None, int]:
    """The entry with the best dev F1 among the comparable ones, and how many it was chosen from."""
    pool = comparable(entries)
    if not pool:
        return None, 0
    return max(pool, key=_rank), len(pool)


def pick_line(name: str, entry: ModelEntry, among: int, total: int) -> str:
    """The one stderr line that says which model a short name picked."""
    dev = "no dev F1" if entry.dev_f1 is None else f"dev F1 {entry.dev_f1:.4f}"
    scope = "" if name == "teacher" else (f" {entry.family}" if parse_name(name)[1] == KINDS
                                          else f" {entry.family} {entry.kind}")
    left = f"; {total - among} not comparable (a slice or another corpus)" if total > among else ""
    profile = f"{entry.profile} profile{' (inferred)' if entry.profile_inferred else ''}"
    return (f"{name}: {entry.path} ({entry.kind}, {profile}, {dev}; best on dev of {among}{scope} "
            f"model{'s' if among != 1 else ''}{left})")


def resolve(model: str, root: Path | None = None, note: Callable[[str], None] | None = None) -> Path:
    """The model file that MODEL (a path or a short name) stands for; a short name's pick is told to `note`."""
    path = Path(model)
    if path.is_file() or (path.is_dir() and (path / "best-model.pt").is_file()) or parse_name(model) is None:
        return path
    entries = entries_for(model, root)
    entry, among = choose(entries)
    if entry is None:
        raise SwenerError(f"{model}: no trained model of that name under {root or models_dir()}/; train it first "
                          "(make students / make teacher), or give the path of a .pt file or an export folder")
    (note or _note)(pick_line(model, entry, among, len(entries)))
    return entry.path


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def available(root: Path | None = None) -> list[tuple[str, ModelEntry]]:
    """For `swener models`: each family's short name and the teacher, with the model it picks."""
    found = []
    for name in (*FAMILIES, "teacher"):
        entry, _ = choose(entries_for(name, root))
        if entry is not None:
            found.append((name, entry))
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
        hint = (f"; short names are {', '.join(FAMILIES)} (each also as FAMILY-kd or FAMILY-plain) and teacher "
                "(see `swener models`)") if os.sep not in model and "." not in model else ""
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


def listing(show_all: bool = False, root: Path | None = None) -> list[tuple[str, ModelEntry, bool]]:
    """`swener models`: (name shown, entry, picked by a short name) per family and the teacher, or every model."""
    picked = available(root)
    if not show_all:
        return [(name, e, True) for name, e in picked]
    chosen = {e.path for _, e in picked}
    every = [e for f in FAMILIES for kind in KINDS for e in student_entries(f, kind, root)] + teacher_entries(root)
    return [(e.name, e, e.path in chosen) for e in every]


def table(rows: list[tuple[str, ModelEntry, bool]], show_all: bool = False) -> list[str]:
    """The lines of `swener models` (a * marks the picked model when every model is listed)."""
    if not rows:
        return [f"no trained models under {models_dir()}/ (train them with make students / make teacher)"]

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"  {'name':17s} {'kind':7s} {'corpus':16s} {'profile':12s} {'seed':>4s} {'alpha':>5s} {'T':>4s} "
             f"{'dev F1':>7s} {'test F1':>7s}  {'licence':12s} path"]
    for name, e, is_picked in rows:
        profile = f"{e.profile or '?'}{'~' if e.profile_inferred else ''}"
        if not e.whole_splits:
            profile += f" n={e.max_sentences}"
        temperature = e.temperature if e.kind == "kd" else None  # a plain run has no T
        lines.append(f"{'*' if is_picked and show_all else ' '} {name:17s} {e.kind:7s} {e.corpus or '-':16s} "
                     f"{profile:12s} {e.seed if e.seed is not None else '-':>4} {num(e.alpha, '.2g'):>5s} "
                     f"{num(temperature, '.2g'):>4s} {num(e.dev_f1, '.4f'):>7s} {num(e.test_f1, '.4f'):>7s}  "
                     f"{e.licence or '-':12s} {e.path}")
        if e.teacher:
            lines.append(f"{'':20s}teacher: {e.teacher}")
    if any(e.profile_inferred for _, e, _ in rows):
        lines.append("~: profile inferred from the settings (a run from before `swener train --profile`)")
    if not all(e.whole_splits for _, e, _ in rows):
        lines.append("n=...: trained on a slice of the corpus (max_sentences)")
    if not show_all:
        lines.append("FAMILY: the best on dev over plain and KD runs; FAMILY-kd / FAMILY-plain: over one kind "
                     "(--all lists every model)")
    return lines
