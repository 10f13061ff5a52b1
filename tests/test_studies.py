"""The dev studies: KD effects paired with plain runs by seed, the lines of the two plots, paired tables."""
import json
import math
import statistics
from pathlib import Path

import pytest

from swener.report.studies import build_studies, kd_effects, teacher_lines, transfer_lines
from swener.students.sweep import write_table


def _row(family="bilstm", alpha=0.5, seed=1, f1=0.70, teacher="t-good", teacher_f1=0.84, text=None, size=None,
         updates=None, target="marginals"):
    name = ("plain" if alpha == 0 else f"a{alpha}-T1-{target}") + (f"-tr{text}{size}" if text else "") + f"-s{seed}"
    return {"name": name, "family": family, "alpha": alpha, "alpha_end": None, "temperature": 1.0,
            "kd_target": target, "transfer_text": f"data/{text}.txt.gz" if text else None,
            "transfer_sentences": size, "seed": seed, "epochs": 10, "updates": updates, "hidden_size": 256,
            "dev_f1": f1, "dev_per_type": {"PER": f1}, "epochs_run": 10, "minutes": 1.0, "train_sentences": 10,
            "machine": "m", "teacher": teacher, "teacher_dev_f1": teacher_f1}


ROWS = [_row(alpha=0, seed=1, f1=0.70), _row(alpha=0, seed=2, f1=0.68), _row(alpha=0, seed=3, f1=0.50),
        _row(alpha=0, seed=1, f1=0.10, teacher="t-other"),  # another sweep's plain run: not t-good's pair
        _row(seed=1, f1=0.72), _row(seed=2, f1=0.71),
        _row(seed=1, f1=0.66, teacher="t-weak", teacher_f1=0.64), _row(seed=2, f1=0.65, teacher="t-weak",
                                                                          teacher_f1=0.64),
        _row(seed=1, f1=0.73, text="almedalen", size=20000, updates=3000),
        _row(seed=4, f1=0.99, text="almedalen", size=50000)]  # no plain run of seed 4: left out


def test_effects_pair_each_kd_run_with_the_plain_run_of_its_sweep_and_seed():
    effects = {(e["teacher"], e["transfer_sentences"]): e for e in kd_effects(ROWS)}
    assert set(effects) == {("t-good", 0), ("t-weak", 0), ("t-good", 20000)}
    good = effects[("t-good", 0)]
    assert good["seeds"] == 2 and good["plain_dev_f1"] == pytest.approx(0.69)  # seed 3's plain run is unpaired
    assert good["delta"] == pytest.approx(((0.72 - 0.70) + (0.71 - 0.68)) / 2)
    assert good["deltas"] == pytest.approx([0.02, 0.03])
    assert good["paired"] and not effects[("t-weak", 0)]["paired"]
    # a sweep without plain trials of its own: against the mean of every plain trial of the family
    assert effects[("t-weak", 0)]["delta"] == pytest.approx((0.66 + 0.65) / 2 - (0.70 + 0.68 + 0.50 + 0.10) / 4)
    assert effects[("t-good", 20000)]["transfer"] == "almedalen" and effects[("t-good", 20000)]["updates"] == 3000


def test_plot_lines_order_teachers_and_start_transfer_lines_at_zero():
    effects = kd_effects(ROWS)
    weak = 100 * ((0.66 + 0.65) / 2 - (0.70 + 0.68 + 0.50 + 0.10) / 4)
    assert teacher_lines(effects) == {"bilstm a0.5-T1-marginals": [
        (0.64, pytest.approx(weak), 2), (0.84, pytest.approx(2.5), 2)]}
    assert transfer_lines(effects) == {"bilstm a0.5-T1-marginals +almedalen, teacher 0.840, 3000 updates": [
        (0, pytest.approx(2.5), 2), (20000, pytest.approx(3.0), 1)]}
    # another teacher's and another budget's transfer trials: lines of their own, not merged into that one
    more = kd_effects([*ROWS, _row(alpha=0, seed=1, f1=0.60, teacher="t-new", teacher_f1=0.85),
                       _row(seed=1, f1=0.62, teacher="t-new", teacher_f1=0.85),
                       _row(seed=1, f1=0.64, teacher="t-new", teacher_f1=0.85, text="almedalen", size=10000),
                       _row(seed=1, f1=0.61, teacher="t-new", teacher_f1=0.85, text="almedalen", size=50000),
                       _row(seed=1, f1=0.75, text="almedalen", size=20000)])
    lines = transfer_lines(more)
    assert lines["bilstm a0.5-T1-marginals +almedalen, teacher 0.850"] == [
        (0, pytest.approx(2.0), 1), (10000, pytest.approx(4.0), 1), (50000, pytest.approx(1.0), 1)]
    assert lines["bilstm a0.5-T1-marginals +almedalen, teacher 0.840"] == [
        (0, pytest.approx(2.5), 2), (20000, pytest.approx(5.0), 1)]
    assert len(lines) == 3


def test_build_studies_writes_the_table_and_both_plots(tmp_path):
    write_table(tmp_path / "a.json", ROWS[:5])
    write_table(tmp_path / "b.json", ROWS[3:])  # trials in both tables count once
    build_studies([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "studies.json").read_text())
    assert len(saved["effects"]) == 3 and saved["effects"] == kd_effects(ROWS)
    assert "| bilstm | a0.5-T1-marginals | almedalen | 20,000 | 3000 | 0.840 | 1 |" in (
        tmp_path / "out" / "studies.md").read_text()
    for name in ("kd_vs_teacher.png", "kd_vs_transfer.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"


# ----- paired dev tables of a study (swener study paired / budget) -----

ARCHIVE = Path(__file__).resolve().parents[1] / "results" / "archive"


def _trial(name: str, seed: int, f1: float, teacher: str = "t", text: str | None = None) -> dict:
    return {**_row(alpha=0 if name.startswith("plain") else 0.5, seed=seed, f1=f1, teacher=teacher,
                   text=text, size=10000 if text else None), "name": f"{name}-s{seed}"}


def test_t_interval_against_tabulated_quantiles():
    from swener.report.paired import t_interval

    # t(0.975, 4) = 2.776445 and t(0.975, 1) = 12.706205 (printed t tables)
    low, high = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * statistics.stdev([1, 2, 3, 4, 5]) / math.sqrt(5)
    assert (low, high) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert t_interval([0.5, 1.5]) == pytest.approx((1 - 12.706205 * 0.5, 1 + 12.706205 * 0.5), abs=1e-5)
    assert t_interval([1.0]) is None


def test_paired_rows_pair_each_kd_trial_with_the_plain_trial_of_its_seed():
    from swener.report.paired import rows, teacher_source

    trials = [_trial("plain", 1, 0.70), _trial("plain", 2, 0.68), _trial("plain", 3, 0.66),
              _trial("kd", 1, 0.71, text="almedalen"), _trial("kd", 2, 0.70, text="almedalen"),
              _trial("kd", 1, 0.69, teacher="t-in"), _trial("kd", 4, 0.90, teacher="t-in")]  # seed 4: no plain
    out = rows(trials, "bilstm", teacher_source("out-of-fold", {"-in": "in-fold"}))
    assert out[0] == "| bilstm | plain | - | 3 | 0.6800 | - | - |"
    # +1.00 and +2.00 points: mean +1.50, t(0.975, 1) x sd / sqrt(2) = 12.706 x 0.7071 / 1.4142 = 6.35
    assert out[1] == ("| bilstm | out-of-fold | alpha 0.5, marginals, almedalen.txt.gz 10000 | 2 | 0.7050 | "
                      "+1.50 (+1.00, +2.00) | [-4.85, +7.85] |")
    # seed 4 has no plain pair: it counts in the mean dev F1, not in the paired difference
    assert out[2] == "| bilstm | in-fold | alpha 0.5, marginals, no transfer | 2 | 0.7950 | -1.00 (-1.00) | - |"


def test_budget_table_compares_at_equal_epochs_and_at_equal_updates(tmp_path):
    from swener.report.paired import budget_summary, teacher_source

    write_table(tmp_path / "bilstm-ep10.json", [_trial("plain", 1, 0.70), _trial("kd", 1, 0.71, text="a")])
    write_table(tmp_path / "bilstm-ep20.json", [_trial("plain", 1, 0.73), _trial("kd", 1, 0.72, text="a")])
    lines = budget_summary(tmp_path, teacher_source("teacher")).splitlines()
    assert [line.split(" | ")[0:2] for line in lines[2:]] == [
        ["| bilstm, ep10", "plain"], ["| bilstm, ep10", "teacher"], ["| bilstm, ep20", "plain"],
        ["| bilstm, ep20", "teacher"], ["| bilstm, equal updates", "KD ep10 vs plain ep20"]]
    assert "| -2.00 (-2.00) |" in lines[-1]  # KD at 10 epochs 0.71 against plain at 20 epochs 0.73


@pytest.mark.parametrize("folder, args", [
    ("2026-12-02-dense-transfer", ["paired", "{f}/bilstm.json", "--kd-from", "teacher (lb, ep10)"]),
    ("2026-12-02-out-of-fold", ["paired", "{f}/bilstm.json", "{f}/bilstm-crf.json", "--kd-from", "out-of-fold",
                                "--teacher-label", "-in=in-fold (control)"]),
    ("2026-12-05-budget", ["budget", "{f}", "--kd-from", "teacher (lb, ep10)"])])
def test_study_commands_rebuild_the_archived_summaries(folder, args, tmp_path):
    """The commands that replaced the studies' summarise.py scripts give their committed summary.md again."""
    from click.testing import CliRunner

    from swener.cli import main

    where = ARCHIVE / folder
    out = tmp_path / "summary.md"
    result = CliRunner().invoke(main, ["study", *(a.format(f=where) for a in args), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (where / "summary.md").read_text()


def test_study_keeps_the_old_call_form_and_names_bad_tables(tmp_path):
    from click.testing import CliRunner

    from swener.cli import main

    write_table(tmp_path / "a.json", ROWS)
    result = CliRunner().invoke(main, ["study", str(tmp_path / "a.json"), "--out", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "old" / "studies.md").is_file()  # `swener study TABLE... --out` is `study sweeps`
    (tmp_path / "empty.json").write_text('{"trials": []}')
    result = CliRunner().invoke(main, ["study", "paired", str(tmp_path / "empty.json")])
    assert result.exit_code == 1 and "empty.json: no trials" in result.output and "Traceback" not in result.output
