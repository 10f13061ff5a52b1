"""The experiment's report: which student families gain from KD, by how much, at what cost.

Reads the students' `results.json` files (models/<family>/<plain|kd>/<settings>/seed-N/,
written by swener.students.run) and the teacher's `teacher.json` (`swener teacher evaluate`:
the same scores/counts/cost keys plus the soft-label cache's cost), and writes REPORT.md,
results.json and two PNG plots. Every number in REPORT.md and in the plots comes from the
summary that results.json holds."""
from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from swener.atomic import write_text
from swener.errors import DataError, SwenerError
from swener.files import read_json
from swener.report.collect import collect
from swener.report.markdown import render_markdown, shown_path
from swener.report.plots import PLOTS, plot_effects, plot_tradeoff
from swener.report.stats import infer_profile, summarize


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def load_teacher(path: Path) -> dict:
    """The teacher's results for the report: a teacher.json written by `swener teacher evaluate`."""
    data = read_json(path, "cannot read teacher results", "write it with `swener teacher evaluate`")
    if "scores" not in data and "counts" not in data:
        raise DataError(path, "not a teacher results file (no scores or counts)")
    return data


def build(results_paths: Sequence[Path], out: Path, teacher: Path | dict | None = None, command: str = "",
          samples: int = 2000, confidence: float = 0.95, seed: int = 0, profile: str | None = None,
          via: str = "") -> dict[str, Path]:
    """Write REPORT.md, results.json and the two plots into `out`; returns their paths.

    `command`: the command that made the report, short (the runs are listed in results.json, `runs`);
    `via`: what called it, e.g. "make experiment", shown first in the header.

    `profile`: "quick" or "full", written at the top of both; None infers it from the runs
    (a slice of the corpus is the quick profile).
    """
    import matplotlib

    matplotlib.use("Agg")
    teacher_data = load_teacher(teacher) if isinstance(teacher, (str, Path)) else teacher
    summary = summarize(collect(results_paths), teacher_data, samples, confidence, seed)
    now = datetime.now().astimezone()
    if profile not in (None, "quick", "full"):
        raise SwenerError(f"profile {profile!r}: expected quick or full")
    summary = {"profile": profile or infer_profile(summary), "generated": now.isoformat(timespec="seconds"),
               "machine": {"node": platform.node(), "cores": os.cpu_count(), "platform": platform.platform()},
               "command": command, "via": via or None, "runs": [str(p) for p in results_paths], **summary}
    out = Path(out)
    paths = {"report": out / "REPORT.md", "results": out / "results.json",
             **{name: out / file for name, file in PLOTS.items()}}
    plot_tradeoff(summary, paths["tradeoff"])
    plot_effects(summary, paths["effects"])
    committed = {**shown_path(summary), "runs": summary["runs"]}  # settings without machine-local paths
    write_text(paths["results"], json.dumps(_finite(committed), indent=1, ensure_ascii=False) + "\n")
    write_text(paths["report"], render_markdown(summary))
    return paths
