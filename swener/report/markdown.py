"""REPORT.md from the summary, and the comparison table of `swener compare`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from swener.config import data_root
from swener.report.collect import Run, load_run
from swener.report.plots import PLOTS
from swener.report.stats import _short, _stats, _test_sets


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


def shown_path(value: Any) -> Any:
    """A setting as the report prints it: an absolute path relative to the data folder or the working
    directory, else its file name (no machine-local path in a committed report); lists and dicts inside."""
    if isinstance(value, (list, tuple)):
        return [shown_path(v) for v in value]
    if isinstance(value, dict):
        return {k: shown_path(v) for k, v in value.items()}
    if not isinstance(value, str) or not Path(value).is_absolute():
        return value
    path = Path(value)
    for root in (data_root(), Path.cwd()):
        if root is not None:
            for base in {Path(root), Path(root).resolve()}:
                if path.is_relative_to(base):
                    return str(path.relative_to(base))
    return path.name


def _shown_command(command: str) -> str:
    """The command with every absolute path in it shown as `shown_path` does."""
    return re.sub(r"(?<![\w.~-])/[^\s'\"`]+", lambda m: shown_path(m.group()), command)


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
not better than the plain student (the reason is printed instead). p is the two-sided
bootstrap p-value of "no effect" from the same draws: twice the smaller of the shares of draws
at or below 0 and at or above 0, a share of k draws counted as (k + 1) / ({samples} + 1). Each verdict alone
is wrong {wrong:.0f} % of the time when KD has no effect; the Holm verdict holds the chance of even
one wrong verdict in the whole table at {wrong:.0f} %: Holm's step-down adjustment of the p-values over every
comparison in the table that has a verdict (valid however the comparisons depend on each other),
the verdict kept where the adjusted p is below {alpha}, "no clear effect" elsewhere. With
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
        oov = [r.oov_entities[f"{r.corpus}/test"] for r in runs
               if r.oov_entities and f"{r.corpus}/test" in r.oov_entities]
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
    alpha = 1 - summary["bootstrap"]["confidence"]
    lines = ["# swener: knowledge distillation for Swedish NER", "", _made_by(summary) +
             f" Generated {summary.get('generated', '?')} on {machine.get('node', '?')} "
             f"({machine.get('cores', '?')} cores, {machine.get('platform', '?')}).",
             "", *_profile_lines(summary),
             "", "## How to read this", "", HOW_TO_READ.format(samples=summary["bootstrap"]["samples"],
                                                     confidence=100 * summary["bootstrap"]["confidence"],
                                                     alpha=f"{alpha:g}", wrong=100 * alpha), ""]

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
                         str(effect["seeds"]), str(effect["sentences"]), _p(effect.get("p_value")),
                         _verdict_cell(effect), _holm_cell(effect)])
    lines += _table(["family", "test set", "F1 plain", "F1 KD", "ΔF1", f"{level} CI", "seeds", "sentences", "p",
                     "verdict", "Holm verdict"],
                    rows, "llrrrrrrrll") if rows else ["No family has paired plain and KD runs yet."]
    if rows and summary.get("many_comparisons"):
        lines += ["", _many_comparisons(summary["many_comparisons"], level)]
    refused = sum(1 for f in families for e in f["kd_effect"].values() if e.get("refused"))
    if refused:
        lines += ["", f"{refused} comparison(s) get no verdict: {REFUSAL_RULE}"]
    if teacher is None and rows:
        lines += ["", "No teacher results were given (`--teacher`), so the verdicts were not checked against the "
                      "teacher's scores (a teacher at 0, or no better than the plain student, gives no verdict)."]
    untrained = summary.get("untrained") or []
    if untrained:
        runs = ", ".join(f"{u['label']} {'KD' if u['mode'] == 'kd' else u['mode']} seed {u['seed']}" for u in untrained)
        lines += ["", f"**{len(untrained)} run(s) did not train** (dev F1 0.0: no entity predicted): {runs}. They "
                      "stay in the table (a seed's plain and KD runs are paired), but they pull their family's "
                      "mean F1 down and widen its spread; the seeds that trained say more about the family."]
    lines += ["", f"![KD effect per family]({PLOTS['effects']})", ""]
    if summary.get("gap"):
        lines += ["## How much of the teacher's lead KD closes", "",
                  "The share of the gap between the teacher and the best plain student (by mean F1) that the "
                  "best KD student closes: 1 is all of it, 0 none, below 0 a wider gap.", ""]
        rows = [[_short(g["test_set"]), _pct(g["teacher"]), f"{_pct(g['best_plain'])} ({g['best_plain_family']})",
                 f"{_pct(g['best_kd'])} ({g['best_kd_family']})", _pct(g["lead"]),
                 "–" if g["closed"] is None else f"{g['closed']:.2f}"] for g in summary["gap"]]
        lines += [*_table(["test set", "teacher", "best plain", "best KD", "teacher's lead", "share closed"], rows),
                  ""]

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
        types = sorted({k for f in families for m in ("plain", "kd") if f["f1"][m][t]
                        for k in f["f1"][m][t]["per_type"]}
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
                     _number(training.get("epoch_seconds"), "{:,.0f}"), "–", "–", "–", "–", "–"])
    for f in families:
        cost = f["cost"]
        spread = cost.get("spread", {})
        rows.append([f["label"], _number(cost["parameters_without_embeddings"]), _number(cost["parameters"]),
                     _number(cost["size_bytes"], "{:,.1f}", 1e-6),
                     *(_spread(cost, spread, key, fmt) for key, fmt in (
                         ("tokens_per_second", "{:,.0f}"), ("latency_ms", "{:.1f}"), ("peak_rss_mb", "{:,.0f}"),
                         ("plain_epoch_seconds", "{:,.1f}"), ("kd_epoch_seconds", "{:,.1f}"),
                         ("plain_update_ms", "{:,.1f}"), ("kd_update_ms", "{:,.1f}"))),
                     _number(cost["kd_epoch_ratio"], "{:.2f}"), _number(cost.get("kd_update_ratio"), "{:.2f}")])
    lines += _table(["model", "parameters w/o embeddings", "parameters", "size (MB)", "tokens/s", "latency (ms)",
                     "peak memory (MB)", "s/epoch plain", "s/epoch KD", "ms/update plain",
                     "ms/update KD", "KD/plain per epoch", "KD/plain per update"], rows)
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
        shared = ", ".join(f"{k}={shown_path(v)}" for k, v in f["settings"].items() if k != "family")
        kd_text = ", ".join(f"{k}={shown_path(v)}" for k, v in kd.items()) if kd else "–"
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
             "architecture differ a lot; read them as rough. KD/plain is the ratio of the median epoch times, "
             "and per update of the median times per optimizer update (an epoch, its dev evaluation included, "
             "over its updates): a transfer set adds updates to every KD epoch, so per update is what the KD "
             "term itself costs.")


def _made_by(summary: dict) -> str:
    """The header's first sentence: how the report was made, briefly (the runs are listed in results.json)."""
    command = _shown_command(summary.get("command") or "?")
    via = summary.get("via")
    runs = summary.get("runs")
    over = f" over {len(runs)} runs (listed in results.json, `runs`)" if runs is not None else ""
    return f"Made by `{via}` (`{command}`){over}." if via else f"Made by `{command}`{over}."


def _many_comparisons(many: dict, level: str) -> str:
    """The sentence under the KD-effect table: verdicts expected by chance, verdicts found, verdicts after Holm."""
    m, alpha = many["comparisons"], many["alpha"]
    return (f"**Many comparisons.** The table makes {m} comparisons at {level}: if KD had no effect on any of "
            f"them, about {many['expected_by_chance']:.1f} would still get a \"benefits\" or \"hurts\" verdict "
            f"by chance ({m} x {alpha:g}). It has {many['verdicts']}; after Holm's adjustment over the {m}, "
            f"{many['holm_verdicts']} remain (the Holm verdict column).")


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _holm_cell(effect: dict) -> str:
    verdict = effect.get("holm_verdict")
    if verdict is None:
        return "–"
    return f"**{verdict}**" if verdict in ("benefits", "hurts") else verdict


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
        value = shown_path(value)
        if key == "teacher":
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif key == "max_sentences" and value is None:
            value = "all"
        elif value is None:
            continue
        lines.append(f"- {key}: {value}")
    return ["## Profile and settings", "", lines[0], "", *lines[1:]]
