"""The gold curve (issue 36): the KD effect against the number of gold train sentences.

Reads students' results.json files trained with `--gold N` (no --gold: all of train) and groups
them into cells of (N, family): the plain runs, and per KD arm (transfer set x teacher) the KD
runs, paired by seed. Each arm's effect on each test set is the two-level paired bootstrap of
`swener.report.stats.kd_effect`, Holm-adjusted over every effect of the study. The main arm of a
cell is KD from the teacher of the same N with the held-back pool as its transfer set (at all:
no transfer set); the others (almedalen instead of the pool, the all-gold teacher) tell domain
and teacher apart. Writes GOLD_CURVE.md, gold_curve.json and gold_curve.png.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from swener.atomic import write_json, write_text
from swener.data.tokens import is_tokens_file
from swener.errors import SwenerError
from swener.files import read_json, text_name
from swener.report.collect import KD_ONLY
from swener.report.stats import _short, _test_sets, holm, kd_effect
from swener.runs import StudentResults

FILES = {"markdown": "GOLD_CURVE.md", "json": "gold_curve.json", "plot": "gold_curve.png"}
POOL = "held-back pool"  # the transfer set made of the train sentences outside the gold subset
MIN_GAIN = 0.02  # "KD pays": at least 2 F1 points in domain with an interval above 0 (the bar)
# settings that do not make two runs of a cell different experiments
NOT_COMPARED = ("seed", "transfer_ratio", "threads", "gradient_probes", *KD_ONLY)


@dataclass
class Cell:
    """One gold size and family: plain runs and, per KD arm, KD runs, each by seed."""

    gold: int | None
    family: str
    corpus: str
    settings: str
    plain: dict[int, StudentResults] = field(default_factory=dict)
    arms: dict[tuple[str, str], dict[int, StudentResults]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{gold_label(self.gold)} {self.family}"


def gold_label(gold: int | None) -> str:
    """250 -> '250', None -> 'all'."""
    return "all" if gold is None else str(gold)


def arm_of(run: StudentResults) -> tuple[str, str]:
    """A KD run's arm: (its transfer set, its teacher) in words."""
    gold = run.settings.get("gold")
    text = run.settings.get("transfer_text")
    transfer = "no transfer set" if not text else POOL if is_tokens_file(text) else text_name(text)
    teacher_gold = run.extra.get("teacher_gold")
    teacher = ("own teacher" if teacher_gold == gold else "all-gold teacher" if teacher_gold is None
               else f"teacher of {teacher_gold}")
    return transfer, teacher


def is_main(cell: Cell, arm: tuple[str, str]) -> bool:
    """The study's main comparison: the teacher of N with the pool (at all: with no transfer set)."""
    return arm == ((POOL if cell.gold is not None else "no transfer set"), "own teacher")


def collect_cells(paths: Sequence[Path]) -> list[Cell]:
    """Read the runs and group them into cells; two runs of one arm and seed, or mixed settings, are an error."""
    cells: dict[tuple, Cell] = {}
    for path in paths:
        run = StudentResults.read(Path(path))
        gold = run.settings.get("gold")
        shared = json.dumps({k: v for k, v in run.settings.items() if k not in NOT_COMPARED and v is not None},
                            sort_keys=True)
        key = (gold if gold is not None else float("inf"), run.family, run.corpus)
        cell = cells.setdefault(key, Cell(gold, run.family, run.corpus, shared))
        if cell.settings != shared:
            raise SwenerError(f"{path}: {cell.name} mixes runs of different settings ({shared} against "
                              f"{cell.settings}); report one setting at a time")
        group = cell.plain if run.mode == "plain" else cell.arms.setdefault(arm_of(run), {})
        if run.seed in group:
            raise SwenerError(f"{path}: a second {run.mode} run of {cell.name} with seed {run.seed}; remove one")
        group[run.seed] = run
    if not cells:
        raise SwenerError("no student results given; train the gold curve first (`make gold-curve`)")
    return [cells[k] for k in sorted(cells)]


def _mean_f1(runs: dict[int, StudentResults], test_set: str) -> dict | None:
    values = [r.scores[test_set]["micro_f1"] for _, r in sorted(runs.items()) if test_set in r.scores]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


def _minutes(runs: dict[int, StudentResults]) -> float | None:
    seconds = [r.training["train_seconds"] for r in runs.values() if r.training.get("train_seconds") is not None]
    return float(np.median(seconds)) / 60 if seconds else None


def _teacher_row(path: Path | None, test_sets: list[str]) -> dict | None:
    if path is None:
        return None
    data = read_json(path, "cannot read the teacher's scores", "write it with `swener teacher evaluate`")
    scores = data.get("scores", {})
    training = data.get("training") or {}
    return {"path": str(path), "f1": {t: scores[t]["micro_f1"] for t in test_sets if t in scores},
            "minutes": training["train_seconds"] / 60 if training.get("train_seconds") else None}


def summarize(paths: Sequence[Path], teachers: dict[int | None, Path] | None = None, samples: int = 2000,
              confidence: float = 0.95, seed: int = 0) -> dict:
    """Every number of the study: per cell plain F1, per arm KD F1 and its effect per test set, Holm, the verdicts."""
    cells = collect_cells(paths)
    names = {n for c in cells for runs in (c.plain, *c.arms.values()) for r in runs.values() for n in r.counts}
    test_sets = _test_sets(names, {c.corpus for c in cells})
    rows = []
    for cell in cells:
        sizes = [r.training.get("train_sentences") for r in cell.plain.values() if r.training.get("train_sentences")]
        row = {"gold": cell.gold, "label": gold_label(cell.gold), "family": cell.family,
               "sentences": cell.gold if cell.gold is not None else (int(np.median(sizes)) if sizes else None),
               "teacher": _teacher_row((teachers or {}).get(cell.gold), test_sets),
               "plain": {"seeds": sorted(cell.plain), "minutes": _minutes(cell.plain),
                         "f1": {t: _mean_f1(cell.plain, t) for t in test_sets}}, "arms": []}
        for arm, runs in sorted(cell.arms.items()):
            entry = {"transfer": arm[0], "teacher": arm[1], "main": is_main(cell, arm), "seeds": sorted(runs),
                     "minutes": _minutes(runs), "f1": {t: _mean_f1(runs, t) for t in test_sets}, "effect": {}}
            for test_set in test_sets:
                pairs = [s for s in sorted(set(cell.plain) & set(runs))
                         if test_set in cell.plain[s].counts and test_set in runs[s].counts]
                if not pairs:
                    continue
                plain = np.stack([np.asarray(cell.plain[s].counts[test_set]).reshape(-1, 3) for s in pairs])
                kd = np.stack([np.asarray(runs[s].counts[test_set]).reshape(-1, 3) for s in pairs])
                if plain.shape != kd.shape:
                    raise SwenerError(f"{cell.name}, {arm[0]}: plain and KD runs were scored on different numbers "
                                      f"of {test_set} sentences; they cannot be paired")
                key = json.dumps([cell.gold, cell.family, list(arm), test_set])
                rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
                entry["effect"][test_set] = {**kd_effect(plain, kd, samples, confidence, rng).as_dict(),
                                             "paired_seeds": pairs}
            row["arms"].append(entry)
        rows.append(row)
    alpha = round(1 - confidence, 12)
    effects = [e for row in rows for arm in row["arms"] for e in arm["effect"].values()]
    for effect, adjusted in zip(effects, holm([e["p_value"] for e in effects])):
        effect["holm_p"] = adjusted
        effect["holm_verdict"] = effect["verdict"] if adjusted < alpha else "no clear effect"
    return {"test_sets": test_sets, "bootstrap": {"samples": samples, "confidence": confidence, "seed": seed},
            "holm": {"comparisons": len(effects), "alpha": alpha}, "cells": rows,
            "pays": pays(rows, test_sets[0] if test_sets else None)}


def pays(rows: list[dict], test_set: str | None) -> dict[str, list[str]]:
    """Per family, the gold sizes at which the main arm gains >= MIN_GAIN in domain with an interval above 0."""
    out: dict[str, list[str]] = {}
    for row in rows:
        found = out.setdefault(row["family"], [])
        for arm in row["arms"]:
            effect = arm["effect"].get(test_set) if arm["main"] else None
            if effect and effect["delta"] >= MIN_GAIN and effect["low"] > 0:
                found.append(row["label"])
    return out


# ----- writing -----


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _effect_cell(effect: dict | None) -> str:
    if not effect:
        return "-"
    return f"{100 * effect['delta']:+.1f} [{100 * effect['low']:+.1f}, {100 * effect['high']:+.1f}]"


def render_markdown(summary: dict, command: str = "") -> str:
    """GOLD_CURVE.md: per test set the main table, then the other arms, the verdict per family, costs."""
    conf = f"{100 * summary['bootstrap']['confidence']:.0f} %"
    lines = ["# Where distillation pays: the KD effect against the gold sentences", "",
             f"F1 in points (mean over seeds); ΔF1 = KD - plain, paired by seed, with its {conf} two-level bootstrap "
             f"interval ({summary['bootstrap']['samples']} draws); verdicts Holm-adjusted over "
             f"{summary['holm']['comparisons']} comparisons (a bootstrap's smallest p is 2/(draws + 1): "
             f"{2 / (summary['bootstrap']['samples'] + 1):.4f} here, before Holm multiplies it). Dev and test sets are "
             "the full ones at every N (a real user with N sentences would have a smaller dev set).", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    for test_set in summary["test_sets"]:
        lines += [f"## {_short(test_set)}", "", "| N | family | teacher | plain | KD | ΔF1 | Holm verdict | seeds |",
                  "|---:|---|---:|---:|---:|---|---|---:|"]
        for row in summary["cells"]:
            teacher = _pts((row["teacher"] or {}).get("f1", {}).get(test_set)) if row["teacher"] else "-"
            plain = row["plain"]["f1"].get(test_set)
            for arm in (a for a in row["arms"] if a["main"]):
                effect = arm["effect"].get(test_set)
                kd = arm["f1"].get(test_set)
                verdict, seeds = (effect["holm_verdict"], len(effect["paired_seeds"])) if effect else ("-", 0)
                lines.append(f"| {row['label']} | {row['family']} | {teacher} | {_pts(plain and plain['mean'])} | "
                             f"{_pts(kd and kd['mean'])} | {_effect_cell(effect)} | {verdict} | {seeds} |")
        others = [(row, arm) for row in summary["cells"] for arm in row["arms"] if not arm["main"]]
        if others:
            lines += ["", "Other arms (domain: almedalen instead of the pool; teacher: the all-gold teacher):", "",
                      "| N | family | transfer set | teacher | KD | ΔF1 against plain | Holm verdict |",
                      "|---:|---|---|---|---:|---|---|"]
            for row, arm in others:
                effect, kd = arm["effect"].get(test_set), arm["f1"].get(test_set)
                lines.append(f"| {row['label']} | {row['family']} | {arm['transfer']} | {arm['teacher']} | "
                             f"{_pts(kd and kd['mean'])} | {_effect_cell(effect)} | "
                             f"{effect['holm_verdict'] if effect else '-'} |")
        lines.append("")
    first = _short(summary["test_sets"][0]) if summary["test_sets"] else "-"
    lines += ["## When does distillation pay?", "",
              f"Gold sizes at which KD (teacher of N, held-back pool) gains at least {100 * MIN_GAIN:.0f} F1 points on "
              f"{first} with an interval above 0:", ""]
    for family, sizes in summary["pays"].items():
        lines.append(f"- {family}: {', '.join(sizes) if sizes else 'never'}")
    lines += ["", "## Cost", "", "| N | family | teacher minutes | plain minutes | KD minutes (main arm) |",
              "|---:|---|---:|---:|---:|"]
    for row in summary["cells"]:
        main = next((a for a in row["arms"] if a["main"]), None)
        minutes = [(row["teacher"] or {}).get("minutes"), row["plain"]["minutes"], main and main["minutes"]]
        lines.append(f"| {row['label']} | {row['family']} | " + " | ".join("-" if m is None else f"{m:.1f}"
                                                                          for m in minutes) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    """KD effect (main arm, in domain) against N on a log axis, one line and band per family; F1 against N beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from swener.report.plots import _colors, _save_figure

    test_set = summary["test_sets"][0]
    families = sorted({row["family"] for row in summary["cells"]})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for family, color in zip(families, _colors(len(families))):
        rows = [r for r in summary["cells"] if r["family"] == family and r["sentences"]]
        points = [(r["sentences"], a["effect"][test_set]) for r in rows for a in r["arms"]
                  if a["main"] and test_set in a["effect"]]
        if points:
            xs = [x for x, _ in points]
            left.plot(xs, [100 * e["delta"] for _, e in points], marker="o", color=color, label=family)
            left.fill_between(xs, [100 * e["low"] for _, e in points], [100 * e["high"] for _, e in points],
                              color=color, alpha=0.2)
        plain = [(r["sentences"], r["plain"]["f1"].get(test_set)) for r in rows]
        right.plot([x for x, f in plain if f], [100 * f["mean"] for _, f in plain if f], ls="--", marker="o",
                   color=color, label=f"{family} plain")
        kd = [(r["sentences"], a["f1"].get(test_set)) for r in rows for a in r["arms"] if a["main"]]
        right.plot([x for x, f in kd if f], [100 * f["mean"] for _, f in kd if f], marker="o", color=color,
                   label=f"{family} KD")
    teacher = sorted({(r["sentences"], r["teacher"]["f1"][test_set]) for r in summary["cells"]
                      if r["sentences"] and r["teacher"] and test_set in r["teacher"]["f1"]})
    if teacher:
        right.plot([x for x, _ in teacher], [100 * f for _, f in teacher], color="black", marker="s", label="teacher")
    left.axhline(0, color="grey", lw=0.8)
    ticks = dict(sorted({r["sentences"]: f"all ({r['sentences']:,})" if r["gold"] is None else r["label"]
                         for r in summary["cells"] if r["sentences"]}.items()))
    for ax, title, ylabel in ((left, "KD effect", "ΔF1 (points)"), (right, "F1", "F1 (points)")):
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), list(ticks.values()), fontsize=8)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("gold train sentences")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}, {_short(test_set)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save_figure(fig, path)


def build(paths: Sequence[Path], out: Path, teachers: dict[int | None, Path] | None = None, samples: int = 2000,
          command: str = "") -> dict:
    """Write GOLD_CURVE.md, gold_curve.json and gold_curve.png into `out`; returns the summary."""
    summary = summarize(paths, teachers, samples)
    out = Path(out)
    write_json(out / FILES["json"], {**summary, "command": command})
    write_text(out / FILES["markdown"], render_markdown(summary, command))
    plot(summary, out / FILES["plot"])
    return summary
