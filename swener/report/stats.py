"""The report's numbers: the two-level bootstrap of a KD effect, its verdict (or why none), costs, the summary that
results.json holds."""
from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

from swener.errors import SwenerError
from swener.eval.scoring import f1_from_counts
from swener.report.collect import Comparison, Run

VERDICTS = ("benefits", "hurts", "no clear effect")


@dataclass
class Effect:
    """KD minus plain F1 (mean over seeds), its bootstrap interval and verdict."""

    delta: float
    low: float
    high: float
    verdict: str
    seeds: int
    sentences: int
    samples: int
    confidence: float
    p_value: float = 1.0
    deltas: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def as_dict(self) -> dict:
        """JSON-ready, without the per-draw deltas."""
        out = asdict(self)
        out.pop("deltas")
        return out


def verdict(low: float, high: float) -> str:
    """'benefits' when the interval lies above 0, 'hurts' when below, else 'no clear effect'."""
    if low > 0:
        return "benefits"
    if high < 0:
        return "hurts"
    return "no clear effect"


def kd_effect(plain: np.ndarray, kd: np.ndarray, samples: int = 2000, confidence: float = 0.95,
              rng: np.random.Generator | None = None, seed_draws: np.ndarray | None = None,
              sentence_draws: np.ndarray | None = None) -> Effect:
    """Two-level paired bootstrap of the KD effect on F1.

    `plain` and `kd` are per-sentence counts [seeds, sentences, 3] (tp, predicted, gold), row s
    of both from the plain and the KD run with the same seed. Each draw resamples seeds, then
    test sentences; the same sentence indices serve every seed and both modes of the draw.
    delta = mean over the drawn seeds of F1(KD) - F1(plain) on the drawn sentences' summed counts.
    `seed_draws` [draws, k] and `sentence_draws` [draws, m] replace the random draws (then
    `samples` is ignored), e.g. with every possible draw of a tiny case.
    """
    plain, kd = np.asarray(plain), np.asarray(kd)
    if plain.ndim != 3 or plain.shape[2] != 3 or plain.shape != kd.shape:
        raise ValueError(f"expected plain and KD counts of one shape [seeds, sentences, 3], "
                         f"got {plain.shape} and {kd.shape}")
    n_seeds, n_sentences, _ = plain.shape
    if n_seeds == 0 or n_sentences == 0:
        raise ValueError("need at least one seed and one sentence")
    rng = rng if rng is not None else np.random.default_rng(0)
    if seed_draws is None:
        seed_draws = rng.integers(0, n_seeds, size=(samples, n_seeds))
    if sentence_draws is None:
        sentence_draws = rng.integers(0, n_sentences, size=(len(seed_draws), n_sentences))
    seed_draws, sentence_draws = np.asarray(seed_draws), np.asarray(sentence_draws)
    if seed_draws.ndim != 2 or sentence_draws.ndim != 2 or len(seed_draws) != len(sentence_draws):
        raise ValueError(f"expected seed draws [draws, k] and sentence draws [draws, m] with as many rows, "
                         f"got {seed_draws.shape} and {sentence_draws.shape}")
    deltas = np.empty(len(seed_draws))
    chunk = 256
    for start in range(0, len(seed_draws), chunk):
        rows = sentence_draws[start:start + chunk]
        # how often each sentence is drawn: summed counts are then one matrix product per mode
        flat = (rows + np.arange(len(rows))[:, None] * n_sentences).ravel()
        weights = np.bincount(flat, minlength=len(rows) * n_sentences).reshape(len(rows), n_sentences)
        f1 = {name: f1_from_counts(np.einsum("bn,snk->bsk", weights, counts)[:, :, None, :])
              for name, counts in (("plain", plain), ("kd", kd))}
        per_seed = f1["kd"] - f1["plain"]  # [draws, seeds]
        deltas[start:start + chunk] = np.take_along_axis(per_seed, seed_draws[start:start + chunk], axis=1).mean(1)
    point = float(np.mean(f1_from_counts(kd) - f1_from_counts(plain)))
    tail = (1 - confidence) / 2
    low, high = (float(q) for q in np.quantile(deltas, [tail, 1 - tail]))
    return Effect(point, low, high, verdict(low, high), n_seeds, n_sentences, len(deltas), confidence,
                  bootstrap_p(deltas), deltas)


def bootstrap_p(deltas: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no effect" from the draws of the effect.

    2 x the smaller share of draws on either side of 0 (a draw at exactly 0 counts on both), each share
    as (draws + 1) / (all draws + 1), the usual correction that keeps a p of a finite bootstrap above 0;
    at most 1.
    """
    deltas = np.asarray(deltas, dtype=float)
    below, above = int(np.sum(deltas <= 0)), int(np.sum(deltas >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (len(deltas) + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: reject where the adjusted p is below alpha.

    Sorted ascending, the i-th smallest of m gets max over j <= i of (m - j + 1) x p_(j), capped at 1:
    the smallest alpha at which the step-down procedure rejects it. Valid under any dependence.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _adjust_for_many(families: list[dict], confidence: float) -> dict:
    """Holm over every comparison that has a verdict: each effect's `holm_p` and `holm_verdict`, and the counts.

    The Holm verdict keeps the per-comparison verdict only where the adjusted p is below 1 - confidence.
    """
    alpha = round(1 - confidence, 12)  # 0.05, not 1 - 0.95 = 0.050000000000000044
    effects = [e for f in families for e in f["kd_effect"].values() if not e.get("refused")]
    for effect, adjusted in zip(effects, holm([e["p_value"] for e in effects])):
        effect["holm_p"] = adjusted
        effect["holm_verdict"] = effect["verdict"] if adjusted < alpha else "no clear effect"
    for f in families:
        for effect in f["kd_effect"].values():
            if effect.get("refused"):
                effect["holm_p"] = effect["holm_verdict"] = None
    decided = ("benefits", "hurts")
    return {"method": "holm", "comparisons": len(effects), "alpha": alpha,
            "expected_by_chance": len(effects) * alpha,
            "verdicts": sum(e["verdict"] in decided for e in effects),
            "holm_verdicts": sum(e["holm_verdict"] in decided for e in effects)}


# ----- the summary (what results.json holds) -----


def _stats(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation over seeds (sd is None for one seed)."""
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)) if values else None,
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None, "n": len(values), "values": values}


def _test_sets(names: Iterable[str], corpora_first: Iterable[str]) -> list[str]:
    """Test sets in report order: in-domain test sets first, then the out-of-domain ones."""
    names = {n for n in names if n.endswith("/test")}
    first = sorted(n for n in names if n.split("/")[0] in set(corpora_first))
    return first + sorted(names - set(first))


def _f1_block(runs: dict[int, Run], test_set: str) -> dict | None:
    """Micro F1 and per-type F1 over the seeds of one mode on one test set."""
    scored = [runs[s].scores[test_set] for s in sorted(runs) if test_set in runs[s].scores]
    if not scored:
        return None
    types = sorted({t for score in scored for t in score.get("per_type", {})})
    return {**_stats([score["micro_f1"] for score in scored]),
            "per_type": {t: _stats([score["per_type"][t]["f1-score"] for score in scored if t in score["per_type"]])
                         for t in types}}


def _mean_of(runs: Iterable[Run], section: str, key: str) -> float | None:
    values = _values(runs, section, key)
    return float(np.mean(values)) if values else None


def _values(runs: Iterable[Run], section: str, key: str) -> list[float]:
    return [float(getattr(r, section)[key]) for r in runs if getattr(r, section).get(key) is not None]


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


MEASURED = ("tokens_per_second", "latency_ms", "peak_rss_mb")  # vary with the load on the cores


def _cost(comparison: Comparison) -> dict:
    """Inference cost and training time per epoch and per update: medians over the runs, with their range in `spread`.

    Plain and KD runs share the architecture, so inference costs pool all of a family's runs;
    measurements taken while other jobs share the cores vary a lot, so no single run is shown.
    """
    runs = [*comparison.plain.values(), *comparison.kd.values()]
    out: dict = {k: _mean_of(runs, "cost", k) for k in ("parameters", "parameters_without_embeddings", "size_bytes")}
    spread: dict = {}

    def put(name: str, values: list[float]) -> None:
        out[name] = _median(values)
        spread[name] = {"low": min(values), "high": max(values), "n": len(values)} if values else None

    for key in MEASURED:
        put(key, _values(runs, "cost", key))
    for mode in ("plain", "kd"):
        mode_runs = list(comparison.runs(mode).values())
        put(f"{mode}_tokens_per_second", _values(mode_runs, "cost", "tokens_per_second"))
        put(f"{mode}_epoch_seconds", _values(mode_runs, "training", "epoch_seconds"))
        put(f"{mode}_train_seconds", _values(mode_runs, "training", "train_seconds"))
        put(f"{mode}_update_ms", [1000 * r.training["epoch_seconds"] / r.training["updates_per_epoch"]
                                  for r in mode_runs if r.training.get("updates_per_epoch")])
    # a transfer set adds updates to a KD epoch: the cost per update is the KD term's own
    for ratio, key in (("kd_epoch_ratio", "epoch_seconds"), ("kd_update_ratio", "update_ms")):
        plain_value, kd_value = out[f"plain_{key}"], out[f"kd_{key}"]
        out[ratio] = kd_value / plain_value if plain_value and kd_value else None
    out["spread"] = spread
    return out


def refusal(teacher_f1: float | None, plain: dict | None, kd: dict | None) -> str | None:
    """Why no verdict may be printed for one family on one test set (None: a verdict may be given).

    A comparison is degenerate when the teacher scores 0, when plain and KD students both
    score 0, or when the teacher is not better than the plain student (it has nothing to teach).
    """
    if teacher_f1 is not None and teacher_f1 <= 0:
        return "the teacher scores 0"
    if plain and kd and plain.get("mean") == 0 and kd.get("mean") == 0:
        return "plain and KD both score 0"
    if teacher_f1 is not None and plain and plain.get("mean") is not None and teacher_f1 <= plain["mean"]:
        return f"the teacher ({100 * teacher_f1:.1f}) is not better than the plain student ({100 * plain['mean']:.1f})"
    return None


def _refuse_degenerate(families: list[dict], teacher: dict | None) -> None:
    """Replace the verdict of every degenerate comparison by the reason (the interval's verdict is kept aside)."""
    for entry in families:
        for test_set, effect in entry["kd_effect"].items():
            score = teacher["f1"].get(test_set) if teacher else None
            reason = refusal(score["micro_f1"] if score else None, entry["f1"]["plain"].get(test_set),
                             entry["f1"]["kd"].get(test_set))
            effect["interval_verdict"] = effect["verdict"]
            effect["refused"] = reason
            if reason:
                effect["verdict"] = None


def summarize(comparisons: list[Comparison], teacher: dict | None = None, samples: int = 2000,
              confidence: float = 0.95, seed: int = 0) -> dict:
    """Every number of the report: F1 per family and mode, KD effects with intervals, costs, the teacher."""
    if not comparisons:
        raise SwenerError("no student results to report; train students first (`make students`)")
    names = {name for c in comparisons for mode in ("plain", "kd") for r in c.runs(mode).values() for name in r.scores}
    test_sets = _test_sets(names, {c.corpus for c in comparisons})
    families = []
    for c in comparisons:
        entry: dict = {"label": c.label, "family": c.family, "corpus": c.corpus, "settings": c.settings,
                       "kd_settings": c.kd_settings,
                       "seeds": {"plain": sorted(c.plain), "kd": sorted(c.kd), "paired": c.paired_seeds},
                       "runs": {mode: {str(s): str(r.path) for s, r in sorted(c.runs(mode).items())}
                                for mode in ("plain", "kd")},
                       "f1": {mode: {t: _f1_block(c.runs(mode), t) for t in test_sets} for mode in ("plain", "kd")},
                       "per_seed": {mode: {str(s): {"tokens_per_second": r.cost.get("tokens_per_second"),
                                                    "f1": {t: r.scores[t]["micro_f1"] for t in test_sets
                                                           if t in r.scores}}
                                           for s, r in sorted(c.runs(mode).items())} for mode in ("plain", "kd")},
                       "kd_effect": {}, "cost": _cost(c)}
        for test_set in test_sets:
            pairs = [s for s in c.paired_seeds if test_set in c.plain[s].counts and test_set in c.kd[s].counts]
            if not pairs:
                continue
            shapes = {c.runs(m)[s].counts[test_set].shape for s in pairs for m in ("plain", "kd")}
            if len(shapes) > 1:
                raise SwenerError(f"{c.label}: runs were scored on different numbers of {test_set} sentences "
                                  f"({sorted(shapes)}); they cannot be paired")
            plain = np.stack([c.plain[s].counts[test_set] for s in pairs])
            kd = np.stack([c.kd[s].counts[test_set] for s in pairs])
            # draws depend on the seed and this comparison only, not on what else is in the report (a
            # label gains a suffix such as "(kd_target=kbest)" when other families differ: not part of the key)
            key = json.dumps([c.family, c.corpus, c.settings, c.kd_settings, test_set], sort_keys=True, default=str)
            rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
            entry["kd_effect"][test_set] = kd_effect(plain, kd, samples, confidence, rng).as_dict()
        families.append(entry)
    teacher_summary = _teacher_summary(teacher, test_sets) if teacher else None
    _refuse_degenerate(families, teacher_summary)
    many = _adjust_for_many(families, confidence)
    return {"test_sets": test_sets, "bootstrap": {"samples": samples, "confidence": confidence, "seed": seed},
            "many_comparisons": many,
            "teacher": teacher_summary, "families": families, "settings": _settings(families, teacher_summary),
            "untrained": untrained_runs(comparisons),
            "gap": gap_closed(families, teacher_summary, test_sets) if teacher_summary else []}


def untrained_runs(comparisons: list[Comparison]) -> list[dict]:
    """Runs that never learnt to predict an entity: dev F1 0.0 (in domain), whatever their test scores."""
    out = []
    for c in comparisons:
        for mode in ("plain", "kd"):
            for seed, run in sorted(c.runs(mode).items()):
                if run.scores.get(f"{c.corpus}/dev", {}).get("micro_f1") == 0.0:
                    out.append({"label": c.label, "mode": mode, "seed": seed, "path": str(run.path)})
    return out


def gap_closed(families: list[dict], teacher: dict, test_sets: list[str]) -> list[dict]:
    """Per test set: the teacher, the best plain and the best KD student (by mean F1 over seeds), and the share of
    the teacher's lead over the best plain student that the best KD student closes (None if it has no lead)."""
    out = []
    for t in test_sets:
        if t not in teacher["f1"]:
            continue

        def best(mode: str) -> tuple[str | None, float | None]:
            scored = [(f["f1"][mode][t]["mean"], f["label"]) for f in families
                      if f["f1"][mode].get(t) and f["f1"][mode][t]["mean"] is not None]
            return (max(scored)[1], max(scored)[0]) if scored else (None, None)

        (plain_family, plain), (kd_family, kd) = best("plain"), best("kd")
        teacher_f1 = teacher["f1"][t]["micro_f1"]
        lead = teacher_f1 - plain if plain is not None else None
        out.append({"test_set": t, "teacher": teacher_f1, "best_plain": plain, "best_plain_family": plain_family,
                    "best_kd": kd, "best_kd_family": kd_family, "lead": lead,
                    "closed": (kd - plain) / lead if lead and lead > 0 and kd is not None else None})
    return out


def _settings(families: list[dict], teacher: dict | None) -> dict:
    """The settings of the report's runs: each one's values across families (one value when shared)."""
    values: dict[str, set] = {}
    for entry in families:
        rows = {"corpus": entry["corpus"], **entry["settings"], **(entry["kd_settings"] or {}),
                "seeds": " ".join(map(str, sorted(set(entry["seeds"]["plain"]) | set(entry["seeds"]["kd"]))))}
        for key, value in rows.items():
            if key not in ("family", "threads"):
                values.setdefault(key, set()).add(json.dumps(value))
    out = {key: [json.loads(v) for v in sorted(found)] for key, found in values.items()}
    out = {key: found[0] if len(found) == 1 else found for key, found in out.items()}
    if teacher:
        training = teacher.get("training") or {}
        out["teacher"] = {"model": teacher.get("model"), **{k: training[k] for k in ("epochs", "learning_rate",
                          "batch_size", "max_sentences") if k in training}}
    return out


def infer_profile(summary: dict) -> str:
    """'quick' when the runs trained on a slice of the corpus, else 'full'."""
    return "full" if summary["settings"].get("max_sentences") is None else "quick"


def _teacher_summary(teacher: dict, test_sets: list[str]) -> dict:
    """The teacher's F1 (one model, no seeds), cost and one-time soft-label cache cost."""
    f1 = {}
    for t in test_sets:
        score = teacher.get("scores", {}).get(t)
        if score is None and t in teacher.get("counts", {}):
            score = {"micro_f1": float(f1_from_counts(np.asarray(teacher["counts"][t]).reshape(-1, 3)))}
        if score is not None:
            f1[t] = {"micro_f1": score["micro_f1"],
                     "per_type": {k: v["f1-score"] for k, v in score.get("per_type", {}).items()}}
    return {"model": teacher.get("model"), "f1": f1, "cost": teacher.get("cost", {}),
            "training": teacher.get("training", {}), "soft_labels": teacher.get("soft_labels")}


# ----- writing: Markdown, JSON, plots -----


def _short(test_set: str) -> str:
    return test_set.removesuffix("/test")
