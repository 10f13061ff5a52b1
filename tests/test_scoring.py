"""The strict scorer against hand-computed F1 and seqeval, and the paired bootstrap against exact enumeration."""
import itertools

import numpy as np
import pytest

from swener.eval.scoring import ERROR_KINDS, error_breakdown, paired_bootstrap, restrict_types, score

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]


def test_strict_f1_by_hand():
    # 4 gold entities; predictions: PER exact, LOC wrong type, ORG exact, PER missing,
    # plus an I-PER that strict IOB2 does not accept as an entity start.
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "I-PER"]]
    result = score(GOLD, pred)
    tp, predicted, gold = 2, 3, 4
    p, r = tp / predicted, tp / gold
    assert result.precision == pytest.approx(p)
    assert result.recall == pytest.approx(r)
    assert result.micro_f1 == pytest.approx(2 * p * r / (p + r))
    per_f1 = {"PER": 2 * 0.5 * 1 / 1.5, "LOC": 0.0, "ORG": 2 * 0.5 * 1 / 1.5}
    for kind, f1 in per_f1.items():
        assert result.per_type[kind]["f1-score"] == pytest.approx(f1)
    assert result.macro_f1 == pytest.approx(sum(per_f1.values()) / 3)


def test_perfect_and_boundary_errors():
    assert score(GOLD, GOLD).micro_f1 == 1.0
    # a boundary error is a miss and a false alarm in strict mode
    half = score([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert (half.precision, half.recall, half.micro_f1) == (0.0, 0.0, 0.0)


def test_types_unknown_to_the_test_set_become_o():
    gold = [["B-PER", "O", "B-LOC"]]
    pred = [["B-PER", "B-MISC", "B-LOC"]]
    assert score(gold, pred).precision == pytest.approx(2 / 3)
    restricted = score(gold, pred, types={"PER", "LOC", "ORG"})
    assert restricted.precision == 1.0 and restricted.mapped_to_o == ["MISC"]
    assert restrict_types(pred, {"PER"}) == ([["B-PER", "O", "O"]], ["LOC", "MISC"])


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        score(GOLD, [["O"] * 4])


def test_bootstrap_matches_exact_enumeration():
    gold = [["B-PER", "O"], ["B-LOC", "O"], ["O", "B-ORG"]]
    a = [["B-PER", "O"], ["O", "O"], ["O", "O"]]
    b = [["B-PER", "O"], ["B-LOC", "O"], ["O", "B-PER"]]
    n = len(gold)
    every = np.array(list(itertools.product(range(n), repeat=n)))  # all n^n resamples, equally likely
    exact = paired_bootstrap(gold, a, b, indices=every, confidence=0.5)
    deltas = []
    for idx in every:
        def f1(pred):
            tp = sum(len({e for e in _ents(gold[i])} & {e for e in _ents(pred[i])}) for i in idx)
            predicted = sum(len(_ents(pred[i])) for i in idx)
            gold_n = sum(len(_ents(gold[i])) for i in idx)
            return 2 * tp / (predicted + gold_n) if predicted + gold_n else 0.0
        deltas.append(f1(b) - f1(a))
    assert exact.low == pytest.approx(np.quantile(deltas, 0.25))
    assert exact.high == pytest.approx(np.quantile(deltas, 0.75))
    assert exact.delta == pytest.approx(2 * 2 / 6 - 2 * 1 / 4)
    sampled = paired_bootstrap(gold, a, b, samples=20000, confidence=0.5, seed=1)
    assert exact.p_not_better == pytest.approx(np.mean(np.array(deltas) <= 0))
    # the sampled quantiles may jump between atoms of this discrete distribution; its tail mass does not
    assert sampled.p_not_better == pytest.approx(exact.p_not_better, abs=0.02)


def test_bootstrap_identical_systems_and_clear_difference():
    gold = [["B-PER", "O", "B-LOC"]] * 30
    same = paired_bootstrap(gold, gold, gold, samples=200)
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0)
    worse = [["O", "O", "B-LOC"]] * 30
    better = paired_bootstrap(gold, worse, gold, samples=500)
    assert better.low > 0 and better.p_not_better == 0.0


def _ents(tags):
    out, start = set(), None
    for i, t in enumerate(tags + ["O"]):
        if start is not None and not t.startswith("I-"):
            out.add((tags[start][2:], start, i))
            start = None
        if t.startswith("B-"):
            start = i
    return out


def test_sentence_counts_keep_filters_gold_and_predicted():
    from swener.eval.scoring import sentence_counts

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-LOC"]]
    assert sentence_counts(gold, pred).tolist() == [[1, 2, 2], [0, 1, 1]]
    starts_at_zero = lambda sentence, start, end: start == 0  # noqa: E731
    assert sentence_counts(gold, pred, keep=starts_at_zero).tolist() == [[1, 1, 1], [0, 0, 1]]


def test_counts_map_unannotated_types_to_o_as_the_score_does():
    """The bootstrap's per-sentence counts and the reported F1 agree on a test set without MISC (UNER)."""
    from swener.eval.scoring import f1_from_counts, sentence_counts

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-MISC"], ["B-MISC", "B-ORG", "O", "B-LOC"]]
    types = {"LOC", "ORG", "PER"}
    counts = sentence_counts(gold, pred, types=types)
    assert counts.tolist() == [[1, 1, 2], [1, 2, 1]]  # the MISC predictions are gone, the wrong LOC stays
    assert float(f1_from_counts(counts)) == pytest.approx(score(gold, pred, types=types).micro_f1)
    assert float(f1_from_counts(sentence_counts(gold, pred))) < score(gold, pred, types=types).micro_f1


def test_error_breakdown_sorts_each_gold_entity_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-ORG", "O", "B-LOC", "O", "B-MISC", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "I-LOC", "O", "B-PER", "O"]]
    errors = error_breakdown(gold, pred)
    assert errors["gold"]["PER"]["correct"] == 1
    assert errors["gold"]["ORG"]["wrong_type"] == 1 and errors["gold"]["ORG"]["as_type"] == {"LOC": 1}
    assert errors["gold"]["LOC"]["wrong_span"] == 1
    assert errors["gold"]["MISC"]["missed"] == 1
    assert errors["spurious"] == {"PER": 1}
    overlap = error_breakdown([["B-ORG", "I-ORG", "O"]], [["O", "B-LOC", "O"]])
    assert overlap["gold"]["ORG"]["wrong_span_and_type"] == 1 and overlap["spurious"] == {}


def test_error_breakdown_agrees_with_seqeval_and_maps_unannotated_types():
    rng = np.random.default_rng(3)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"]
    gold = [[tags[i] for i in rng.integers(0, 5, 12)] for _ in range(40)]
    pred = [[tags[i] for i in rng.integers(0, 6, 12)] for _ in range(40)]
    gold = [[t if not (t.startswith("I-") and (j == 0 or row[j - 1][2:] != t[2:])) else "O"
             for j, t in enumerate(row)] for row in gold]
    errors = error_breakdown(gold, pred, types={"PER", "LOC"})
    result = score(gold, pred, types={"PER", "LOC"})
    for kind in ("PER", "LOC"):
        row = errors["gold"][kind]
        support = result.per_type[kind]["support"]
        assert sum(row[k] for k in ERROR_KINDS) == support
        assert row["correct"] == round(result.per_type[kind]["recall"] * support)
    assert "MISC" not in errors["spurious"]
