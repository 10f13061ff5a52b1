"""The dev studies of the KD recipe: the KD effect against the teacher's dev F1 and against the transfer set's size.

They read sweep tables (`swener sweep`), never test scores. An effect is a KD trial's dev F1
minus the plain trial of the same family, hidden size and seed; a setting's effect is the mean
over the seeds that have both.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from swener.atomic import write_json
from swener.files import text_name

STUDY_PLOTS = {"teacher": "kd_vs_teacher.png", "transfer": "kd_vs_transfer.png"}


def _is_plain(row: dict) -> bool:
    return row["alpha"] == 0 and not row.get("alpha_end")


def setting_label(row: dict) -> str:
    """A KD setting without its seed, teacher and transfer set: a0.5-T1-kbest."""
    alpha = f"a{row['alpha']:g}" + (f"to{row['alpha_end']:g}" if row.get("alpha_end") is not None else "")
    return f"{alpha}-T{row['temperature']:g}-{row['kd_target']}"


def transfer_name(row: dict) -> str | None:
    """The transfer text's short name (almedalen), or None."""
    return text_name(row["transfer_text"]) if row.get("transfer_text") else None


def kd_effects(rows: Sequence[dict]) -> list[dict]:
    """Per family, teacher, KD setting and transfer size: mean KD dev F1, mean plain dev F1 and their difference.

    A KD trial is paired with the plain trial of its own sweep (same teacher folder) and seed: since seeds fix
    the initial weights, the pair differs in the KD term only. A sweep without plain trials (`--no-plain`) is
    compared, unpaired, with the mean of every plain trial of the family (`paired` false).
    """
    plain: dict[tuple, float] = {}
    pooled: dict[tuple, list[float]] = defaultdict(list)
    swept: set[tuple] = set()  # (teacher, family, hidden, epochs) of the sweeps that ran plain trials
    for row in rows:
        if _is_plain(row) and not row.get("updates"):
            swept.add((row.get("teacher"), row["family"], row["hidden_size"], row["epochs"]))
            plain[(row.get("teacher"), row["family"], row["hidden_size"], row["epochs"], row["seed"])] = row["dev_f1"]
            pooled[(row["family"], row["hidden_size"], row["epochs"])].append(row["dev_f1"])
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if not _is_plain(row):
            size = row.get("transfer_sentences") or (None if row.get("transfer_text") else 0)
            groups[(row["family"], row.get("teacher"), setting_label(row), transfer_name(row), size,
                    row["hidden_size"], row["epochs"], row.get("updates"))].append(row)
    effects = []
    for (family, teacher, label, text, size, hidden, epochs, updates), members in sorted(groups.items(), key=str):
        pairs = [(r["dev_f1"], plain[key]) for r in members
                 if (key := (teacher, family, hidden, epochs, r["seed"])) in plain]
        paired = (teacher, family, hidden, epochs) in swept
        if not paired and pooled.get((family, hidden, epochs)):
            base_mean = statistics.mean(pooled[(family, hidden, epochs)])
            pairs = [(r["dev_f1"], base_mean) for r in members]
        if not pairs:
            continue
        kd, base = statistics.mean(p[0] for p in pairs), statistics.mean(p[1] for p in pairs)
        effects.append({"family": family, "teacher": teacher, "teacher_dev_f1": members[0].get("teacher_dev_f1"),
                        "setting": label, "transfer": text, "transfer_sentences": size, "updates": updates,
                        "seeds": len(pairs), "paired": paired, "kd_dev_f1": kd, "plain_dev_f1": base,
                        "delta": kd - base, "deltas": [a - b for a, b in pairs]})
    return effects


def markdown(effects: Sequence[dict]) -> str:
    """The effects as a Markdown table, in points."""
    lines = ["| family | KD setting | transfer set | transfer sentences | updates | teacher dev F1 | seeds | "
             "plain dev F1 | KD dev F1 | ΔF1 (points) | per seed |", "|---|---|---|" + "---:|" * 7 + "---|"]
    unpaired = " (against the mean of all plain trials)"
    for e in effects:
        teacher = "-" if e["teacher_dev_f1"] is None else f"{e['teacher_dev_f1']:.3f}"
        size = "-" if e["transfer_sentences"] is None else f"{e['transfer_sentences']:,}"
        lines.append(f"| {e['family']} | {e['setting']} | {e['transfer'] or '-'} | {size} | {e['updates'] or '-'} | "
                     f"{teacher} | {e['seeds']} | "
                     f"{e['plain_dev_f1']:.4f} | {e['kd_dev_f1']:.4f} | {100 * e['delta']:+.2f} | "
                     + ", ".join(f"{100 * d:+.2f}" for d in e["deltas"]) + ("" if e["paired"] else unpaired) + " |")
    return "\n".join(lines) + "\n"


def teacher_lines(effects: Sequence[dict]) -> dict[str, list[tuple[float, float, int]]]:
    """Per family and setting without a transfer set: (teacher dev F1, ΔF1 points, seeds), by teacher F1."""
    lines: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for e in effects:
        if e["transfer"] is None and e["teacher_dev_f1"] is not None:
            lines[f"{e['family']} {e['setting']}"].append((e["teacher_dev_f1"], 100 * e["delta"], e["seeds"]))
    return {name: sorted(points) for name, points in sorted(lines.items())}


def transfer_lines(effects: Sequence[dict]) -> dict[str, list[tuple[float, float, int]]]:
    """Per family, setting, teacher, transfer text and update budget: (sentences, ΔF1 points, seeds), from 0.

    Each line names its teacher (by dev F1) and budget, so two teachers' or budgets' trials never share one;
    the point at 0 is the same teacher's train-only run with that setting.
    """
    lines: dict[tuple, list[tuple[float, float, int]]] = defaultdict(list)
    for e in effects:
        if e["transfer"] is not None and e["transfer_sentences"] is not None:
            lines[(e["family"], e["setting"], e["teacher"], e["teacher_dev_f1"], e["transfer"], e["updates"])].append(
                (e["transfer_sentences"], 100 * e["delta"], e["seeds"]))
    for e in effects:
        if e["transfer"] is None:
            for key in lines:
                if key[:3] == (e["family"], e["setting"], e["teacher"]):
                    lines[key].append((0, 100 * e["delta"], e["seeds"]))

    def label(family: str, setting: str, teacher_f1: float | None, text: str, updates: int | None) -> str:
        teacher = f", teacher {teacher_f1:.3f}" if teacher_f1 is not None else ""
        return f"{family} {setting} +{text}{teacher}" + (f", {updates} updates" if updates else "")

    return {label(family, setting, f1, text, updates): sorted(points)
            for (family, setting, _, f1, text, updates), points in sorted(lines.items(), key=lambda kv: str(kv[0]))}


def plot_study(lines: dict[str, list[tuple[float, float, int]]], path: Path, xlabel: str, title: str,
               log_x: bool = False) -> None:
    """One line per family and setting: ΔF1 on dev (points) against x; each point says its seeds."""
    import matplotlib.pyplot as plt

    from swener.report.plots import _colors, _save_figure

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    if not lines:
        ax.text(0.5, 0.5, "no trials for this study yet", ha="center", va="center")
        ax.axis("off")
    for (name, points), color in zip(lines.items(), _colors(len(lines))):
        xs, ys, seeds = zip(*points)
        ax.plot(xs, ys, marker="o", color=color, label=name)
        for xv, yv, n in points:
            ax.annotate(f"{n}s", (xv, yv), xytext=(3, 3), textcoords="offset points", fontsize=7, color="dimgray")
    if lines:
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ΔF1 KD − plain on dev (points)")
        if log_x:  # ticks at the sizes tried; 0 (train only) on the linear stretch near the axis
            sizes = sorted({x for points in lines.values() for x, _, _ in points})
            ax.set_xscale("symlog", linthresh=1000)
            ax.set_xlim(-0.1 * 1000, max(sizes) * 1.3 if sizes[-1] > 0 else 1000)
            ax.set_xticks(sizes, [f"{x:,.0f}" for x in sizes], fontsize=7)
            ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    _save_figure(fig, path)


def build_studies(tables: Sequence[Path], out: Path) -> dict:
    """Read sweep tables, write studies.json, studies.md and the two plots into `out`; returns the effects."""
    from swener.students.sweep import read_table, row_key

    rows = [row for table in tables for row in read_table(Path(table))]
    unique = {(r["family"], *row_key(r)): r for r in rows}  # a trial in two tables counts once
    effects = kd_effects(list(unique.values()))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "studies.json", {"about": "KD effect on dev from sweep tables (swener study); dev only",
                                      "tables": [str(t) for t in tables], "effects": effects})
    plot_study(teacher_lines(effects), out / STUDY_PLOTS["teacher"], "teacher's dev F1",
               "KD effect against teacher quality (no transfer set)")
    plot_study(transfer_lines(effects), out / STUDY_PLOTS["transfer"], "transfer sentences (0: train split only)",
               "KD effect against transfer-set size", log_x=True)
    (out / "studies.md").write_text(markdown(effects))
    return {"effects": effects}
