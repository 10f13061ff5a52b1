"""A trained run on disk: the folder layout and the schema of a student's results.json, in one module.

Layout (the Makefile names the settings folder; `swener train --out` is the seed folder):

    models/<family>/<plain|kd>/<settings>/seed-N/   best-model.pt, results.json, training.json
    models/teacher/<corpus>/<settings>/             best-model.pt, training.json, teacher.json

A run is trained in `seed-N.partial/` and swapped in through `seed-N.old/` (swener.train.fit);
those folders are never read as runs. `StudentResults` is what a student's results.json holds:
written by swener.students.run, read by the report (swener.report), the model names
(swener.serve.names) and through them the benchmarks (swener.serve.bench).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from swener.atomic import write_json
from swener.errors import DataError
from swener.files import read_json

MODEL_FILE = "best-model.pt"
RESULTS_FILE = "results.json"
TRAINING_FILE = "training.json"
TEACHER_FILE = "teacher.json"
MODES = ("plain", "kd")
PROFILES = ("quick", "full")  # the Makefile's QUICK=1 and default run, recorded in results.json
TEACHER_DIR = "teacher"


def run_dir(models: Path, family: str, mode: str, settings: str, seed: int) -> Path:
    """models/<family>/<mode>/<settings>/seed-<seed>."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return Path(models) / family / mode / settings / f"seed-{seed}"


def is_seed_dir(path: Path) -> bool:
    """A finished seed folder (seed-N), not one being trained or swapped in (seed-N.partial, seed-N.old)."""
    return path.name.startswith("seed-") and path.name[5:].isdigit()


def find_results(models: Path, match: Sequence[str] = (), family: str = "*", mode: str = "*") -> list[Path]:
    """Students' results.json files under the layout, whose paths contain every `match` string."""
    found = sorted(Path(models).glob(f"{family}/{mode}/*/seed-*/{RESULTS_FILE}"))
    return [p for p in found if p.parts[-5] != TEACHER_DIR and is_seed_dir(p.parent)
            and all(m in str(p) for m in match)]


def mode_of(settings: dict) -> str:
    """"kd" if any epoch of the run has a KD term, else "plain"."""
    kd = float(settings.get("alpha") or 0) > 0 or float(settings.get("alpha_end") or 0) > 0
    return "kd" if kd else "plain"


@dataclass
class StudentResults:
    """A student's results.json.

    settings: the run's StudentSettings (family, seed, alpha, temperature, kd_target, epochs, ...);
    scores: "<corpus>/<split>" -> the scorer's numbers (micro_f1, macro_f1, per type);
    counts: "<corpus>/<test split>" -> per-sentence [true positives, predicted, gold] rows (the bootstrap's input);
    errors: "<corpus>/<test split>" -> where each gold entity went, per type (`swener.eval.scoring.error_breakdown`);
    cost: parameters, size, tokens/s, latency, memory measured after training; training: training.json.
    """

    settings: dict
    corpus: str
    scores: dict
    counts: dict
    cost: dict
    embeddings: str | None = None
    soft_labels: str | None = None
    transfer: dict | None = None
    machine: str | None = None
    training: dict = field(default_factory=dict)
    oov_entities: dict | None = None
    errors: dict | None = None
    extra: dict = field(default_factory=dict)  # keys written by other versions, kept as they were

    REQUIRED = ("settings", "corpus", "scores", "counts", "cost")

    @property
    def family(self) -> str:
        return str(self.settings["family"])

    @property
    def seed(self) -> int:
        return int(self.settings["seed"])

    @property
    def mode(self) -> str:
        return mode_of(self.settings)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **data}

    def write(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, path: Path | str = RESULTS_FILE) -> StudentResults:
        """Check the required keys; a file without them is a DataError naming it."""
        missing = [k for k in cls.REQUIRED if k not in data] if isinstance(data, dict) else list(cls.REQUIRED)
        if missing or "family" not in data.get("settings", {}) or "seed" not in data.get("settings", {}):
            what = ", ".join(missing) or "settings.family/seed"
            raise DataError(path, f"not a student results file (missing {what})")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: Path) -> StudentResults:
        return cls.from_dict(read_json(path, "cannot read results", "rerun that student"), path)

