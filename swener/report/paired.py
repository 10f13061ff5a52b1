"""Paired dev tables of a study's sweep trials: each KD trial's dev F1 minus the plain trial's of the same seed.

The studies on dev (out-of-fold teachers, an entity-dense transfer set, the training budget) sweep a few
KD settings over seeds with `make sweep`; these tables pair each KD trial with the plain trial of its
seed and give the mean difference with a t interval over the seeds (`swener study paired`, `swener
study budget`).
"""
from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Callable, Sequence

from swener.errors import SwenerError
from swener.students.sweep import read_table

HEADER = ["| family | KD from | setting | seeds | mean dev F1 | KD - plain, points (per seed) | 95 % t interval |",
          "|---|---|---|---|---|---|---|"]


def t_interval(deltas: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The t interval of the mean of paired differences (None for fewer than 2)."""
    if len(deltas) < 2:
        return None
    from scipy import stats

    half = stats.t.ppf(0.5 + confidence / 2, len(deltas) - 1) * statistics.stdev(deltas) / len(deltas) ** 0.5
    mean = statistics.mean(deltas)
    return mean - half, mean + half


def setting(trial: dict) -> str:
    """A trial's KD setting in words: alpha, target and transfer set."""
    transfer = (f"{Path(trial['transfer_text']).name} {trial['transfer_sentences']}" if trial["transfer_text"]
                else "no transfer")
    return f"alpha {trial['alpha']}, {trial['kd_target']}, {transfer}"


def teacher_source(default: str, by_suffix: dict[str, str] | None = None) -> Callable[[dict], str]:
    """What a KD trial learnt from, in words: `by_suffix` names teachers by how their name ends, else `default`."""
    def source(trial: dict) -> str:
        for suffix, label in (by_suffix or {}).items():
            if str(trial.get("teacher") or "").endswith(suffix):
                return label
        return default
    return source


def rows(trials: list[dict], family: str, source: Callable[[dict], str],
         plain_trials: list[dict] | None = None) -> list[str]:
    """Markdown rows: plain, then per (source, setting) the seeds, mean dev F1, paired difference and interval.

    `plain_trials`: pair with these plain trials (e.g. another budget's) instead of the table's own.
    """
    plain = {t["seed"]: t["dev_f1"] for t in (trials if plain_trials is None else plain_trials)
             if t["name"].startswith("plain-")}
    if not plain:
        raise SwenerError(f"{family}: no plain trials to pair the KD trials with")
    groups: dict[tuple[str, str], dict[int, float]] = {}
    for t in trials:
        if not t["name"].startswith("plain-"):
            groups.setdefault((source(t), setting(t)), {})[t["seed"]] = t["dev_f1"]
    out = [f"| {family} | plain | - | {len(plain)} | {statistics.mean(plain.values()):.4f} | - | - |"]
    for (where, words), f1 in groups.items():
        deltas = [100 * (v - plain[s]) for s, v in f1.items() if s in plain]
        each = ", ".join(f"{d:+.2f}" for d in deltas)
        paired = f"{statistics.mean(deltas):+.2f} ({each})" if deltas else "- (no plain trial of these seeds)"
        bounds = t_interval(deltas)
        interval = f"[{bounds[0]:+.2f}, {bounds[1]:+.2f}]" if bounds else "-"
        out.append(f"| {family} | {where} | {words} | {len(f1)} | {statistics.mean(f1.values()):.4f} | "
                   f"{paired} | {interval} |")
    return out


def _trials(table: Path) -> list[dict]:
    """A sweep table's trials; a missing or empty table is an error naming it."""
    trials = read_table(Path(table))
    if not trials:
        raise SwenerError(f"{table}: no trials (is it a sweep table? `make sweep ... SWEEP_TABLE={table}` writes one)")
    return trials


def paired_summary(tables: Sequence[Path], source: Callable[[dict], str]) -> str:
    """The paired table of sweep tables, one block a table, labelled by its file name (bilstm.json: bilstm)."""
    lines = list(HEADER)
    for table in tables:
        lines += rows(_trials(table), Path(table).stem, source)
    return "\n".join(lines) + "\n"


BUDGET_TABLE = re.compile(r"(?P<family>.+)-ep(?P<epochs>\d+)")


def budget_summary(folder: Path, source: Callable[[dict], str]) -> str:
    """The budget study's table from FOLDER/<family>-ep<N>.json: at equal epochs, then at equal updates.

    At equal epochs a KD run with a transfer set makes twice the updates of its plain pair; a family
    with tables at N and 2N epochs is also compared at equal updates: KD at N against plain at 2N.
    """
    tables = {}
    for path in sorted(Path(folder).glob("*-ep*.json")):
        match = BUDGET_TABLE.fullmatch(path.stem)
        if match:
            tables[(match["family"], int(match["epochs"]))] = path
    if not tables:
        raise SwenerError(f"{folder}: no budget tables (<family>-ep<N>.json, written by `make sweep`)")
    lines = list(HEADER)
    for (family, epochs), path in tables.items():
        lines += rows(_trials(path), f"{family}, ep{epochs}", source)
    for (family, epochs), path in tables.items():
        longer = tables.get((family, 2 * epochs))
        if longer:
            lines += rows(_trials(path), f"{family}, equal updates", lambda t: f"KD ep{epochs} vs plain ep{2 * epochs}",
                          plain_trials=_trials(longer))[1:]
    return "\n".join(lines) + "\n"
