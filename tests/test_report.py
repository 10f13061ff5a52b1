"""The report builder on synthetic results: verdicts, the two-level bootstrap by hand, pairing, files."""
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from swener import report
from swener.errors import SwenerError
from swener.eval.scoring import f1_from_counts, paired_bootstrap, sentence_counts

CORPUS = "webbnyheter2012"
TEST_SETS = (f"{CORPUS}/test", "uner-pud/test", "uner-talbanken/test")
TYPES = ("LOC", "ORG", "PER")


def fake_counts(rng: np.random.Generator, n: int, recall: float) -> np.ndarray:
    """Per-sentence [tp, predicted, gold] for a tagger that finds `recall` of the entities."""
    gold = rng.integers(0, 4, n)
    tp = rng.binomial(gold, recall)
    return np.stack([tp, tp + rng.binomial(1, 0.2, n), gold], axis=1)


def write_run(root: Path, family: str, seed: int, counts: dict[str, np.ndarray], alpha: float = 0.0,
              temperature: float = 2.0, epoch_seconds: float = 10.0, tokens_per_second: float = 5000.0,
              updates: int = 194, dev_f1: float | None = None) -> Path:
    """A results.json as swener.students.run writes it, scores derived from the counts (dev F1 if given)."""
    mode = "plain" if alpha == 0 else "kd"
    folder = root / family / mode / f"{CORPUS}-test" / f"seed-{seed}"
    folder.mkdir(parents=True)
    scores = {}
    for name, rows in counts.items():
        f1 = float(f1_from_counts(rows))
        scores[name] = {"micro_f1": f1, "macro_f1": f1, "precision": f1, "recall": f1, "mapped_to_o": [],
                        "per_type": {t: {"precision": f1, "recall": f1, "f1-score": min(1.0, f1 + 0.01 * i),
                                         "support": 10.0} for i, t in enumerate(TYPES)}}
    if dev_f1 is not None:
        scores[f"{CORPUS}/dev"] = {"micro_f1": dev_f1, "per_type": {}}
    settings = {"family": family, "alpha": alpha, "temperature": temperature, "kd_target": "marginals",
                "hidden_size": 256, "epochs": 3, "learning_rate": 0.1, "batch_size": 32, "seed": seed,
                "max_sentences": 100}
    data = {"settings": settings, "corpus": CORPUS, "embeddings": "embeddings/cbow-d100",
            "soft_labels": "softlabels/t" if alpha else None, "scores": scores,
            "counts": {k: v.tolist() for k, v in counts.items()},
            "cost": {"tokens_per_second": tokens_per_second * (1 + 0.02 * seed), "latency_ms": 3.0,
                     "parameters": 2_000_000, "parameters_without_embeddings": 300_000, "size_bytes": 8_000_000,
                     "peak_rss_mb": 900.0},
            "training": {"train_seconds": 3 * epoch_seconds, "epoch_seconds": epoch_seconds,
                         "updates_per_epoch": updates}}
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Three families x plain/KD x 3 seeds: one gains from KD, one loses, one is unchanged."""
    rng = np.random.default_rng(7)
    root = tmp_path / "models"
    recalls = {"bilstm-crf": (0.5, 0.9), "cnn": (0.9, 0.5), "bilstm": (0.7, 0.7)}
    speeds = {"bilstm-crf": 3000.0, "cnn": 20000.0, "bilstm": 4000.0}
    for family, (plain_recall, kd_recall) in recalls.items():
        for seed in (1, 2, 3):
            plain = {t: fake_counts(rng, 80, plain_recall) for t in TEST_SETS}
            kd = plain if plain_recall == kd_recall else {t: fake_counts(rng, 80, kd_recall) for t in TEST_SETS}
            write_run(root, family, seed, plain, tokens_per_second=speeds[family])
            write_run(root, family, seed, kd, alpha=0.5, epoch_seconds=13.0, tokens_per_second=speeds[family])
    return root


def teacher_json(path: Path) -> Path:
    rng = np.random.default_rng(3)
    counts = {t: fake_counts(rng, 80, 0.95) for t in TEST_SETS}
    scores = {t: {"micro_f1": float(f1_from_counts(c)), "per_type": {k: {"f1-score": 0.9} for k in TYPES}}
              for t, c in counts.items()}
    path.write_text(json.dumps({
        "model": "models/teacher/best-model.pt", "scores": scores, "counts": {k: v.tolist() for k, v in counts.items()},
        "cost": {"tokens_per_second": 400.0, "latency_ms": 40.0, "parameters": 118_000_000,
                 "parameters_without_embeddings": 21_000_000, "size_bytes": 470_000_000, "peak_rss_mb": 2100.0},
        "training": {"epoch_seconds": 900.0},
        "soft_labels": {"seconds": 120.0, "bytes": 5_000_000, "files": ["dev.npz", "train.npz"], "folder": "s"}}))
    return path


def test_verdicts():
    assert report.verdict(0.001, 0.02) == "benefits"
    assert report.verdict(-0.03, -0.01) == "hurts"
    assert report.verdict(-0.01, 0.02) == "no clear effect"
    assert report.verdict(0.0, 0.02) == "no clear effect"  # touching 0 is not above it
    plain = np.array([[[1, 2, 2], [0, 1, 1]]] * 2)
    better = np.array([[[2, 2, 2], [1, 1, 1]]] * 2)
    assert report.kd_effect(plain, better, samples=200).verdict == "benefits"
    assert report.kd_effect(better, plain, samples=200).verdict == "hurts"
    assert report.kd_effect(plain, plain, samples=200).verdict == "no clear effect"


def test_two_level_bootstrap_by_hand():
    # 2 seeds x 2 sentences (A, B), one gold entity each; counts are [tp, predicted, gold].
    plain = np.array([[[1, 1, 1], [0, 1, 1]],    # seed 1: A right, B wrong
                      [[1, 1, 1], [0, 0, 1]]])   # seed 2: A right, B missed
    kd = np.array([[[1, 1, 1], [1, 1, 1]],       # seed 1: both right
                   [[1, 1, 1], [0, 1, 1]]])      # seed 2: A right, B wrong
    # F1 on the sentence draws AA, AB (= BA), BB:
    #   seed 1 plain 1, 1/2, 0     KD 1, 1, 1      -> delta 0, 1/2, 1
    #   seed 2 plain 1, 2/3, 0     KD 1, 1/2, 0    -> delta 0, -1/6, 0
    per_seed = {(1, "AA"): 0, (1, "AB"): 1 / 2, (1, "BB"): 1, (2, "AA"): 0, (2, "AB"): -1 / 6, (2, "BB"): 0}
    seed_draws, sentence_draws, expected = [], [], []
    for seeds, sentences in itertools.product(itertools.product([0, 1], repeat=2), itertools.product([0, 1], repeat=2)):
        seed_draws.append(seeds)
        sentence_draws.append(sentences)
        name = "".join(sorted("AB"[i] for i in sentences))
        expected.append(np.mean([per_seed[(s + 1, name)] for s in seeds]))
    effect = report.kd_effect(plain, kd, seed_draws=np.array(seed_draws), sentence_draws=np.array(sentence_draws))
    assert effect.samples == 16
    np.testing.assert_allclose(effect.deltas, expected)
    # the point estimate: seed 1 gains 1/2, seed 2 loses 1/6
    assert effect.delta == pytest.approx((1 / 2 - 1 / 6) / 2)
    assert (effect.low, effect.high) == pytest.approx(tuple(np.quantile(expected, [0.025, 0.975])))
    assert effect.low < 0 < effect.high and effect.verdict == "no clear effect"
    at_or_below, at_or_above = sum(d <= 0 for d in expected), sum(d >= 0 for d in expected)  # 10 and 10 of 16
    assert effect.p_value == pytest.approx(min(1.0, 2 * (min(at_or_below, at_or_above) + 1) / 17))


def test_one_seed_matches_the_paired_sentence_bootstrap():
    gold = [["B-PER", "O"], ["B-LOC", "B-ORG"], ["O", "B-PER"], ["B-ORG", "I-ORG"]]
    pred_a = [["B-PER", "O"], ["B-LOC", "O"], ["O", "O"], ["B-ORG", "O"]]
    pred_b = [["B-PER", "O"], ["B-LOC", "B-ORG"], ["O", "B-LOC"], ["B-ORG", "I-ORG"]]
    indices = np.random.default_rng(1).integers(0, 4, size=(300, 4))
    expected = paired_bootstrap(gold, pred_a, pred_b, indices=indices)
    effect = report.kd_effect(sentence_counts(gold, pred_a)[None], sentence_counts(gold, pred_b)[None],
                              seed_draws=np.zeros((300, 1), dtype=int), sentence_draws=indices)
    assert (effect.delta, effect.low, effect.high) == pytest.approx((expected.delta, expected.low, expected.high))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[seeds, sentences, 3\]"):
        report.kd_effect(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))


def test_collect_pairs_by_seed_and_separates_kd_settings(tmp_path):
    counts = {TEST_SETS[0]: np.array([[1, 1, 1]])}
    for seed in (1, 2):
        write_run(tmp_path, "cnn", seed, counts)
        write_run(tmp_path, "cnn", seed, counts, alpha=0.5)
    write_run(tmp_path / "sweep", "cnn", 1, counts, alpha=0.5, temperature=4.0)
    comparisons = report.collect(report.find_results(tmp_path) + report.find_results(tmp_path / "sweep"))
    assert len(comparisons) == 2
    assert [c.paired_seeds for c in comparisons] == [[1, 2], [1]]
    assert all(sorted(c.plain) == [1, 2] for c in comparisons)  # the same plain runs serve both
    assert [c.label for c in comparisons] == ["cnn (temperature=2.0)", "cnn (temperature=4.0)"]
    with pytest.raises(SwenerError, match="seed 1"):
        report.collect([*report.find_results(tmp_path), *report.find_results(tmp_path)])


def test_build_writes_report_json_and_plots(models, tmp_path):
    out = tmp_path / "results"
    paths = report.build(report.find_results(models), out, teacher=teacher_json(tmp_path / "teacher.json"),
                         command="swener report", samples=300)
    text = paths["report"].read_text()
    for family in ("bilstm-crf", "cnn", "bilstm"):
        assert f"| {family} | {CORPUS} |" in text  # a KD-effect row per family
        assert f"| {family} | KD | 3 |" in text and f"| {family} | plain | 3 |" in text
    assert "| teacher |" in text and "120 s of teacher time" in text and "How to read this" in text
    summary = json.loads(paths["results"].read_text())
    verdicts = {f["family"]: f["kd_effect"][f"{CORPUS}/test"]["verdict"] for f in summary["families"]}
    assert verdicts == {"bilstm-crf": "benefits", "cnn": "hurts", "bilstm": "no clear effect"}
    assert summary["test_sets"] == list(TEST_SETS)
    cost = next(f["cost"] for f in summary["families"] if f["family"] == "cnn")
    assert cost["kd_epoch_ratio"] == pytest.approx(1.3)
    for name in ("tradeoff", "effects"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[name].stat().st_size > 1000
    assert not list(out.glob(".*"))  # no temporary files left


def test_cli_report(models, tmp_path):
    from click.testing import CliRunner

    from swener.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", "--models", str(models), "--out", str(out), "--samples", "200"])
    assert result.exit_code == 0, result.output
    assert (out / "REPORT.md").is_file() and "wrote" in result.output
    empty = CliRunner().invoke(main, ["report", "--models", str(tmp_path / "none"), "--out", str(out)])
    assert empty.exit_code == 1 and "no student results" in empty.output


def test_oov_entity_score_by_hand():
    from swener.eval.evaluate import oov_entity_score

    tokens = [["Anna", "Xqz", "bor", "i", "Lund"], ["Ölandsbron", "var", "stängd"]]
    gold = [["B-PER", "I-PER", "O", "O", "B-LOC"], ["B-LOC", "O", "O"]]
    pred = [["B-PER", "O", "O", "O", "B-LOC"], ["B-LOC", "O", "O"]]
    known = {"Anna", "bor", "i", "Lund", "var", "stängd"}.__contains__
    # entities with an unknown word: gold "Anna Xqz" and "Ölandsbron"; predicted only "Ölandsbron"
    result = oov_entity_score(gold, pred, tokens, known)
    assert (result["true_positives"], result["predicted"], result["gold"]) == (1, 1, 2)
    assert result["f1"] == pytest.approx(2 * 1 / (1 + 2))
    # every word known: no entity counts
    assert oov_entity_score(gold, pred, tokens, lambda t: True)["gold"] == 0


def test_compare_table_groups_runs_by_settings_folder(tmp_path):
    from click.testing import CliRunner

    from swener.cli import main

    counts = {TEST_SETS[0]: np.array([[1, 2, 2]]), TEST_SETS[1]: np.array([[1, 1, 1]])}
    paths = []
    for seed, oov_f1 in ((1, 0.5), (2, 0.7)):
        for root, value in ((tmp_path / "a", oov_f1), (tmp_path / "b", oov_f1 - 0.2)):
            path = write_run(root, "bilstm-crf", seed, counts)
            data = json.loads(path.read_text())
            data["oov_entities"] = {TEST_SETS[0]: {"f1": value, "true_positives": 1, "predicted": 2, "gold": 40}}
            path.write_text(json.dumps(data))
            paths.append(path)
    table = report.compare_table(paths)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "1, 2" in rows[0]
    assert rows[0].endswith("| 60.0 ± 14.1 (40) |") and rows[1].endswith("| 40.0 ± 14.1 (40) |")
    assert "| 50.0 ± 0.0 | 100.0 ± 0.0 |" in rows[0]  # webbnyheter2012 test (2·1/(2+2)), then uner-pud
    out = tmp_path / "oov.md"
    result = CliRunner().invoke(main, ["compare", *map(str, paths), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == table


def _zero_counts(n: int) -> np.ndarray:
    """Per-sentence counts of a tagger that finds nothing: tp 0, predicted 0, gold 1."""
    return np.tile([0, 0, 1], (n, 1))


def test_report_states_its_profile_and_settings(models, tmp_path):
    paths = report.build(report.find_results(models), tmp_path / "q", teacher=teacher_json(tmp_path / "t.json"),
                         samples=100)
    text = paths["report"].read_text()
    summary = json.loads(paths["results"].read_text())
    # the runs trained on a slice (max_sentences 100): the quick profile, said before anything else
    assert summary["profile"] == "quick" and text.index("**Profile: quick**") < text.index("## How to read this")
    assert "- max_sentences: 100" in text and "- seeds: 1 2 3" in text and "- epochs: 3" in text
    assert "- alpha: 0.5" in text and "- teacher: model=models/teacher/best-model.pt" in text
    assert summary["settings"]["corpus"] == CORPUS and summary["settings"]["learning_rate"] == 0.1
    full = report.build(report.find_results(models), tmp_path / "f", samples=100, profile="full")
    assert json.loads(full["results"].read_text())["profile"] == "full"
    assert "**Profile: full**" in full["report"].read_text()
    with pytest.raises(SwenerError, match="expected quick or full"):
        report.build(report.find_results(models), tmp_path / "x", samples=100, profile="fast")


def test_no_verdict_for_degenerate_comparisons(tmp_path):
    """A teacher at 0, both arms at 0, or a teacher no better than the plain student: the reason, not a verdict."""
    rng = np.random.default_rng(5)
    root = tmp_path / "models"
    for seed in (1, 2):
        good = {t: fake_counts(rng, 60, 0.6) for t in TEST_SETS}
        better = {t: fake_counts(rng, 60, 0.95) for t in TEST_SETS}
        zero = {t: _zero_counts(60) for t in TEST_SETS}
        write_run(root, "cnn", seed, zero)  # both arms of the CNN score 0
        write_run(root, "cnn", seed, zero, alpha=0.5)
        write_run(root, "bilstm", seed, better)  # the plain BiLSTM beats the teacher
        write_run(root, "bilstm", seed, good, alpha=0.5)
        write_run(root, "bilstm-crf", seed, {t: fake_counts(rng, 60, 0.3) for t in TEST_SETS})
        write_run(root, "bilstm-crf", seed, good, alpha=0.5)
    counts = {TEST_SETS[0]: fake_counts(rng, 60, 0.8), TEST_SETS[1]: _zero_counts(60),
              TEST_SETS[2]: fake_counts(rng, 60, 0.8)}
    scores = {t: {"micro_f1": float(f1_from_counts(c)), "per_type": {}} for t, c in counts.items()}
    teacher = {"model": "t.pt", "scores": scores, "counts": {k: v.tolist() for k, v in counts.items()},
               "cost": {}, "training": {}}
    paths = report.build(report.find_results(root), tmp_path / "out", teacher=teacher, samples=200)
    summary = json.loads(paths["results"].read_text())
    effects = {f["family"]: f["kd_effect"] for f in summary["families"]}
    in_domain, pud = TEST_SETS[0], TEST_SETS[1]
    assert effects["cnn"][in_domain]["refused"] == "plain and KD both score 0"
    assert effects["cnn"][in_domain]["verdict"] is None
    assert effects["cnn"][in_domain]["interval_verdict"] == "no clear effect"  # the zero-width interval at 0
    assert effects["bilstm"][in_domain]["refused"].startswith("the teacher (")
    assert "is not better than the plain student" in effects["bilstm"][in_domain]["refused"]
    assert all(effects[f][pud]["refused"] == "the teacher scores 0" for f in effects)
    assert effects["bilstm-crf"][in_domain]["refused"] is None
    assert effects["bilstm-crf"][in_domain]["verdict"] == "benefits"
    text = paths["report"].read_text()
    rows = [line for line in text.splitlines() if line.startswith("| cnn | ")]
    assert rows and all("no verdict: " in row and "**" not in row for row in rows[:3])
    assert "get no verdict: no verdict is printed when the teacher scores 0" in text
    assert f"| bilstm-crf | {CORPUS} |" in text and "**benefits**" in text


def test_costs_are_medians_with_their_range(tmp_path):
    counts = {TEST_SETS[0]: np.array([[1, 1, 1]])}
    for seed, speed in ((1, 1000.0), (2, 30000.0), (3, 5000.0)):  # noisy measurements of one architecture
        write_run(tmp_path, "cnn", seed, counts, tokens_per_second=speed)
        write_run(tmp_path, "cnn", seed, counts, alpha=0.5, tokens_per_second=speed * 1.1, epoch_seconds=12.0)
    cost = report.summarize(report.collect(report.find_results(tmp_path)), samples=50)["families"][0]["cost"]
    speeds = sorted(s * (1 + 0.02 * seed) * k for seed, s in ((1, 1000.0), (2, 30000.0), (3, 5000.0))
                    for k in (1.0, 1.1))
    assert cost["tokens_per_second"] == pytest.approx(np.median(speeds))
    assert cost["spread"]["tokens_per_second"] == {"low": pytest.approx(speeds[0]), "high": pytest.approx(speeds[-1]),
                                                   "n": 6}
    assert cost["kd_epoch_ratio"] == pytest.approx(1.2) and cost["kd_update_ratio"] == pytest.approx(1.2)
    text = report.render_markdown({**report.summarize(report.collect(report.find_results(tmp_path)), samples=50),
                                   "profile": "quick"})
    assert f"{np.median(speeds):,.0f} ({speeds[0]:,.0f}–{speeds[-1]:,.0f}, n=6)" in text
    assert "medians over the family's runs" in text


def test_cost_per_update_sets_a_transfer_sets_extra_updates_aside(tmp_path):
    counts = {TEST_SETS[0]: np.array([[1, 1, 1]])}
    for seed in (1, 2):  # KD epochs with a transfer set: twice the updates, 2.2 x the time
        write_run(tmp_path, "bilstm", seed, counts, epoch_seconds=10.0, updates=194)
        write_run(tmp_path, "bilstm", seed, counts, alpha=0.5, epoch_seconds=22.0, updates=388)
    cost = report.summarize(report.collect(report.find_results(tmp_path)), samples=50)["families"][0]["cost"]
    assert cost["kd_epoch_ratio"] == pytest.approx(2.2)
    assert cost["plain_update_ms"] == pytest.approx(1000 * 10 / 194) and cost["kd_update_ratio"] == pytest.approx(1.1)
    text = report.render_markdown({**report.summarize(report.collect(report.find_results(tmp_path)), samples=50),
                                   "profile": "full"})
    assert "KD/plain per update" in text and "| 51.5 (51.5–51.5, n=2) | 56.7 (56.7–56.7, n=2) | 2.20 | 1.10 |" in text


def test_share_of_the_teachers_lead_closed_by_the_best_kd_student(models, tmp_path):
    paths = report.build(report.find_results(models), tmp_path / "out", teacher=teacher_json(tmp_path / "t.json"),
                         samples=100)
    summary = json.loads(paths["results"].read_text())
    teacher = json.loads((tmp_path / "t.json").read_text())
    for gap in summary["gap"]:
        t = gap["test_set"]
        plain = {f["label"]: f["f1"]["plain"][t]["mean"] for f in summary["families"]}
        kd = {f["label"]: f["f1"]["kd"][t]["mean"] for f in summary["families"]}
        assert gap["best_plain"] == max(plain.values()) and plain[gap["best_plain_family"]] == gap["best_plain"]
        assert gap["best_kd"] == max(kd.values()) and kd[gap["best_kd_family"]] == gap["best_kd"]
        lead = teacher["scores"][t]["micro_f1"] - gap["best_plain"]
        assert gap["closed"] == pytest.approx((gap["best_kd"] - gap["best_plain"]) / lead)
    assert [g["test_set"] for g in summary["gap"]] == summary["test_sets"]
    assert "## How much of the teacher's lead KD closes" in paths["report"].read_text()


def test_a_comparisons_interval_does_not_depend_on_the_rest_of_the_report(tmp_path):
    """The bootstrap draws of a family are the same alone and beside a family whose settings rename its label."""
    rng = np.random.default_rng(11)
    for seed in (1, 2, 3):
        write_run(tmp_path / "a", "bilstm", seed, {t: fake_counts(rng, 80, 0.6) for t in TEST_SETS})
        write_run(tmp_path / "a", "bilstm", seed, {t: fake_counts(rng, 80, 0.65) for t in TEST_SETS}, alpha=0.5)
        counts = {t: fake_counts(rng, 80, 0.5) for t in TEST_SETS}
        write_run(tmp_path / "b", "cnn", seed, counts)
        write_run(tmp_path / "b", "cnn", seed, counts, alpha=0.5, temperature=4.0)
    alone = report.summarize(report.collect(report.find_results(tmp_path / "a")), samples=300)["families"]
    both = report.summarize(report.collect(report.find_results(tmp_path / "a") + report.find_results(tmp_path / "b")),
                            samples=300)["families"]
    assert [f["label"] for f in alone] == ["bilstm"]
    assert [f["label"] for f in both] == ["bilstm (temperature=2.0)", "cnn (temperature=4.0)"]
    for t in TEST_SETS:  # Holm's adjusted p depends on the table's other comparisons by design; nothing else may
        drop = ("holm_p", "holm_verdict")
        assert {k: v for k, v in alone[0]["kd_effect"][t].items() if k not in drop} == \
            {k: v for k, v in both[0]["kd_effect"][t].items() if k not in drop}


def test_runs_that_did_not_train_are_named(tmp_path):
    """A run at dev F1 0.0 (it predicts no entity) is listed in results.json and REPORT.md; others are not."""
    rng = np.random.default_rng(11)
    root = tmp_path / "models"
    for seed in (1, 2, 3):
        dead = seed == 3
        counts = {t: _zero_counts(50) if dead else fake_counts(rng, 50, 0.6) for t in TEST_SETS}
        write_run(root, "idcnn-crf", seed, counts, dev_f1=0.0 if dead else 0.5)
        write_run(root, "idcnn-crf", seed, counts, alpha=0.5, dev_f1=0.0 if dead else 0.55)
        write_run(root, "bilstm", seed, {t: fake_counts(rng, 50, 0.7) for t in TEST_SETS}, dev_f1=0.6)
    paths = report.build(report.find_results(root), tmp_path / "out", samples=100)
    untrained = json.loads(paths["results"].read_text())["untrained"]
    assert [(u["label"], u["mode"], u["seed"]) for u in untrained] == [("idcnn-crf", "plain", 3),
                                                                        ("idcnn-crf", "kd", 3)]
    assert "**2 run(s) did not train** (dev F1 0.0: no entity predicted): idcnn-crf plain seed 3, idcnn-crf KD seed 3" \
        in paths["report"].read_text()
    write_run(tmp_path / "fine", "bilstm", 1, {t: fake_counts(rng, 50, 0.7) for t in TEST_SETS}, dev_f1=0.6)
    write_run(tmp_path / "fine", "bilstm", 1, {t: fake_counts(rng, 50, 0.7) for t in TEST_SETS}, alpha=0.5)
    fine = report.build(report.find_results(tmp_path / "fine"), tmp_path / "out2", samples=100)
    assert json.loads(fine["results"].read_text())["untrained"] == []
    assert "did not train" not in fine["report"].read_text()


# ----- many comparisons: bootstrap p-values and Holm's step-down adjustment -----


def test_bootstrap_p_by_hand():
    # 9 draws above 0: the smaller side has 0 draws, counted as 1 of 10: p = 2 x 1/10
    assert report.stats.bootstrap_p(np.arange(1, 10)) == pytest.approx(0.2)
    # draws at 0 count on both sides: -1, 0 at or below (2), 0, 1, 2, 3 at or above (4): 2 x 3/6 > 1 -> 1
    assert report.stats.bootstrap_p(np.array([-1, 0, 1, 2, 3])) == 1.0
    # 2 of 99 draws below 0: 2 x 3/100
    assert report.stats.bootstrap_p(np.array([-2.0, -1.0] + [1.0] * 97)) == pytest.approx(0.06)


def _step_down(p_values: list[float], alpha: float) -> set[int]:
    """Holm's procedure as defined: test the sorted p-values in turn against alpha / (m - k + 1), stop at the
    first that fails."""
    m = len(p_values)
    rejected = set()
    for k, i in enumerate(sorted(range(m), key=lambda i: p_values[i]), start=1):
        if p_values[i] >= alpha / (m - k + 1):
            break
        rejected.add(i)
    return rejected


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert report.stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert report.stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert report.stats.holm([]) == []


def test_holm_matches_the_step_down_procedure_on_random_p_values():
    rng = np.random.default_rng(0)
    for trial in range(300):
        m = int(rng.integers(1, 30))
        # bootstrap p-values lie on a grid, so ties happen: draw some from a coarse one
        p = list(rng.integers(1, 60, m) / 400 if trial % 2 else rng.uniform(0, 0.2, m) ** 2)
        adjusted = report.stats.holm(p)
        # every level at which a decision can change; test between them (at them, rounding decides)
        edges = sorted({0.0, 1.0, *(round(min(1.0, (m - k) * q), 9) for q in p for k in range(m))})
        for alpha in [(a + b) / 2 for a, b in zip(edges, edges[1:])]:
            assert {i for i in range(m) if adjusted[i] < alpha} == _step_down(p, alpha), (p, alpha)


def test_report_adds_holm_verdicts_and_counts_verdicts_expected_by_chance(models, tmp_path):
    # 1,000 draws: the smallest p is 2/1001, so Holm over 9 can reach 0.05 (with 300 it cannot: 9 x 2/301)
    paths = report.build(report.find_results(models), tmp_path / "out", teacher=teacher_json(tmp_path / "t.json"),
                         samples=1000)
    summary = json.loads(paths["results"].read_text())
    effects = [f["kd_effect"][t] for f in summary["families"] for t in summary["test_sets"]]
    assert len(effects) == 9
    p = [e["p_value"] for e in effects]
    rejected = _step_down(p, 0.05)
    assert [e["holm_verdict"] for e in effects] == [e["verdict"] if i in rejected else "no clear effect"
                                                    for i, e in enumerate(effects)]
    assert [e["holm_p"] for e in effects] == pytest.approx(report.stats.holm(p))
    decided = ("benefits", "hurts")
    many = summary["many_comparisons"]
    assert many == {"method": "holm", "comparisons": 9, "alpha": 0.05, "expected_by_chance": pytest.approx(0.45),
                    "verdicts": sum(e["verdict"] in decided for e in effects),
                    "holm_verdicts": sum(e["holm_verdict"] in decided for e in effects)}
    assert many["holm_verdicts"] >= 1  # bilstm-crf (recall 0.5 -> 0.9) and cnn gain and lose beyond any doubt
    text = paths["report"].read_text()
    assert "| p | verdict | Holm verdict |" in text
    assert ("The table makes 9 comparisons at 95 %: if KD had no effect on any of them, about 0.5 would still get "
            "a \"benefits\" or \"hurts\" verdict by chance (9 x 0.05). "
            f"It has {many['verdicts']}; after Holm's adjustment over the 9, {many['holm_verdicts']} remain") in text
    again = report.build(report.find_results(models), tmp_path / "again", teacher=tmp_path / "t.json", samples=1000)
    assert json.loads(again["results"].read_text())["families"] == summary["families"]  # seeded: deterministic


def test_refused_comparisons_stay_out_of_the_holm_family(tmp_path):
    rng = np.random.default_rng(2)
    for seed in (1, 2):
        write_run(tmp_path, "cnn", seed, {t: _zero_counts(40) for t in TEST_SETS})  # both arms 0: refused
        write_run(tmp_path, "cnn", seed, {t: _zero_counts(40) for t in TEST_SETS}, alpha=0.5)
        write_run(tmp_path, "bilstm", seed, {t: fake_counts(rng, 40, 0.5) for t in TEST_SETS})
        write_run(tmp_path, "bilstm", seed, {t: fake_counts(rng, 40, 0.6) for t in TEST_SETS}, alpha=0.5)
    summary = report.summarize(report.collect(report.find_results(tmp_path)), samples=100)
    assert summary["many_comparisons"]["comparisons"] == 3  # the BiLSTM's three; the CNN's have no verdict
    cnn = next(f for f in summary["families"] if f["family"] == "cnn")
    assert all(e["holm_verdict"] is None and e["holm_p"] is None for e in cnn["kd_effect"].values())


# ----- the header and paths: no machine-local absolute path in REPORT.md -----


def test_report_names_its_command_briefly_and_shows_no_absolute_path(models, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from swener.cli import main

    data = tmp_path / "data"
    monkeypatch.setenv("SWENER_DATA", str(data))
    results = sorted(report.find_results(models))
    for path in results:  # the KD runs distilled with an absolute transfer text in the data folder
        run = json.loads(path.read_text())
        if run["settings"]["alpha"]:
            run["settings"].update(transfer_text=str(data / "text" / "almedalen.txt.gz"), transfer_sentences=1000)
            path.write_text(json.dumps(run))
    teacher = teacher_json(tmp_path / "teacher.json")
    out = tmp_path / "out"
    args = ["report", "--teacher", str(teacher), "--out", str(out), "--samples", "100", "--via", "make experiment"]
    result = CliRunner().invoke(main, [*args, *(x for p in results for x in ("--result", str(p.resolve())))])
    assert result.exit_code == 0, result.output
    text = (out / "REPORT.md").read_text()
    assert str(tmp_path) not in text and "/tmp" not in text and str(data) not in text
    assert "- transfer_text: text/almedalen.txt.gz" in text  # relative to the data folder
    assert "transfer_text=text/almedalen.txt.gz" in text  # the runs table too
    assert ("Made by `make experiment` (`swener report --teacher teacher.json --out out --samples 100 --result ...`) "
            f"over {len(results)} runs (listed in results.json, `runs`).") in text
    raw = (out / "results.json").read_text()
    assert str(data) not in raw  # results.json is committed too: its settings name no machine-local path
    summary = json.loads(raw)
    assert summary["runs"] == [str(p.resolve()) for p in results] and summary["via"] == "make experiment"
    # outside the data folder and the working directory: the file name only
    assert report.markdown.shown_path(str(tmp_path / "elsewhere" / "news.txt")) == "news.txt"
    assert report.markdown.shown_path(["a/b.txt", None]) == ["a/b.txt", None]
