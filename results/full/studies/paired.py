"""Paired dev tables of a study's sweep trials: each KD trial's dev F1 minus plain's of the same seed."""
import json
import statistics
from pathlib import Path
from typing import Callable

from scipy import stats


def interval(deltas: list[float]) -> str:
    """A t interval (95 %) over the seeds' paired differences."""
    if len(deltas) < 2:
        return "-"
    half = stats.t.ppf(0.975, len(deltas) - 1) * statistics.stdev(deltas) / len(deltas) ** 0.5
    mean = statistics.mean(deltas)
    return f"[{mean - half:+.2f}, {mean + half:+.2f}]"


def setting(t: dict) -> str:
    """A trial's KD setting in words."""
    transfer = f"{Path(t['transfer_text']).name} {t['transfer_sentences']}" if t["transfer_text"] else "no transfer"
    return f"alpha {t['alpha']}, {t['kd_target']}, {transfer}"


def rows(table: Path, family: str, source: Callable[[dict], str], plain_table: Path | None = None) -> list[str]:
    """Markdown rows: plain, then per (source, setting) the seeds, mean dev F1, paired difference and interval.

    `plain_table`: pair with the plain trials of another table (e.g. another budget) instead.
    """
    trials = json.loads(table.read_text())["trials"]
    plain_trials = json.loads(plain_table.read_text())["trials"] if plain_table else trials
    plain = {t["seed"]: t["dev_f1"] for t in plain_trials if t["name"].startswith("plain-")}
    groups: dict[tuple[str, str], dict[int, float]] = {}
    for t in trials:
        if not t["name"].startswith("plain-"):
            groups.setdefault((source(t), setting(t)), {})[t["seed"]] = t["dev_f1"]
    out = [f"| {family} | plain | - | {len(plain)} | {statistics.mean(plain.values()):.4f} | - | - |"]
    for (where, words), f1 in groups.items():
        deltas = [100 * (v - plain[s]) for s, v in f1.items() if s in plain]
        each = ", ".join(f"{d:+.2f}" for d in deltas)
        out.append(f"| {family} | {where} | {words} | {len(f1)} | {statistics.mean(f1.values()):.4f} | "
                   f"{statistics.mean(deltas):+.2f} ({each}) | {interval(deltas)} |")
    return out


HEADER = ["| family | KD from | setting | seeds | mean dev F1 | KD - plain, points (per seed) | 95 % t interval |",
          "|---|---|---|---|---|---|---|"]


def write_summary(here: Path, source: Callable[[dict], str]) -> None:
    """summary.md of a study folder from its bilstm.json and bilstm-crf.json tables."""
    lines = list(HEADER)
    for family in ("bilstm", "bilstm-crf"):
        if (here / f"{family}.json").exists():
            lines += rows(here / f"{family}.json", family, source)
    (here / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
