"""The budget study's paired tables: each KD trial's dev F1 minus plain's of the same seed.

First at equal epochs (10 and 20: gold passes equal, the KD run makes twice the updates, one
transfer sentence drawn per train sentence); then at equal updates: KD at 10 epochs against
plain at 20 (both 2 x 10 x 194 updates).
"""
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from paired import HEADER, rows  # noqa: E402

if __name__ == "__main__":
    lines = list(HEADER)
    for table in sorted(HERE.glob("*-ep*.json")):
        family, _, budget = table.stem.rpartition("-")
        lines += rows(table, f"{family}, {budget}", lambda t: "teacher (lb, ep10)")
    if (HERE / "bilstm-ep10.json").exists() and (HERE / "bilstm-ep20.json").exists():
        lines += rows(HERE / "bilstm-ep10.json", "bilstm, equal updates", lambda t: "KD ep10 vs plain ep20",
                      plain_table=HERE / "bilstm-ep20.json")[1:]
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
