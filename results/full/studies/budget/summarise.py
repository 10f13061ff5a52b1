"""The budget study's paired tables: each KD trial's dev F1 minus plain's of the same seed.

First at equal epochs (10 and 20: gold passes equal, the KD run makes twice the updates, one
transfer sentence drawn per train sentence); then at equal updates: KD at 10 epochs against
plain at 20 (both 2 x 10 x 194 updates).
"""
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from paired import HEADER, interval, rows, setting  # noqa: E402


def matched_rows(kd_table: Path, plain_table: Path, family: str) -> list[str]:
    """KD trials of one table paired by seed with the plain trials of another (equal updates)."""
    plain = {t["seed"]: t["dev_f1"] for t in json.loads(plain_table.read_text())["trials"]
             if t["name"].startswith("plain-")}
    groups: dict[str, dict[int, float]] = {}
    for t in json.loads(kd_table.read_text())["trials"]:
        if not t["name"].startswith("plain-"):
            groups.setdefault(setting(t), {})[t["seed"]] = t["dev_f1"]
    out = []
    for words, f1 in groups.items():
        deltas = [100 * (v - plain[s]) for s, v in f1.items() if s in plain]
        if deltas:
            out.append(f"| {family} | KD ep10 vs plain ep20 | {words} | {len(deltas)} | "
                       f"{statistics.mean(f1[s] for s in f1 if s in plain):.4f} | {statistics.mean(deltas):+.2f} "
                       f"({', '.join(f'{d:+.2f}' for d in deltas)}) | {interval(deltas)} |")
    return out


if __name__ == "__main__":
    lines = list(HEADER)
    for table in sorted(HERE.glob("*-ep*.json")):
        family, _, budget = table.stem.rpartition("-")
        lines += rows(table, f"{family}, {budget}", lambda t: "teacher (lb, ep10)")
    if (HERE / "bilstm-ep10.json").exists() and (HERE / "bilstm-ep20.json").exists():
        lines += matched_rows(HERE / "bilstm-ep10.json", HERE / "bilstm-ep20.json", "bilstm, equal updates")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
