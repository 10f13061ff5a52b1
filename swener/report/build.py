"""The experiment's report: which student families gain from KD, by how much, at what cost.

Reads the students' `results.json` files (models/<family>/<plain|kd>/<settings>/seed-N/,
written by swener.students.run) and the teacher's `teacher.json` (`swener teacher evaluate`:
the same scores/counts/cost keys plus the soft-label cache's cost), and writes REPORT.md,
results.json and two PNG plots. Every number in REPORT.md and in the plots comes from the
summary that results.json holds.
"""
from __future__ import annotations

import json
import math
import os
import platform
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from swener.atomic import atomic_path, write_text
from swener.errors import DataError, SwenerError
from swener.eval.scoring import f1_from_counts

KD_ONLY = ("alpha", "alpha_end", "temperature", "kd_target", "transfer_text", "transfer_sentences")  # meaningless for plain runs
VERDICTS = ("benefits", "hurts", "no clear effect")
PLOTS = {"tradeoff": "f1_vs_throughput.png", "effects": "kd_effect.png"}


# ----- reading runs -----

@dataclass
class Run:
    """One trained student as its results.json describes it."""

    path: Path
    corpus: str
    settings: dict
    scores: dict
    counts: dict[str, np.ndarray]
    cost: dict
    training: dict
    embeddings: str | None = None
    soft_labels: str | None = None
    oov_entities: dict | None = None

    @property
    def mode(self) -> str:
        kd = float(self.settings.get("alpha", 0)) > 0 or float(self.settings.get("alpha_end") or 0) > 0
        return "kd" if kd else "plain"

    @property
    def seed(self) -> int:
        return int(self.settings["seed"])


def load_run(path: Path) -> Run:
    """Read one student's results.json; a file without the expected keys is a DataError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(path, f"cannot read results ({err}); rerun that student") from None
    missing = [k for k in ("settings", "corpus", "scores", "counts", "cost") if k not in data]
    if missing or "family" not in data.get("settings", {}) or "seed" not in data.get("settings", {}):
        raise DataError(path, f"not a student results file (missing {', '.join(missing) or 'settings.family/seed'})")
    counts = {name: np.asarray(rows, dtype=np.int64).reshape(-1, 3) for name, rows in data["counts"].items()}
    return Run(Path(path), data["corpus"], data["settings"], data["scores"], counts, data["cost"],
               data.get("training", {}), data.get("embeddings"), data.get("soft_labels"), data.get("oov_entities"))


def find_results(models_dir: Path, match: Sequence[str] = ()) -> list[Path]:
    """Student results under models/<family>/<mode>/<settings>/seed-N/, whose path contains every `match`."""
    found = sorted(Path(models_dir).glob("*/*/*/seed-*/results.json"))
    return [p for p in found if p.parts[-5] != "teacher" and p.parent.name[5:].isdigit()  # not seed-N.partial/.old
            and all(m in str(p) for m in match)]


@dataclass
class Comparison:
    """One family's plain runs and KD runs that differ only in the KD settings, paired by seed."""

    family: str
    corpus: str
    settings: dict  # shared by plain and KD: the run settings without seed and KD-only ones
    kd_settings: dict | None  # alpha, temperature, kd_target and soft labels of the KD runs
    plain: dict[int, Run] = field(default_factory=dict)
    kd: dict[int, Run] = field(default_factory=dict)
    label: str = ""

    @property
    def paired_seeds(self) -> list[int]:
        return sorted(set(self.plain) & set(self.kd))

    def runs(self, mode: str) -> dict[int, Run]:
        return self.plain if mode == "plain" else self.kd


def _base_key(run: Run) -> tuple:
    shared = {k: v for k, v in run.settings.items() if k not in ("seed", *KD_ONLY)}
    return (run.settings["family"], run.corpus, run.embeddings, json.dumps(shared, sort_keys=True))


def _kd_key(run: Run) -> str:
    return json.dumps({**{k: run.settings.get(k) for k in KD_ONLY}, "soft_labels": run.soft_labels}, sort_keys=True)


def collect(results_paths: Iterable[Path]) -> list[Comparison]:
    """Group runs by (family, mode, settings without seed and KD-only settings) and pair plain with KD by seed.

    Each KD setting (alpha, temperature, kd_target, teacher's soft labels) is its own comparison
    against the family's plain runs with otherwise equal settings; a family without KD runs
    gives a comparison with no KD side.
    """
    plain: dict[tuple, dict[int, Run]] = {}
    kd: dict[tuple, dict[str, dict[int, Run]]] = {}
    for path in results_paths:
        run = load_run(path)
        key = _base_key(run)
        group = plain.setdefault(key, {}) if run.mode == "plain" else kd.setdefault(key, {}).setdefault(_kd_key(run), {})
        if run.seed in group:
            raise SwenerError(f"two {run.mode} runs of {run.settings['family']} with seed {run.seed} and the same "
                              f"settings: {group[run.seed].path} and {run.path}; remove one or select with --match")
        group[run.seed] = run
    comparisons = []
    for key in sorted(set(plain) | set(kd)):
        family, corpus, embeddings, shared = key
        settings = {**json.loads(shared), "embeddings": embeddings}
        for kd_key, kd_runs in sorted(kd.get(key, {}).items()) or [(None, {})]:
            comparisons.append(Comparison(family, corpus, settings, json.loads(kd_key) if kd_key else None,
                                          plain.get(key, {}), kd_runs))
    _label(comparisons)
    return comparisons


def _label(comparisons: list[Comparison]) -> None:
    """Name each comparison by its family plus whichever settings vary across the report."""
    def flat(c: Comparison) -> dict:
        return {"corpus": c.corpus, **c.settings, **(c.kd_settings or {})}

    rows = [flat(c) for c in comparisons]
    keys = sorted({k for row in rows for k in row} - {"family"})
    varying = [k for k in keys if len({json.dumps(row[k]) for row in rows if row.get(k) is not None}) > 1]
    for comparison, row in zip(comparisons, rows):
        extra = [f"{k}={Path(str(row[k])).name if k in ('embeddings', 'soft_labels') else row[k]}"
                 for k in varying if row.get(k) is not None]
        comparison.label = comparison.family + (f" ({', '.join(extra)})" if extra else "")


# ----- the two-level bootstrap -----

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
    return Effect(point, low, high, verdict(low, high), n_seeds, n_sentences, len(deltas), confidence, deltas)


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
    """Inference cost and training time per epoch: medians over the runs, with their range in `spread`.

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
    plain_s, kd_s = out["plain_epoch_seconds"], out["kd_epoch_seconds"]
    out["kd_epoch_ratio"] = kd_s / plain_s if plain_s and kd_s else None
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
            # draws depend on the seed and this comparison only, not on what else is in the report
            rng = np.random.default_rng([seed, zlib.crc32(f"{c.label}|{test_set}".encode())])
            entry["kd_effect"][test_set] = kd_effect(plain, kd, samples, confidence, rng).as_dict()
        families.append(entry)
    teacher_summary = _teacher_summary(teacher, test_sets) if teacher else None
    _refuse_degenerate(families, teacher_summary)
    return {"test_sets": test_sets, "bootstrap": {"samples": samples, "confidence": confidence, "seed": seed},
            "teacher": teacher_summary, "families": families, "settings": _settings(families, teacher_summary)}


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

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _mean_sd(block: dict | None) -> str:
    if not block or block.get("mean") is None:
        return "–"
    sd = f" ± {100 * block['sd']:.1f}" if block.get("sd") is not None else ""
    return f"{100 * block['mean']:.1f}{sd}"


def _signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def _number(value: float | None, fmt: str = "{:,.0f}", scale: float = 1.0) -> str:
    return "–" if value is None else fmt.format(value * scale)


def _short(test_set: str) -> str:
    return test_set.removesuffix("/test")


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    return ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


HOW_TO_READ = """\
F1 is strict entity-level micro F1 (seqeval, IOB2) in percent: an entity counts only with
the right type and both boundaries. "± x" is the standard deviation over training seeds.
A "plain" student learns from the gold tags only, a "KD" student also from the teacher's
per-token distributions; the two of a family share everything else, seed by seed. ΔF1 is
the mean over seeds of F1(KD) − F1(plain), in points; its {confidence:.0f} % interval comes from a
two-level bootstrap ({samples} draws) that resamples the seeds (keeping each plain/KD pair
together) and then the test sentences (the same sentences for both members of a pair), so
it covers both training noise and the choice of test sentences. The verdict is "benefits"
when the whole interval lies above 0, "hurts" when below, "no clear effect" otherwise; there is
no verdict when the teacher scores 0, when both plain and KD score 0, or when the teacher is
not better than the plain student (the reason is printed instead). With
few seeds the interval is wide and mostly reflects sentence sampling: read "no clear
effect" as "not shown", not as "no effect". uner-pud and uner-talbanken are out of domain;
types they do not annotate are mapped to O before scoring. Costs were measured in this run
on this machine (students: medians over runs, with their range): throughput is end-to-end
`predict` at batch 32 after a warm-up, latency is
one sentence of about 20 tokens, peak memory is the peak RSS of the process that trained and
measured the model (for the teacher: the process that scored it), size is the saved model file."""


def compare_table(results_paths: Sequence[Path]) -> str:
    """Mean ± sd over seeds of any groups of runs (one group per settings folder), in Markdown.

    One column per test set, and F1 on the in-domain test entities that contain a word
    outside the embedding vocabulary (e.g. to compare --oov subword with --oov zero).
    """
    groups: dict[Path, list[Run]] = {}
    for path in results_paths:
        run = load_run(path)
        groups.setdefault(Path(path).parent.parent, []).append(run)
    corpora_first = {r.corpus for runs in groups.values() for r in runs}
    test_sets = _test_sets({n for runs in groups.values() for r in runs for n in r.scores}, corpora_first)
    rows = []
    for folder, runs in groups.items():
        row = [f"`{folder}`", ", ".join(str(r.seed) for r in sorted(runs, key=lambda r: r.seed))]
        row += [_mean_sd(_stats([r.scores[t]["micro_f1"] for r in runs if t in r.scores])) for t in test_sets]
        oov = [r.oov_entities[f"{r.corpus}/test"] for r in runs if r.oov_entities and f"{r.corpus}/test" in r.oov_entities]
        gold = sorted({o["gold"] for o in oov})
        row.append(f"{_mean_sd(_stats([o['f1'] for o in oov]))} ({'/'.join(map(str, gold))})" if oov else "–")
        rows.append(row)
    header = ["runs", "seeds", *(f"{_short(t)} F1" for t in test_sets), "OOV-entity F1 (gold entities)"]
    return "\n".join(_table(header, rows, "ll" + "r" * (len(header) - 2))) + "\n"


def render_markdown(summary: dict) -> str:
    """REPORT.md from the summary."""
    test_sets, teacher = summary["test_sets"], summary["teacher"]
    families = summary["families"]
    machine = summary.get("machine", {})
    lines = ["# swener: knowledge distillation for Swedish NER", "",
             f"Generated {summary.get('generated', '?')} on {machine.get('node', '?')} "
             f"({machine.get('cores', '?')} cores, {machine.get('platform', '?')}) by `{summary.get('command', '?')}`.",
             "", *_profile_lines(summary),
             "", "## How to read this", "", HOW_TO_READ.format(samples=summary["bootstrap"]["samples"],
                                                     confidence=100 * summary["bootstrap"]["confidence"]), ""]

    level = f"{100 * summary['bootstrap']['confidence']:.0f} %"
    lines += [f"## Does KD help? ΔF1 = F1(KD) − F1(plain), {level} CI", ""]
    rows = []
    for f in families:
        for t in test_sets:
            effect = f["kd_effect"].get(t)
            if effect is None:
                continue
            rows.append([f["label"], _short(t), _mean_sd(f["f1"]["plain"][t]), _mean_sd(f["f1"]["kd"][t]),
                         _signed(effect["delta"]), f"[{_signed(effect['low'])}, {_signed(effect['high'])}]",
                         str(effect["seeds"]), str(effect["sentences"]), _verdict_cell(effect)])
    lines += _table(["family", "test set", "F1 plain", "F1 KD", "ΔF1", f"{level} CI", "seeds", "sentences", "verdict"],
                    rows, "llrrrrrrl") if rows else ["No family has paired plain and KD runs yet."]
    refused = sum(1 for f in families for e in f["kd_effect"].values() if e.get("refused"))
    if refused:
        lines += ["", f"{refused} comparison(s) get no verdict: {REFUSAL_RULE}"]
    if teacher is None and rows:
        lines += ["", "No teacher results were given (`--teacher`), so the verdicts were not checked against the "
                      "teacher's scores (a teacher at 0, or no better than the plain student, gives no verdict)."]
    lines += ["", f"![KD effect per family]({PLOTS['effects']})", ""]

    lines += ["## F1 per family (mean ± sd over seeds)", ""]
    rows = []
    if teacher:
        rows.append(["teacher", "–", "1", *(_pct(teacher["f1"].get(t, {}).get("micro_f1")) for t in test_sets)])
    for f in families:
        for mode in ("plain", "kd"):
            if f["seeds"][mode]:
                rows.append([f["label"], "KD" if mode == "kd" else mode, str(len(f["seeds"][mode])),
                             *(_mean_sd(f["f1"][mode][t]) for t in test_sets)])
    in_domain = {f["corpus"] for f in families}
    columns = [_short(t) + (" (in domain)" if _short(t) in in_domain else "") for t in test_sets]
    lines += _table(["model", "mode", "seeds", *columns], rows, "llr" + "r" * len(test_sets))
    lines += ["", f"![F1 against throughput]({PLOTS['tradeoff']})", ""]

    lines += ["## F1 per entity type (mean ± sd over seeds)", ""]
    for t in test_sets:
        types = sorted({k for f in families for m in ("plain", "kd") if f["f1"][m][t] for k in f["f1"][m][t]["per_type"]}
                       | set(teacher["f1"].get(t, {}).get("per_type", {}) if teacher else ()))
        rows = []
        if teacher and t in teacher["f1"]:
            rows.append(["teacher", "–", *(_pct(teacher["f1"][t]["per_type"].get(k)) for k in types)])
        for f in families:
            for mode in ("plain", "kd"):
                block = f["f1"][mode][t]
                if block:
                    rows.append([f["label"], "KD" if mode == "kd" else mode,
                                 *(_mean_sd(block["per_type"].get(k)) for k in types)])
        lines += [f"### {_short(t)}", "", *_table(["model", "mode", *types], rows, "ll" + "r" * len(types)), ""]

    lines += ["## Costs (this machine, this run)", ""]
    rows = []
    if teacher:
        cost, training = teacher["cost"], teacher["training"]
        rows.append(["teacher", _number(cost.get("parameters_without_embeddings")), _number(cost.get("parameters")),
                     _number(cost.get("size_bytes"), "{:,.1f}", 1e-6), _number(cost.get("tokens_per_second")),
                     _number(cost.get("latency_ms"), "{:.1f}"), _number(cost.get("peak_rss_mb")),
                     _number(training.get("epoch_seconds"), "{:,.0f}"), "–", "–"])
    for f in families:
        cost = f["cost"]
        spread = cost.get("spread", {})
        rows.append([f["label"], _number(cost["parameters_without_embeddings"]), _number(cost["parameters"]),
                     _number(cost["size_bytes"], "{:,.1f}", 1e-6),
                     *(_spread(cost, spread, key, fmt) for key, fmt in (
                         ("tokens_per_second", "{:,.0f}"), ("latency_ms", "{:.1f}"), ("peak_rss_mb", "{:,.0f}"),
                         ("plain_epoch_seconds", "{:,.1f}"), ("kd_epoch_seconds", "{:,.1f}"))),
                     _number(cost["kd_epoch_ratio"], "{:.2f}")])
    lines += _table(["model", "parameters w/o embeddings", "parameters", "size (MB)", "tokens/s", "latency (ms)",
                     "peak memory (MB)", "s/epoch plain", "s/epoch KD", "KD/plain"], rows)
    lines += ["", COST_NOTE]
    soft = teacher.get("soft_labels") if teacher else None
    if soft:
        tokens = f" for {soft['tokens']:,} tokens" if soft.get("tokens") else ""
        lines += ["", f"One-time cost of the soft-label cache{tokens}: {soft['seconds']:,.0f} s of teacher time, "
                      f"{soft['bytes'] / 1e6:,.1f} MB on disk. The KD students' training times above do not "
                      f"include it."]
    elif teacher is None:
        lines += ["", "No teacher results were given (`--teacher teacher.json`): no teacher row, no cache cost."]

    lines += ["", "## Runs", ""]
    rows = []
    for f in families:
        kd = f["kd_settings"] or {}
        shared = ", ".join(f"{k}={v}" for k, v in f["settings"].items() if k != "family")
        kd_text = ", ".join(f"{k}={v}" for k, v in kd.items()) if kd else "–"
        rows.append([f["label"], f["corpus"], shared, kd_text, " ".join(map(str, f["seeds"]["plain"])) or "–",
                     " ".join(map(str, f["seeds"]["kd"])) or "–"])
    lines += _table(["family", "corpus", "settings", "KD settings", "plain seeds", "KD seeds"], rows, "llllll")
    return "\n".join(lines) + "\n"


REFUSAL_RULE = ("no verdict is printed when the teacher scores 0 on the test set, when plain and KD both score 0, "
                "or when the teacher is not better than the plain student: such a comparison says nothing about "
                "distillation. results.json keeps the interval's verdict as `interval_verdict`.")

COST_NOTE = ("Students' costs are medians over the family's runs (plain and KD share the architecture; the "
             "epoch times per mode), with their range and the number of runs in brackets: they were measured "
             "inside the training processes, on cores that other jobs may have shared, so single runs of one "
             "architecture differ a lot; read them as rough. KD/plain is the ratio of the median epoch times.")


def _verdict_cell(effect: dict) -> str:
    if effect.get("refused"):
        return f"no verdict: {effect['refused']}"
    return f"**{effect['verdict']}**"


def _spread(cost: dict, spread: dict, key: str, fmt: str) -> str:
    """A median with its range over n runs: `1,234 (1,100–1,500, n=6)`; the value alone for one run."""
    value, where = cost.get(key), spread.get(key)
    if value is None:
        return "–"
    if not where or where["n"] < 2:
        return fmt.format(value) + (" (n=1)" if where else "")
    return f"{fmt.format(value)} ({fmt.format(where['low'])}–{fmt.format(where['high'])}, n={where['n']})"


def _profile_lines(summary: dict) -> list[str]:
    """The profile and the settings that made the report, for its top."""
    profile = summary.get("profile", "?")
    lines = [f"**Profile: {profile}**" + (
        " (`make experiment QUICK=1`: a slice of the corpus and few epochs; its numbers check that the chain "
        "runs, they are not findings)" if profile == "quick" else "")]
    settings = summary.get("settings", {})
    for key, value in settings.items():
        if key == "teacher":
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif key == "max_sentences" and value is None:
            value = "all"
        elif value is None:
            continue
        lines.append(f"- {key}: {value}")
    return ["## Profile and settings", "", lines[0], "", *lines[1:]]


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_tradeoff(summary: dict, path: Path) -> None:
    """F1 (in-domain test) against throughput: teacher, and per family one throughput (the median over all its
    runs, a bar for their range) with its plain and KD F1 (mean, and each seed), an arrow plain -> KD."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    test_set = summary["test_sets"][0]
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    handles = []
    families = summary["families"]
    for f, color in zip(families, _colors(len(families))):
        speed, where = f["cost"].get("tokens_per_second"), f["cost"].get("spread", {}).get("tokens_per_second")
        if speed is None:
            continue
        means = {}
        for mode, fill in (("plain", "none"), ("kd", color)):
            block = f["f1"][mode][test_set]
            if not block:
                continue
            seeds = [100 * run["f1"][test_set] for run in f["per_seed"][mode].values() if test_set in run["f1"]]
            ax.scatter([speed] * len(seeds), seeds, s=14, facecolors=fill, edgecolors=color, alpha=0.45,
                       linewidths=0.8, zorder=2)
            ax.scatter([speed], [100 * block["mean"]], s=80, facecolors=fill, edgecolors=color, linewidths=1.8,
                       zorder=3)
            means[mode] = (speed, 100 * block["mean"])
        if where and where["n"] > 1 and means:
            y = float(np.mean([m[1] for m in means.values()]))
            ax.errorbar([speed], [y], xerr=[[speed - where["low"]], [where["high"] - speed]], fmt="none",
                        ecolor=color, elinewidth=1, capsize=3, alpha=0.6, zorder=1)
        if "plain" in means and "kd" in means and means["plain"] != means["kd"]:
            ax.annotate("", xy=means["kd"], xytext=means["plain"], zorder=4,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5, shrinkA=5, shrinkB=5))
        handles.append(Line2D([], [], color=color, marker="o", linestyle="-", label=f["label"]))
    teacher = summary["teacher"]
    if teacher and test_set in teacher["f1"] and teacher["cost"].get("tokens_per_second"):
        ax.scatter([teacher["cost"]["tokens_per_second"]], [100 * teacher["f1"][test_set]["micro_f1"]], marker="*",
                   s=220, color="black", zorder=5)
        handles.append(Line2D([], [], color="black", marker="*", markersize=12, linestyle="", label="teacher"))
    handles += [Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="", label="plain (mean)"),
                Line2D([], [], color="grey", marker="o", linestyle="", label="KD (mean)"),
                Line2D([], [], color="grey", marker="o", markersize=4, alpha=0.5, linestyle="",
                       label="one seed"),
                Line2D([], [], color="grey", marker="|", markersize=10, linestyle="-", alpha=0.6,
                       label="throughput range over runs")]
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    low, high = ax.get_xlim()
    if high / low < 30:  # at least a decade and a half, so that the log axis has labelled ticks
        centre = math.sqrt(low * high)
        ax.set_xlim(centre / math.sqrt(30), centre * math.sqrt(30))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("CPU throughput (tokens/s, log scale; students: median over all runs of the architecture)")
    ax.set_ylabel(f"F1 on {_short(test_set)} test (%)")
    ax.set_title(f"Accuracy against speed ({summary.get('profile', '?')} profile): arrows go from plain to KD")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    _save_figure(fig, path)


def plot_effects(summary: dict, path: Path) -> None:
    """The KD effect (ΔF1 with its interval) per family, one panel per test set, with seeds and sentences;
    a comparison without a verdict (degenerate) is drawn hollow and says so."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    test_sets = [t for t in summary["test_sets"] if any(t in f["kd_effect"] for f in summary["families"])]
    families = [f for f in summary["families"] if f["kd_effect"]]
    colors = {"benefits": "tab:green", "hurts": "tab:red", "no clear effect": "tab:gray"}
    if not test_sets:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no paired plain and KD runs yet", ha="center", va="center")
        ax.axis("off")
        _save_figure(fig, path)
        return
    fig, axes = plt.subplots(1, len(test_sets), figsize=(3.8 * len(test_sets) + 2, 1.4 + 0.6 * len(families)),
                             sharey=True, squeeze=False, layout="constrained")
    positions = np.arange(len(families))[::-1]
    # one symmetric x range for all panels, so that effects compare across test sets
    span = 100 * max(max(abs(e["low"]), abs(e["high"])) for f in families for e in f["kd_effect"].values())
    span = 1.15 * span if span > 0 else 1.0
    in_domain = {f["corpus"] for f in summary["families"]}
    for ax, test_set in zip(axes[0], test_sets):
        sentences = sorted({f["kd_effect"][test_set]["sentences"] for f in families if test_set in f["kd_effect"]})
        for y, f in zip(positions, families):
            effect = f["kd_effect"].get(test_set)
            if effect is None:
                continue
            d, lo, hi = (100 * effect[k] for k in ("delta", "low", "high"))
            refused = bool(effect.get("refused"))
            color = "lightgray" if refused else colors[effect["verdict"]]
            ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=4, markersize=6, lw=1.6,
                        markerfacecolor="white" if refused else color)
            note = f"{effect['seeds']} seed{'s' if effect['seeds'] != 1 else ''}" + (
                f"; no verdict: {effect['refused']}" if refused else "")
            ax.annotate(note, (1, y), xycoords=("axes fraction", "data"), xytext=(-3, 7), textcoords="offset points",
                        ha="right", fontsize=7, color="dimgray")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(_short(test_set) + (" (in domain)" if _short(test_set) in in_domain else "")
                     + f"\n{'/'.join(map(str, sentences))} test sentences", fontsize=10)
        ax.set_xlabel("ΔF1 KD − plain (points)")
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_ylim(-0.7, len(families) - 0.2)
        ax.set_xlim(-span, span)
    axes[0][0].set_yticks(positions, [f["label"] for f in families])
    handles = [Line2D([], [], color=c, marker="o", label=v) for v, c in colors.items()]
    handles.append(Line2D([], [], color="lightgray", marker="o", markerfacecolor="white",
                          label="no verdict (degenerate comparison)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
    fig.suptitle(f"KD effect with {100 * summary['bootstrap']['confidence']:.0f} % bootstrap interval "
                 f"({summary.get('profile', '?')} profile)")
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    finally:
        plt.close(fig)


def _finite(value):
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def load_teacher(path: Path) -> dict:
    """The teacher's results for the report: a teacher.json written by `swener teacher evaluate`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(path, f"cannot read teacher results ({err}); write it with `swener teacher evaluate`") from None
    if "scores" not in data and "counts" not in data:
        raise DataError(path, "not a teacher results file (no scores or counts)")
    return data


def build(results_paths: Sequence[Path], out: Path, teacher: Path | dict | None = None, command: str = "",
          samples: int = 2000, confidence: float = 0.95, seed: int = 0, profile: str | None = None) -> dict[str, Path]:
    """Write REPORT.md, results.json and the two plots into `out`; returns their paths.

    `profile`: "quick" or "full", written at the top of both; None infers it from the runs
    (a slice of the corpus is the quick profile).
    """
    import matplotlib

    matplotlib.use("Agg")
    teacher_data = load_teacher(teacher) if isinstance(teacher, (str, Path)) else teacher
    summary = summarize(collect(results_paths), teacher_data, samples, confidence, seed)
    now = datetime.now().astimezone()
    if profile not in (None, "quick", "full"):
        raise SwenerError(f"profile {profile!r}: expected quick or full")
    summary = {"profile": profile or infer_profile(summary), "generated": now.isoformat(timespec="seconds"),
               "machine": {"node": platform.node(), "cores": os.cpu_count(), "platform": platform.platform()},
               "command": command, **summary}
    out = Path(out)
    paths = {"report": out / "REPORT.md", "results": out / "results.json",
             **{name: out / file for name, file in PLOTS.items()}}
    plot_tradeoff(summary, paths["tradeoff"])
    plot_effects(summary, paths["effects"])
    write_text(paths["results"], json.dumps(_finite(summary), indent=1, ensure_ascii=False) + "\n")
    write_text(paths["report"], render_markdown(summary))
    return paths
