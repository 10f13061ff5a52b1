"""The dev studies: KD effects paired with plain runs by seed, and the lines of the two plots."""
import json

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
