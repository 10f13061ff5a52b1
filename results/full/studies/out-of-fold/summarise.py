"""The out-of-fold study's paired table: each KD trial's dev F1 minus plain's of the same seed."""
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from paired import write_summary  # noqa: E402

if __name__ == "__main__":
    write_summary(HERE, lambda t: "in-fold (control)" if t["teacher"].endswith("-in") else "out-of-fold")
