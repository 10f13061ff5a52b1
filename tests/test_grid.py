"""`swener grid`: the plan of the experiment against `make -n`, and the grid on a local Ray."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swener.grid import plan as grid_plan

ROOT = Path(__file__).resolve().parents[1]


def make_commands(tmp_path: Path, *assignments: str) -> list[tuple[str, ...]]:
    """The commands `make -n -B experiment` prints, with the venv's programs as plain `swener`/`pip`."""
    venv = tmp_path / "venv"
    run = subprocess.run(["make", "--no-print-directory", "-n", "-B", "-f", str(ROOT / "Makefile"), f"VENV={venv}",
                          *assignments,
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
    ("FAMILIES=bilstm-crf cnn-crf", "KD_TARGET=kbest", "TRANSFER_TEXT=/data/news.txt.gz", "KBEST_K=2"),  # its paths too
])
def test_plan_runs_the_commands_of_make(tmp_path, assignments):
    """Same variables -> the same commands with the same output paths as `make -n -B experiment`."""
    assert sorted(plan_commands(*assignments)) == sorted(make_commands(tmp_path, *assignments))


def test_dependencies_come_first_and_finished_steps_are_skipped(tmp_path):
    from swener.grid.ray_runner import pending_steps

    the_plan = grid_plan.plan(grid_plan.variables({"QUICK": "1", "FAMILIES": "cnn", "SEEDS": "1"}))
    seen = set()
    for step in the_plan.steps:
        assert set(step.needs) <= seen, step.name
        seen.add(step.target)
    kinds = [step.kind for step in the_plan.steps]
    assert kinds.index("teacher") < kinds.index("soft-labels") < kinds.index("report")
    for step in the_plan.steps:  # everything finished but the soft labels: they, their dependents and the report run
        if step.kind != "soft-labels":
            (tmp_path / step.target).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / step.target).touch()
    to_run, skipped = pending_steps(the_plan, tmp_path)
    assert [s.name for s in to_run] == ["soft labels", "cnn kd seed 1", "teacher scores", "report"]
    assert "cnn plain seed 1" in [s.name for s in skipped]


def test_bad_variables_are_one_line_errors():
    with pytest.raises(grid_plan.PlanError, match="NAME=VALUE"):
        grid_plan.parse_assignments(["SEDS=1"])
    with pytest.raises(grid_plan.PlanError, match="SEEDS"):
        grid_plan.variables({"SEEDS": "1 two"})


def _f1s(root: Path) -> dict[str, tuple[float, float, str]]:
    """Each student run folder (relative to root) -> its dev and test micro F1 and last training loss.

    The loss makes the comparison bite where tiny models score F1 0 on both routes.
    """
    runs = {}
    for results in sorted(root.glob("models/*/*/*/seed-*/results.json")):
        scores = json.loads(results.read_text())["scores"]
        header, *rows = (results.parent / "loss.tsv").read_text().splitlines()
        loss = rows[-1].split("\t")[header.split("\t").index("TRAIN_LOSS")]
        runs[str(results.parent.relative_to(root))] = (scores["webbnyheter2012/dev"]["micro_f1"],
                                                       scores["webbnyheter2012/test"]["micro_f1"], loss)
    return runs


@pytest.mark.slow
def test_grid_on_local_ray_matches_the_make_route(tmp_path, tiny_backbone, tiny_vectors):
    """Tiny profile: Make, then the grid on a local Ray (teacher and caches shared) with a killed run retried;
    the same folders and F1; a second call does nothing; a run that keeps dying fails without a finished folder."""
    pytest.importorskip("ray")
    from swener.data import corpora

    emb = tmp_path / "emb-tiny"
    emb.mkdir()
    shutil.copy(tiny_vectors, emb / "vectors.npz")
    (emb / "manifest.json").write_text("{}")
    variables = ["QUICK=1", "MAX_SENTENCES=30", "TEACHER_EPOCHS=1", "TEACHER_BATCH=8", "STUDENT_EPOCHS=1",
                 "SEEDS=1", "FAMILIES=cnn", "STUDENT_THREADS=1", f"BACKBONE={tiny_backbone}", f"EMB_DIR={emb}"]
    env = {**os.environ, "SWENER_DATA": str(corpora.data_root()), "OMP_NUM_THREADS": "1"}
    by_make, by_ray = tmp_path / "make", tmp_path / "ray"
    by_make.mkdir()
    run = subprocess.run(["make", "-f", str(ROOT / "Makefile"), f"VENV={sys.prefix}", *variables, "experiment"],
                         cwd=by_make, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    (by_ray / "models").mkdir(parents=True)  # the teacher and its caches shared, the students the grid's own
    (by_ray / "models" / "teacher").symlink_to(by_make / "models" / "teacher")
    (by_ray / "softlabels").symlink_to(by_make / "softlabels")
    shared = {p: p.stat().st_mtime for p in (by_make / "models" / "teacher").rglob("*")}

    def grid(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from swener_cli import main; main()", "grid", "--root",
                               str(by_ray), "--cpus", "2", "--object-store-mb", "128", *variables, *args],
                              env=env, capture_output=True, text=True, timeout=900)

    run = grid("--inject-fault", "cnn kd seed 1", "--summary", str(tmp_path / "summary.json"))
    print(run.stdout)  # shown with pytest -rP
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _f1s(by_ray) == _f1s(by_make) and len(_f1s(by_ray)) == 2  # same folder names, same F1
    assert "cnn plain seed 1, dev F1 " in run.stdout and "[3/3] report" in run.stdout
    assert "cnn kd seed 1, dev F1 " in run.stdout and "attempt 2" in run.stdout  # killed once, retried
    assert "grid: 3 done" in run.stdout
    assert (by_ray / "results" / "quick" / "REPORT.md").is_file()
    assert {p: p.stat().st_mtime for p in (by_make / "models" / "teacher").rglob("*")} == shared
    steps = {s["name"]: s for s in json.loads((tmp_path / "summary.json").read_text())["steps"]}
    assert steps["cnn kd seed 1"]["attempts"] == 2 and steps["teacher"]["status"] == "skipped"

    again = grid()
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr

    doomed = grid("STUDENT_EPOCHS=2", "--retries", "1", "--inject-fault", "cnn plain:always")
    print(doomed.stdout)
    assert doomed.returncode == 1, doomed.stdout + doomed.stderr
    assert "1 failed" in doomed.stdout and "failed: cnn plain seed 1 after 2 attempt(s)" in doomed.stdout
    assert "log: " in doomed.stdout and "not run (a step they need failed)" in doomed.stdout
    assert "    command: swener train --family cnn --alpha 0 --seed 1" in doomed.stdout
    failed_set = by_ray / "models" / "cnn" / "plain" / "webbnyheter2012-emb-tiny-ep2-lr0.1-n30"
    assert not (failed_set / "seed-1").exists()  # only seed-1.partial, which nothing takes for a finished run
    assert not list(failed_set.glob("*/results.json"))


@pytest.mark.parametrize("assignments", [("QUICK=1",), ("SEEDS=1 2 3 4 5", "FAMILIES=cnn", "ALPHA=0.3",
                                                        "TRANSFER_TEXT=news.txt", "GRID_OPTS=--retries 1")])
def test_make_experiment_engine_ray_passes_the_grid_every_variable(tmp_path, assignments):
    """`make experiment ENGINE=ray` calls `swener grid` with Make's values: its plan is Make's own chain."""
    run = subprocess.run(["make", "--no-print-directory", "-n", "-f", str(ROOT / "Makefile"), f"VENV={tmp_path}/venv",
                          *assignments,
                          "ENGINE=ray", "experiment"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    line = next(line for line in run.stdout.splitlines() if " grid " in line)
    words = shlex.split(line)
    assert words[0].endswith("/swener") and words[1] == "grid"
    options = [w for w in words[2:] if "=" not in w or w.startswith("--")]
    assert options == (["--retries", "1"] if "GRID_OPTS=--retries 1" in assignments else [])
    passed = [w for w in words[2:] if w not in options]
    make_route = [a for a in assignments if not a.startswith("GRID_OPTS")]
    assert sorted(plan_commands(*passed)) == sorted(make_commands(tmp_path, *make_route))
