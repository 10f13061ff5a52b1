"""The out-of-fold study's paired table: each KD trial's dev F1 minus plain's of the same seed."""
import json
import statistics
from pathlib import Path

from scipy import stats

HERE = Path(__file__).parent


def interval(deltas: list[float]) -> str:
    """A t interval (95 %) over the seeds' paired differences."""
    if len(deltas) < 2:
        return "-"
    half = stats.t.ppf(0.975, len(deltas) - 1) * statistics.stdev(deltas) / len(deltas) ** 0.5
    mean = statistics.mean(deltas)
    return f"[{mean - half:+.2f}, {mean + half:+.2f}]"


def rows(family: str) -> list[str]:
    trials = json.loads((HERE / f"{family}.json").read_text())["trials"]
    plain = {t["seed"]: t["dev_f1"] for t in trials if t["name"].startswith("plain-")}
    groups: dict[tuple[str, str], dict[int, float]] = {}
    for t in trials:
        if t["name"].startswith("plain-"):
            continue
        source = "in-fold (control)" if t["teacher"].endswith("-in") else "out-of-fold"
        setting = f"alpha {t['alpha']}, {t['kd_target']}, " + (f"{Path(t['transfer_text']).name} {t['transfer_sentences']}" if t["transfer_text"] else "no transfer")
        groups.setdefault((source, setting), {})[t["seed"]] = t["dev_f1"]
    out = [f"| {family} | plain | - | {len(plain)} | {statistics.mean(plain.values()):.4f} | - | - |"]
    for (source, setting), f1 in groups.items():
        deltas = [100 * (v - plain[s]) for s, v in f1.items() if s in plain]
        each = ", ".join(f"{d:+.2f}" for d in deltas)
        out.append(f"| {family} | {source} | {setting} | {len(f1)} | {statistics.mean(f1.values()):.4f} | "
                   f"{statistics.mean(deltas):+.2f} ({each}) | {interval(deltas)} |")
    return out


if __name__ == "__main__":
    lines = ["| family | KD from | setting | seeds | mean dev F1 | KD - plain, points (per seed) | 95 % t interval |",
             "|---|---|---|---|---|---|---|"]
    for family in ("bilstm", "bilstm-crf"):
        if (HERE / f"{family}.json").exists():
            lines += rows(family)
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
