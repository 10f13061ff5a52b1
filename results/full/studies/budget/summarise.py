"""The budget study's paired table: each KD trial's dev F1 minus plain's of the same seed, per budget."""
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
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
