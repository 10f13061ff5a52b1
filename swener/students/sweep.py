"""Dev sweeps of the KD recipe: one factor at a time around a base recipe, scored on dev only.

Each trial is one student run in `<root>/<family>/<trial name>/` (a finished trial is read
back, not trained again); every trial's settings, dev F1 (micro and per type), epochs and
minutes go into one table, a JSON file with a Markdown twin, rewritten after each trial.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from swener import config
from swener.atomic import write_json
from swener.errors import SwenerError
from swener.files import text_name
from swener.runs import RESULTS_FILE, StudentResults

log = logging.getLogger("swener")


@dataclass(frozen=True)
class Trial:
    """The settings of one sweep run that differ between trials."""

    family: str
    alpha: float
    alpha_end: float | None
    temperature: float
    kd_target: str
    transfer_text: str | None
    transfer_sentences: int | None
    seed: int
    epochs: int
    updates: int | None = None
    hidden_size: int = 256
    transfer_ratio: float | None = config.TRANSFER_RATIO  # None: the whole transfer set every epoch

    @property
    def name(self) -> str:
        """The trial's folder name: every setting in it, so two trials never share a folder."""
        budget = (f"u{self.updates}" if self.updates else f"ep{self.epochs}") + f"-h{self.hidden_size}"
        if self.alpha == 0 and not self.alpha_end:
            return f"plain-{budget}-s{self.seed}"
        alpha = f"a{self.alpha:g}" + (f"to{self.alpha_end:g}" if self.alpha_end is not None else "")
        transfer = "" if not self.transfer_text else \
            f"-tr{text_name(self.transfer_text)}{self.transfer_sentences or 'all'}" + (
                f"r{self.transfer_ratio:g}" if self.transfer_ratio is not None else "")
        return f"{alpha}-T{self.temperature:g}-{self.kd_target}{transfer}-{budget}-s{self.seed}"


    def settings(self, threads: int, max_sentences: int | None = None):
        """The trial as a dev-only student run (`swener.students.run.StudentSettings`)."""
        from swener.students.run import StudentSettings

        return StudentSettings(family=self.family, alpha=self.alpha, alpha_end=self.alpha_end,
                               temperature=self.temperature, kd_target=self.kd_target,
                               transfer_text=self.transfer_text, transfer_sentences=self.transfer_sentences,
                               transfer_ratio=self.transfer_ratio, seed=self.seed, epochs=self.epochs,
                               updates=self.updates, hidden_size=self.hidden_size, threads=threads,
                               max_sentences=max_sentences, dev_only=True)


FACTORS = ("alpha", "alpha_end", "temperature", "kd_target", "transfer_text", "transfer_sentences",
           "transfer_ratio", "epochs", "updates", "hidden_size")


def parse_factor(text: str) -> tuple[str, list]:
    """`alpha=0.1,0.3` -> ("alpha", [0.1, 0.3]); `none` is None; a clear error for unknown names."""
    name, _, values = text.partition("=")
    if name not in FACTORS or not values:
        raise SwenerError(f"--vary {text!r}: write NAME=V1,V2,... with NAME one of {', '.join(FACTORS)}")
    kind = {"alpha": float, "alpha_end": float, "temperature": float, "kd_target": str, "transfer_text": str,
            "transfer_sentences": int, "transfer_ratio": float, "epochs": int, "updates": int, "hidden_size": int}[name]
    try:
        parsed = [None if v.lower() == "none" else kind(v) for v in values.split(",")]
    except ValueError:
        raise SwenerError(f"--vary {text!r}: {name} takes {kind.__name__} values") from None
    return name, parsed


def base_trial(family: str, recipe: config.Recipe, alpha: tuple[float, float | None] | None = None,
               temperature: float | None = None, kd_target: str | None = None, transfer_text: str | None = None,
               transfer_sentences: int | None = None, **run: object) -> Trial:
    """The sweep's base: the KD values given, else the family's recipe; `run`: seed, epochs, updates."""
    start, end = alpha or (recipe.alpha, recipe.alpha_end)
    return Trial(family=family, alpha=start, alpha_end=end,
                 temperature=temperature if temperature is not None else recipe.temperature,
                 kd_target=kd_target or recipe.kd_target, transfer_text=transfer_text or recipe.transfer_text,
                 transfer_sentences=transfer_sentences if transfer_sentences is not None else recipe.transfer_sentences,
                 **run)


def one_factor_trials(base: Trial, factors: Sequence[tuple[str, list]], seeds: Sequence[int],
                      plain: bool = True) -> list[Trial]:
    """The plain run and the base recipe per seed, then each factor's values with the rest at the base."""
    trials: list[Trial] = []
    for seed in seeds:
        seeded = dataclasses.replace(base, seed=seed)
        if plain:
            trials.append(dataclasses.replace(seeded, alpha=0.0, alpha_end=None, transfer_text=None,
                                              transfer_sentences=None, updates=None))
        trials.append(seeded)
        for name, values in factors:
            trials += [dataclasses.replace(seeded, **{name: value}) for value in values]
    unique: dict[str, Trial] = {}
    for trial in trials:
        if trial.transfer_text is None:  # a size without a text means nothing
            trial = dataclasses.replace(trial, transfer_sentences=None)
        config.Recipe(alpha=trial.alpha, alpha_end=trial.alpha_end, temperature=trial.temperature,
                      kd_target=trial.kd_target)  # checks the values before anything trains
        unique.setdefault(trial.name, trial)
    return list(unique.values())


def run_sweep(trials: Sequence[Trial], corpus: str, embeddings: Path, soft_dir: Path, root: Path, table: Path,
              threads: int = 2, max_sentences: int | None = None) -> list[dict]:
    """Train (or read back) each trial on dev only and keep the table up to date; returns its rows."""
    from swener.students.run import train_student

    rows = {row_key(row): row for row in read_table(table)}  # one table may hold several teachers' trials
    teacher, teacher_f1 = Path(soft_dir).name, teacher_dev_f1(soft_dir)
    for number, trial in enumerate(trials, 1):
        out = root / trial.family / trial.name
        results_path = out / RESULTS_FILE
        started = time.perf_counter()
        if results_path.exists():
            results = StudentResults.read(results_path).to_dict()
        else:
            results = train_student(trial.settings(threads, max_sentences), corpus, embeddings, soft_dir, out)
        rows[(teacher, trial.name)] = row = table_row(trial, results, corpus, teacher_f1)
        write_table(table, sorted(rows.values(), key=lambda r: (r["family"], str(r.get("teacher")), r["name"])))
        log.info("sweep %d/%d %s %s: dev F1 %.4f (%.1f min%s)", number, len(trials), trial.family, trial.name,
                 row["dev_f1"], row["minutes"], ", read back" if time.perf_counter() - started < 5 else "")
    return [rows[(teacher, t.name)] for t in trials]


def row_key(row: dict) -> tuple[str | None, str]:
    """A table row's identity: its teacher (soft-label folder name) and trial name."""
    return row.get("teacher"), row["name"]


def teacher_dev_f1(soft_dir: Path) -> float | None:
    """The best dev F1 on the learning curve of the teacher behind a soft-label folder (None if not found)."""
    from swener.kd import softlabels

    try:
        teacher_path = Path(softlabels.read(Path(soft_dir) / "train.npz").header.get("teacher_path", ""))
        curve = json.loads((teacher_path.parent / "learning_curve.json").read_text())
        return max(float(epoch["dev_f1"]) for epoch in curve)
    except (SwenerError, OSError, ValueError, KeyError, TypeError):
        return None


def table_row(trial: Trial, results: dict, corpus: str, teacher_f1: float | None = None) -> dict:
    """One trial's line: its settings, dev F1 (micro and per type), epochs, minutes of training, and its teacher
    (the soft-label folder's name and the teacher's dev F1, for plain trials too: the sweep they belong to)."""
    dev = results["scores"][f"{corpus}/dev"]
    training = results.get("training", {})
    soft = results.get("soft_labels")
    return {"name": trial.name, **dataclasses.asdict(trial), "dev_f1": dev["micro_f1"],
            "dev_per_type": {kind: row["f1-score"] for kind, row in dev.get("per_type", {}).items()},
            "epochs_run": results.get("epochs", trial.epochs), "minutes": training.get("train_seconds", 0.0) / 60,
            "train_sentences": training.get("train_sentences"), "machine": results.get("machine"),
            "teacher": Path(soft).name if soft else None, "teacher_dev_f1": teacher_f1}


def _f1(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def read_table(table: Path) -> list[dict]:
    """The rows of a sweep table (none if it does not exist yet)."""
    if not table.exists():
        return []
    try:
        return json.loads(table.read_text())["trials"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise SwenerError(f"{table}: not a sweep table ({err}); move it away or fix it") from None


def write_table(table: Path, rows: list[dict]) -> None:
    """The table as JSON and as Markdown (same stem, .md)."""
    write_json(table, {"about": "KD recipe sweep on dev (swener sweep); dev scores only", "trials": rows})
    types = sorted({kind for row in rows for kind in row["dev_per_type"]})
    lines = ["| family | trial | alpha | T | target | transfer | seed | epochs | dev F1 | "
             + " | ".join(types) + " | min | teacher dev F1 |", "|" + "---|" * (11 + len(types))]
    for r in rows:
        transfer = f"{text_name(r['transfer_text'])} {r['transfer_sentences'] or 'all'}" \
            if r["transfer_text"] else "-"
        alpha = f"{r['alpha']:g}" + (f"->{r['alpha_end']:g}" if r["alpha_end"] is not None else "")
        per_type = " | ".join(f"{r['dev_per_type'][k]:.3f}" if k in r["dev_per_type"] else "-" for k in types)
        lines.append(f"| {r['family']} | {r['name']} | {alpha} | {r['temperature']:g} | {r['kd_target']} | "
                     f"{transfer} | {r['seed']} | {r['epochs_run']} | {r['dev_f1']:.4f} | {per_type} | "
                     f"{r['minutes']:.1f} | {_f1(r.get('teacher_dev_f1'))} |")
    tmp = table.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(table.with_suffix(".md"))
