"""The runs of a report: students' results.json files read and paired, plain with KD, by family, settings and seed."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from swener.errors import SwenerError
from swener.runs import StudentResults, mode_of

# settings meaningless for plain runs
KD_ONLY = ("alpha", "alpha_end", "temperature", "kd_target", "transfer_text", "transfer_sentences")


@dataclass
class Run:
    """One trained student as its results.json describes it."""

    path: Path
    corpus: str
    settings: dict
    scores: dict
    counts: dict[str, np.ndarray]
    cost: dict
    training: dict
    embeddings: str | None = None
    soft_labels: str | None = None
    oov_entities: dict | None = None

    @property
    def mode(self) -> str:
        return mode_of(self.settings)

    @property
    def seed(self) -> int:
        return int(self.settings["seed"])


def load_run(path: Path) -> Run:
    """Read one student's results.json (`swener.runs.StudentResults`); a file without its keys is a DataError."""
    data = StudentResults.read(path)
    counts = {name: np.asarray(rows, dtype=np.int64).reshape(-1, 3) for name, rows in data.counts.items()}
    return Run(Path(path), data.corpus, data.settings, data.scores, counts, data.cost, data.training,
               data.embeddings, data.soft_labels, data.oov_entities)


@dataclass
class Comparison:
    """One family's plain runs and KD runs that differ only in the KD settings, paired by seed."""

    family: str
    corpus: str
    settings: dict  # shared by plain and KD: the run settings without seed and KD-only ones
    kd_settings: dict | None  # alpha, temperature, kd_target and soft labels of the KD runs
    plain: dict[int, Run] = field(default_factory=dict)
    kd: dict[int, Run] = field(default_factory=dict)
    label: str = ""

    @property
    def paired_seeds(self) -> list[int]:
        return sorted(set(self.plain) & set(self.kd))

    def runs(self, mode: str) -> dict[int, Run]:
        return self.plain if mode == "plain" else self.kd


def _base_key(run: Run) -> tuple:
    # a setting at None is the one a run from before the setting existed had (e.g. encoder_options)
    shared = {k: v for k, v in run.settings.items() if k not in ("seed", *KD_ONLY) and v is not None}
    return (run.settings["family"], run.corpus, run.embeddings, json.dumps(shared, sort_keys=True))


def _kd_key(run: Run) -> str:
    return json.dumps({**{k: run.settings.get(k) for k in KD_ONLY}, "soft_labels": run.soft_labels}, sort_keys=True)


def collect(results_paths: Iterable[Path]) -> list[Comparison]:
    """Group runs by (family, mode, settings without seed and KD-only settings) and pair plain with KD by seed.

    Each KD setting (alpha, temperature, kd_target, teacher's soft labels) is its own comparison
    against the family's plain runs with otherwise equal settings; a family without KD runs
    gives a comparison with no KD side.
    """
    plain: dict[tuple, dict[int, Run]] = {}
    kd: dict[tuple, dict[str, dict[int, Run]]] = {}
    for path in results_paths:
        run = load_run(path)
        key = _base_key(run)
        if run.mode == "plain":
            group = plain.setdefault(key, {})
        else:
            group = kd.setdefault(key, {}).setdefault(_kd_key(run), {})
        if run.seed in group:
            raise SwenerError(f"two {run.mode} runs of {run.settings['family']} with seed {run.seed} and the same "
                              f"settings: {group[run.seed].path} and {run.path}; remove one or select with --match")
        group[run.seed] = run
    comparisons = []
    for key in sorted(set(plain) | set(kd)):
        family, corpus, embeddings, shared = key
        settings = {**json.loads(shared), "embeddings": embeddings}
        for kd_key, kd_runs in sorted(kd.get(key, {}).items()) or [(None, {})]:
            comparisons.append(Comparison(family, corpus, settings, json.loads(kd_key) if kd_key else None,
                                          plain.get(key, {}), kd_runs))
    _label(comparisons)
    return comparisons


def _label(comparisons: list[Comparison]) -> None:
    """Name each comparison by its family plus whichever settings vary across the report."""
    def flat(c: Comparison) -> dict:
        return {"corpus": c.corpus, **c.settings, **(c.kd_settings or {})}

    rows = [flat(c) for c in comparisons]
    keys = sorted({k for row in rows for k in row} - {"family"})
    varying = [k for k in keys if len({json.dumps(row[k]) for row in rows if row.get(k) is not None}) > 1]
    for comparison, row in zip(comparisons, rows):
        extra = [f"{k}={Path(str(row[k])).name if k in ('embeddings', 'soft_labels', 'transfer_text') else row[k]}"
                 for k in varying if row.get(k) is not None]
        comparison.label = comparison.family + (f" ({', '.join(extra)})" if extra else "")


# ----- the two-level bootstrap -----
