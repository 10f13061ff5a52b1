"""Strict entity-level scoring (seqeval, IOB2) and the paired bootstrap for F1 differences."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2, Entities


@dataclass
class Score:
    """Micro and macro F1, per-type P/R/F1/support, and the types that were mapped to O."""

    micro_f1: float
    macro_f1: float
    precision: float
    recall: float
    per_type: dict[str, dict[str, float]]
    mapped_to_o: list[str]

    def as_dict(self) -> dict:
        """A JSON-ready copy."""
        return dict(self.__dict__)


def restrict_types(tags: list[list[str]], known: set[str]) -> tuple[list[list[str]], list[str]]:
    """Turn tags of types outside `known` into O (e.g. MISC predictions on UNER); list those types."""
    dropped: set[str] = set()
    out = []
    for sentence in tags:
        row = []
        for tag in sentence:
            if tag != "O" and tag[2:] not in known:
                dropped.add(tag[2:])
                tag = "O"
            row.append(tag)
        out.append(row)
    return out, sorted(dropped)


def score(gold: list[list[str]], pred: list[list[str]], types: set[str] | None = None) -> Score:
    """Strict IOB2 scores; with `types`, predicted types the gold set does not annotate become O."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in number or length")
    mapped: list[str] = []
    if types is not None:
        pred, mapped = restrict_types(pred, set(types))
    report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_type = {k: {m: float(v[m]) for m in ("precision", "recall", "f1-score", "support")}
                for k, v in report.items() if not k.endswith(" avg")}
    micro = report.get("micro avg", {"f1-score": 0.0, "precision": 0.0, "recall": 0.0})
    macro = report.get("macro avg", {"f1-score": 0.0})
    return Score(float(micro["f1-score"]), float(macro["f1-score"]), float(micro["precision"]),
                 float(micro["recall"]), per_type, mapped)


def entity_set(tags: list[str]) -> set[tuple[str, int, int]]:
    """Strict IOB2 entities of one sentence as (type, start, end), end exclusive."""
    return {(e.tag, e.start, e.end) for e in Entities([tags], IOB2).entities[0]}


def sentence_counts(gold: list[list[str]], pred: list[list[str]],
                    keep: Callable[[int, int, int], bool] | None = None,
                    types: set[str] | None = None) -> np.ndarray:
    """Per sentence: true positives, predicted entities, gold entities (shape [n, 3]).

    With `keep(sentence, start, end)`, only entities it accepts count (gold and predicted alike),
    e.g. the entities that contain a word outside the embedding vocabulary. With `types`, as in
    `score`, predicted types the gold set does not annotate become O (so F1 from these counts
    is `score`'s micro F1).
    """
    if types is not None:
        pred, _ = restrict_types(pred, set(types))
    rows = []
    for i, (g, p) in enumerate(zip(gold, pred)):
        gs, ps = entity_set(g), entity_set(p)
        if keep is not None:
            gs = {e for e in gs if keep(i, e[1], e[2])}
            ps = {e for e in ps if keep(i, e[1], e[2])}
        rows.append((len(gs & ps), len(ps), len(gs)))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


ERROR_KINDS = ("correct", "wrong_type", "wrong_span", "wrong_span_and_type", "missed")


def error_breakdown(gold: list[list[str]], pred: list[list[str]], types: set[str] | None = None) -> dict:
    """Where each gold entity went, per gold type, and the predictions that touch no gold entity.

    Per gold type: `correct` (same span and type), `wrong_type` (same span), `wrong_span` (an
    overlapping prediction of the same type), `wrong_span_and_type` (overlapping, other type),
    `missed` (no overlapping prediction), and `as_type` (same span, counts per predicted type).
    Per predicted type: `spurious`. With `types`, as in `score`, other predicted types become O.
    """
    if types is not None:
        pred, _ = restrict_types(pred, set(types))
    by_gold: dict[str, dict] = {}
    spurious: dict[str, int] = {}
    for g, p in zip(gold, pred):
        gs, ps = entity_set(g), entity_set(p)
        spans = {(start, end): kind for kind, start, end in ps}
        for kind, start, end in gs:
            row = by_gold.setdefault(kind, {**dict.fromkeys(ERROR_KINDS, 0), "as_type": {}})
            overlapping = [k for k, s, e in ps if s < end and start < e]
            if (start, end) in spans:
                other = spans[(start, end)]
                row["correct" if other == kind else "wrong_type"] += 1
                if other != kind:
                    row["as_type"][other] = row["as_type"].get(other, 0) + 1
            elif kind in overlapping:
                row["wrong_span"] += 1
            elif overlapping:
                row["wrong_span_and_type"] += 1
            else:
                row["missed"] += 1
        for kind, start, end in ps:
            if not any(s < end and start < e for _, s, e in gs):
                spurious[kind] = spurious.get(kind, 0) + 1
    return {"gold": dict(sorted(by_gold.items())), "spurious": dict(sorted(spurious.items()))}


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts; works on [..., n, 3] arrays (sums over sentences)."""
    tp, predicted, gold = (counts[..., i].sum(axis=-1) for i in range(3))
    denominator = predicted + gold
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


@dataclass
class BootstrapResult:
    """F1 of systems A and B, their difference B - A, and its confidence interval."""

    f1_a: float
    f1_b: float
    delta: float
    low: float
    high: float
    p_not_better: float
    samples: int


def paired_bootstrap(gold: list[list[str]], pred_a: list[list[str]], pred_b: list[list[str]],
                     samples: int = 1000, confidence: float = 0.95, seed: int = 0,
                     indices: np.ndarray | None = None) -> BootstrapResult:
    """Confidence interval of F1(B) - F1(A), resampling test sentences with replacement (paired).

    `indices` ([samples, n]) replaces the random resamples, e.g. with all n^n of a tiny set.
    """
    counts_a, counts_b = sentence_counts(gold, pred_a), sentence_counts(gold, pred_b)
    n = len(gold)
    if indices is None:
        indices = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    deltas = f1_from_counts(counts_b[indices]) - f1_from_counts(counts_a[indices])
    tail = (1 - confidence) / 2
    f1_a, f1_b = float(f1_from_counts(counts_a)), float(f1_from_counts(counts_b))
    return BootstrapResult(f1_a, f1_b, f1_b - f1_a, float(np.quantile(deltas, tail)),
                           float(np.quantile(deltas, 1 - tail)), float(np.mean(deltas <= 0)), len(indices))
