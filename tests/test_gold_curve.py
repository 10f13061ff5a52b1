"""The gold curve (issue 36): its table from synthetic runs checked against an independent computation, its
command, and the Makefile section's commands (`make -n gold-curve`) and defaults."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from swener import config
from swener.cli import main
from swener.data import corpora
from swener.errors import SwenerError
from swener.report import gold_curve

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "webbnyheter2012"
TEST_SETS = (f"{CORPUS}/test", "uner-pud/test")
POOL = "corpora/heldback/webbnyheter2012-gold{}.tokens"


def counts(rng: np.random.Generator, n: int, recall: float) -> np.ndarray:
    """Per-sentence [tp, predicted, gold] of a tagger that finds `recall` of the entities."""
    gold = rng.integers(1, 4, n)
    tp = rng.binomial(gold, recall)
    return np.stack([tp, tp + rng.binomial(1, 0.3, n), gold], axis=1)


def write_run(root: Path, family: str, gold: int | None, seed: int, rows: dict, alpha: float = 0.0,
              transfer: str | None = None, teacher_gold: int | None = None) -> Path:
    """A results.json as swener.students.run writes it for `swener train --gold N` (scores from the counts)."""
    mode = "plain" if alpha == 0 else "kd"
    arm = f"{transfer}-{teacher_gold}" if alpha else ""
    folder = root / family / mode / f"gold{gold}-{arm}".replace("/", "_") / f"seed-{seed}"
    folder.mkdir(parents=True)
    scores = {}
    for name, c in rows.items():
        tp, pred, gold_n = c.sum(0)
        scores[name] = {"micro_f1": float(2 * tp / (pred + gold_n)), "per_type": {}}
    settings = {"family": family, "alpha": alpha, "temperature": 1.0, "kd_target": "marginals",
                "hidden_size": 256, "epochs": 20, "updates": 3880, "learning_rate": 0.1, "seed": seed, "gold": gold,
                "transfer_text": transfer, "transfer_ratio": 11.0}
    data = {"settings": settings, "corpus": CORPUS, "embeddings": "embeddings/cbow", "scores": scores,
            "counts": {k: v.tolist() for k, v in rows.items()}, "cost": {},
            "training": {"train_seconds": 60.0 * (2 if alpha else 1), "train_sentences": gold or 6197},
            "teacher_gold": teacher_gold if alpha else None}
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def study(tmp_path: Path) -> dict:
    """bilstm gains much from KD at 250, nothing at all; cnn never; at 250 also almedalen and the all-gold teacher."""
    rng = np.random.default_rng(5)
    root = tmp_path / "models"
    paths, expected = [], {}
    recalls = {("bilstm", 250): (0.4, 0.8), ("bilstm", None): (0.8, 0.8), ("cnn", 250): (0.5, 0.5),
               ("cnn", None): (0.7, 0.7)}
    for (family, gold), (plain_recall, kd_recall) in recalls.items():
        main_transfer = POOL.format(gold) if gold else None
        for seed in (1, 2, 3):
            plain = {t: counts(rng, 60, plain_recall) for t in TEST_SETS}
            kd = plain if plain_recall == kd_recall else {t: counts(rng, 60, kd_recall) for t in TEST_SETS}
            paths.append(write_run(root, family, gold, seed, plain))
            paths.append(write_run(root, family, gold, seed, kd, 0.5, main_transfer, gold))
            expected.setdefault((family, gold, "main"), []).append((plain, kd))
            if family == "bilstm" and gold == 250:
                ood = {t: counts(rng, 60, 0.5) for t in TEST_SETS}
                paths.append(write_run(root, family, gold, seed, ood, 0.5, "/data/text/almedalen.txt.gz", 250))
                paths.append(write_run(root, family, gold, seed, kd, 0.5, main_transfer, None))
    return {"paths": paths, "expected": expected}


def f1(rows: np.ndarray) -> float:
    tp, pred, gold = rows.sum(0)
    return 2 * tp / (pred + gold)


def test_table_numbers_match_an_independent_computation(study):
    summary = gold_curve.summarize(study["paths"], samples=1000)
    assert summary["test_sets"] == list(TEST_SETS)
    cells = {(r["family"], r["gold"]): r for r in summary["cells"]}
    assert [(r["label"], r["family"]) for r in summary["cells"]] == [("250", "bilstm"), ("250", "cnn"),
                                                                     ("all", "bilstm"), ("all", "cnn")]
    rng = np.random.default_rng(11)
    for (family, gold, _), pairs in study["expected"].items():
        main_arm = [a for a in cells[(family, gold)]["arms"] if a["main"]]
        assert len(main_arm) == 1
        for test_set in TEST_SETS:
            effect = main_arm[0]["effect"][test_set]
            deltas = [f1(kd[test_set]) - f1(plain[test_set]) for plain, kd in pairs]
            assert effect["delta"] == pytest.approx(np.mean(deltas))
            assert cells[(family, gold)]["plain"]["f1"][test_set]["mean"] == pytest.approx(
                np.mean([f1(p[test_set]) for p, _ in pairs]))
            # an independent two-level bootstrap (seeds, then sentences), by loops
            draws = []
            for _ in range(1000):
                seeds = rng.integers(0, 3, 3)
                rows = rng.integers(0, 60, 60)
                draws.append(np.mean([f1(pairs[s][1][test_set][rows]) - f1(pairs[s][0][test_set][rows])
                                      for s in seeds]))
            low, high = np.quantile(draws, [0.025, 0.975])
            width = high - low
            if width > 0:
                assert effect["low"] == pytest.approx(low, abs=0.2 * width)
                assert effect["high"] == pytest.approx(high, abs=0.2 * width)
            else:
                assert effect["low"] == effect["high"] == 0
            assert effect["holm_p"] >= effect["p_value"]
    big = [a for a in cells[("bilstm", 250)]["arms"] if a["main"]][0]["effect"][TEST_SETS[0]]
    assert big["delta"] > 0.1 and big["holm_verdict"] == "benefits"
    assert summary["pays"] == {"bilstm": ["250"], "cnn": []}
    arms = {(a["transfer"], a["teacher"]) for a in cells[("bilstm", 250)]["arms"]}
    assert arms == {(gold_curve.POOL, "own teacher"), ("almedalen", "own teacher"),
                    (gold_curve.POOL, "all-gold teacher")}
    assert cells[("bilstm", None)]["arms"][0]["transfer"] == "no transfer set"
    assert cells[("bilstm", None)]["sentences"] == 6197


def test_report_files_and_command(study, tmp_path):
    teacher = tmp_path / "teacher.json"
    teacher.write_text(json.dumps({"scores": {TEST_SETS[0]: {"micro_f1": 0.91}}, "training": {"train_seconds": 600}}))
    out = tmp_path / "gold-curve"
    args = ["gold-curve", "report", "--samples", "2000", "--teacher", f"250={teacher}", "--out", str(out)]
    result = CliRunner().invoke(main, args + [a for p in study["paths"] for a in ("--result", str(p))])
    assert result.exit_code == 0, result.output
    assert "bilstm: KD gains >= 2 points in domain at N = 250" in result.output
    text = (out / "GOLD_CURVE.md").read_text()
    number = r"\d+\.\d"
    assert re.search(rf"\| 250 \| bilstm \| 91\.0 \| {number} \| {number} \| \+{number} \[\+{number}, \+{number}\] "
                     r"\| benefits", text)
    assert "| 250 | bilstm | almedalen | own teacher |" in text and "- cnn: never" in text
    assert "| 250 | bilstm | 10.0 | 1.0 | 2.0 |" in text  # teacher, plain and KD minutes
    saved = json.loads((out / "gold_curve.json").read_text())
    assert saved["cells"][0]["teacher"]["f1"] == {TEST_SETS[0]: 0.91}
    assert (out / "gold_curve.png").stat().st_size > 1000


def test_the_report_refuses_duplicate_and_mixed_runs(study, tmp_path):
    with pytest.raises(SwenerError, match="second kd run of 250 bilstm with seed 1"):
        gold_curve.collect_cells(study["paths"] + [study["paths"][1]])
    data = json.loads(study["paths"][0].read_text())
    data["settings"]["learning_rate"] = 0.05
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    with pytest.raises(SwenerError, match="mixes runs of different settings"):
        gold_curve.collect_cells(study["paths"] + [other])
    with pytest.raises(SwenerError, match="no student results"):
        gold_curve.collect_cells([])


def makefile_defaults() -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for line in (ROOT / "Makefile").read_text().splitlines()
            if (m := re.match(r"^(GOLD_[A-Z_]+) \?=\s*(.*)$", line))}


def test_the_gold_makefile_defaults_are_the_python_defaults():
    make = makefile_defaults()
    assert make["GOLD_SIZES"] == " ".join(map(str, config.GOLD_SIZES)) + " all"
    assert int(make["GOLD_TEACHER_MIN_UPDATES"]) == config.GOLD_TEACHER_MIN_UPDATES
    assert int(make["GOLD_UPDATES"]) == config.GOLD_UPDATES
    assert float(make["GOLD_TRANSFER_RATIO"]) == config.GOLD_TRANSFER_RATIO
    assert make["GOLD_SEEDS"] == " ".join(map(str, config.SEEDS))


def test_make_gold_curve_prints_the_study_commands(tmp_path):
    run = subprocess.run(["make", "-f", str(ROOT / "Makefile"), "-n", "-o", f"{sys.prefix}/bin/swener",
                          f"VENV={sys.prefix}", "gold-curve", "GOLD_SIZES=250 all", "GOLD_SEEDS=1 2",
                          "GOLD_FAMILIES=bilstm-crf bilstm", "GOLD_OOD_SIZES=250", "GOLD_UPPER_SIZES=250 all"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SWENER_DATA": str(corpora.data_root())})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()

    def having(*parts: str) -> list[str]:
        return [line for line in lines if all(p in line for p in parts)]

    pool = POOL.format(250)
    teacher = having("teacher train", "--gold 250")
    assert len(teacher) == 1 and "--min-updates 2000" in teacher[0] and "-gold250-u2000" in teacher[0]
    assert len(having("teacher train")) == 2  # the gold-250 teacher and the headline teacher (all)
    assert len(having("corpus held-back", "--gold 250", f"--out {pool}")) == 1
    assert len(having("teacher soft-labels", "--split train --split dev --gold 250")) == 2  # own + all-gold teacher
    assert len(having("teacher soft-labels", f"--text {pool}")) == 2
    assert len(having("teacher kbest", "--gold 250", f"--text {pool}")) == 2  # bilstm-crf's target is kbest
    for family in ("bilstm-crf", "bilstm"):
        for seed in (1, 2):
            plain = having(f"train --family {family} ", "--alpha 0 ", f"--seed {seed} ")
            assert len(plain) == 2 and all("--updates 3880" in p for p in plain)  # at 250 and all
            kd = having(f"train --family {family} ", "--alpha 0.5", "--gold 250", f"--seed {seed} ")
            assert len(kd) == 3 and all("--updates 3880" in k and "--transfer-ratio 11" in k for k in kd)
            assert len([k for k in kd if f"--transfer {pool}" in k]) == 2  # own teacher and the all-gold one
            assert len([k for k in kd if "almedalen.txt.gz --transfer-sentences $(grep -c '^$' " + pool in k]) == 1
            assert len(having(f"train --family {family} ", "--alpha 0.5", "--gold all", f"--seed {seed} ")) == 1
    report = having("gold-curve report")
    assert len(report) == 1 and "--out results/gold-curve" in run.stdout and "--teacher 250=" in run.stdout
    assert run.stdout.count("--result ") == 2 * 2 * (2 + 4)  # families x seeds x (2 plain + 4 KD)
