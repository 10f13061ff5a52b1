"""`swener grid`: the plan of the experiment against `make -n`, and the grid on a local Ray."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from swener.grid import plan as grid_plan

ROOT = Path(__file__).resolve().parents[1]


def make_commands(tmp_path: Path, *assignments: str) -> list[tuple[str, ...]]:
    """The commands `make -n -B experiment` prints, with the venv's programs as plain `swener`/`pip`."""
    venv = tmp_path / "venv"
    run = subprocess.run(["make", "-n", "-B", "-f", str(ROOT / "Makefile"), f"VENV={venv}", *assignments,
                          "experiment"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    commands = []
    for line in run.stdout.replace("\\\n\t", " ").replace("\\\n", " ").splitlines():
        for part in line.split(" && "):
            words = tuple(shlex.split(part))
            if not words or "-m" in words[:3] and "venv" in words or "install" in words[:2] \
                    or words == ("touch", f"{venv}/bin/swener"):
                continue  # the venv's own rule
            commands.append(tuple({f"{venv}/bin/swener": "swener", f"{venv}/bin/pip": "pip"}.get(w, w)
                                  for w in words))
    return commands


def plan_commands(*assignments: str) -> list[tuple[str, ...]]:
    steps = grid_plan.plan(grid_plan.variables(grid_plan.parse_assignments(assignments))).steps
    return [command for step in steps for command in step.commands]


@pytest.mark.parametrize("assignments", [
    ("QUICK=1",),
    (),
    ("QUICK=1", "SEEDS=3 1", "FAMILIES=cnn bilstm-crf", "STUDENT_THREADS=1", "MAX_SENTENCES=30", "ALPHA=0.9:0.1",
     "TEMPERATURE=4", "KD_TARGET=kbest", "KBEST_K=3", "BACKBONE=/tmp/some/tiny-bert", "EMB_DIR=/tmp/emb-tiny",
     "TEACHER_SEED=2", "TEACHER_FREEZE=1"),
    ("TRANSFER_TEXT=/data/news.txt.gz", "TRANSFER_SENTENCES=7", "BACKBONE=e5-small", "EMB_SAMPLE=1M"),
])
def test_plan_runs_the_commands_of_make(tmp_path, assignments):
    """Same variables -> the same commands with the same output paths as `make -n -B experiment`."""
    assert sorted(plan_commands(*assignments)) == sorted(make_commands(tmp_path, *assignments))
