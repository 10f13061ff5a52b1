"""The Makefile's dependency chain on a tiny profile: teacher, soft labels, a student family plain
and KD, the report; then `make -q` says up to date and other settings make new paths."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from swener.data import corpora

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_profile_chain(tmp_path, tiny_backbone, tiny_vectors):
    emb = tmp_path / "emb-tiny"
    emb.mkdir()
    shutil.copy(tiny_vectors, emb / "vectors.npz")
    (emb / "manifest.json").write_text("{}")
    variables = [f"VENV={sys.prefix}", "QUICK=1", "MAX_SENTENCES=30", "TEACHER_EPOCHS=1", "TEACHER_BATCH=8",
                 "STUDENT_EPOCHS=1", "SEEDS=1", "FAMILIES=cnn window-crf idcnn", "STUDENT_THREADS=1",
                 f"BACKBONE={tiny_backbone}", f"EMB_DIR={emb}"]
    env = {**os.environ, "SWENER_DATA": str(corpora.data_root()), "OMP_NUM_THREADS": "1"}

    def make(*args: str) -> subprocess.CompletedProcess:
        # -o: never remake the venv that runs this test (a checkout's setup.cfg newer than its bin/swener
        # would otherwise reinstall swener into it, from this checkout)
        return subprocess.run(["make", "-f", str(ROOT / "Makefile"), "-o", f"{sys.prefix}/bin/swener", *variables,
                               *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    full_report = tmp_path / "results" / "REPORT.md"  # a full run's headline report: a quick run never replaces it
    full_report.parent.mkdir()
    full_report.write_text("# the full run's report\n")
    run = make("experiment")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("REPORT.md", "results.json", "f1_vs_throughput.png", "kd_effect.png"):
        assert (tmp_path / "results" / "quick" / name).is_file(), name
    assert full_report.read_text() == "# the full run's report\n"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["REPORT.md", "quick"]
    assert "**Profile: quick**" in (tmp_path / "results" / "quick" / "REPORT.md").read_text()
    assert json.loads((tmp_path / "results" / "quick" / "results.json").read_text())["profile"] == "quick"
    # QUICK: frozen table, length-bucketed batches, lr 2e-4
    teacher_id = f"webbnyheter2012/{tiny_backbone.name}-fz-lb-bioes-ep1-p2-lr2e-4-b8-n30"
    assert (tmp_path / "models" / "teacher" / teacher_id / "best-model.pt").is_file()
    assert json.loads((tmp_path / "models" / "teacher" / teacher_id / "training.json").read_text())["length_buckets"]
    scored = json.loads((tmp_path / "results" / "quick" / "teacher.json").read_text())
    assert "webbnyheter2012/test" in scored["scores"] and "invalid_bioes" not in scored  # QUICK: no diagnostics
    assert (tmp_path / "softlabels" / teacher_id / "train.npz").is_file()
    student_set = "webbnyheter2012-emb-tiny-ep1-lr0.1-n30"
    for family in ("cnn", "window-crf", "idcnn"):  # the new encoders' families train, plain and with KD
        for run in ("plain", "kd"):
            assert len(list((tmp_path / "models" / family / run).glob("*/seed-1/results.json"))) == 1, (family, run)
    summary = json.loads((tmp_path / "results" / "quick" / "results.json").read_text())
    assert "window-crf" in json.dumps(summary) and "idcnn" in json.dumps(summary)

    assert make("-q", "experiment").returncode == 0  # everything up to date: a rerun does nothing

    dry = make("-n", "experiment", "ALPHA=0.3")
    assert dry.returncode == 0, dry.stderr
    assert f"models/cnn/kd/{student_set}-a0.3-T1-marginals-" in dry.stdout and "--alpha 0.3" in dry.stdout
    assert "teacher train" not in dry.stdout and "--alpha 0 " not in dry.stdout  # only the new KD run

    (tmp_path / "news.txt").write_text("Anna bor i Umeå.\n", encoding="utf-8")
    dry = make("-n", "experiment", f"TRANSFER_TEXT={tmp_path / 'news.txt'}", "TRANSFER_SENTENCES=7")
    assert dry.returncode == 0, dry.stderr
    assert "soft-labels" in dry.stdout and "--text" in dry.stdout and "--transfer-sentences 7" in dry.stdout
    assert f"models/cnn/kd/{student_set}-a0.5-T1-marginals-" in dry.stdout and "-trnews7/seed-1" in dry.stdout
    assert "--alpha 0 " not in dry.stdout  # the plain runs are shared with the runs without a transfer set


def _dry_run(tmp_path: Path, *args: str) -> str:
    """`make -n` in an empty folder: the commands a target would run, none run."""
    run = subprocess.run(["make", "-f", str(ROOT / "Makefile"), "-n", "-o", f"{sys.prefix}/bin/swener",
                          f"VENV={sys.prefix}", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SWENER_DATA": str(corpora.data_root())})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _copy_line(dry: str) -> str:
    return next(line for line in dry.splitlines() if line.startswith("mkdir -p results") and "/REPORT.md " in line)


def test_the_full_profile_ends_with_the_report_in_results_and_quick_stays_in_results_quick(tmp_path):
    full = _dry_run(tmp_path, "experiment")
    assert '--via "make experiment"' in full and "swener report --profile full" in full
    copy = _copy_line(full).split()
    assert copy[-1] == "results/" and [Path(p).name for p in copy[5:-1]] == ["REPORT.md", "results.json", "*.png"]
    quick = _dry_run(tmp_path, "experiment", "QUICK=1")
    assert '--via "make experiment QUICK=1"' in quick and "swener report --profile quick" in quick
    assert _copy_line(quick).split()[-1] == "results/quick/"
    assert " results/ " not in quick and not any(line.rstrip().endswith(" results/") for line in quick.splitlines())


def test_report_committed_rebuilds_results_report_from_the_committed_runs(tmp_path):
    runs = ROOT / "results" / "runs" / "models"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs").symlink_to(runs.parent, target_is_directory=True)
    dry = _dry_run(tmp_path, "report-committed")
    committed = sorted(runs.glob("*/*/*/seed-*/results.json"))
    assert len(committed) == 80  # the converged run: 8 families x plain and KD x 5 seeds
    assert dry.count("--result results/runs/models/") == 80
    assert "--teacher results/runs/teacher.json --out results " in dry
