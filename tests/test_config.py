"""One source of settings: the Makefile's documented `?=` defaults, the command line's defaults and the
settings dataclasses all agree with swener/config.py; a bad option value is one error line at parse time."""
from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from swener import config

ROOT = Path(__file__).resolve().parents[1]


def makefile_defaults() -> dict[str, dict[str, str]]:
    """`NAME ?= value` of the Makefile per profile: "quick" (the QUICK=1 block), "full" (its else block), "both"."""
    found: dict[str, dict[str, str]] = {"quick": {}, "full": {}, "both": {}}
    profile = "both"
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("ifeq ($(QUICK),1)"):
            profile = "quick"
        elif line.startswith("else") and profile == "quick":
            profile = "full"
        elif line.startswith("endif") and profile in ("quick", "full"):
            profile = "both"
        match = re.match(r"^([A-Z_]+) \?=\s*(.*)$", line)
        if match:
            found[profile].setdefault(match.group(1), match.group(2).strip())
    return found


def words(values) -> str:
    return " ".join(str(v) for v in values)


def flag(value: bool) -> str:
    return "1" if value else "0"


def test_the_makefile_defaults_are_the_python_defaults():
    make = makefile_defaults()
    both, quick, full = make["both"], make["quick"], make["full"]
    assert both["CORPUS"] == config.DEFAULT_CORPUS
    assert (both["BACKBONE"], quick["BACKBONE"]) == (config.BACKBONE, config.QUICK_BACKBONE)
    assert (both["TEACHER_FREEZE"], quick["TEACHER_FREEZE"]) == (flag(config.TEACHER_FREEZE),
                                                                 flag(config.QUICK_TEACHER_FREEZE))
    assert (full["TEACHER_EPOCHS"], quick["TEACHER_EPOCHS"]) == (str(config.TEACHER_EPOCHS),
                                                                 str(config.QUICK_TEACHER_EPOCHS))
    assert (float(both["TEACHER_LR"]), float(quick["TEACHER_LR"])) == (config.TEACHER_LR, config.QUICK_TEACHER_LR)
    assert int(both["TEACHER_BATCH"]) == config.TEACHER_BATCH
    assert int(both["TEACHER_PATIENCE"]) == config.TEACHER_PATIENCE
    assert both["TEACHER_DECODING"] == config.TEACHER_DECODING
    assert int(both["TEACHER_SEED"]) == config.TEACHER_SEED
    assert (full["STUDENT_EPOCHS"], quick["STUDENT_EPOCHS"]) == (str(config.STUDENT_EPOCHS),
                                                                 str(config.QUICK_STUDENT_EPOCHS))
    assert (full["SEEDS"], quick["SEEDS"]) == (words(config.SEEDS), words(config.QUICK_SEEDS))
    assert full["MAX_SENTENCES"] == quick["MAX_SENTENCES"] == "all"
    assert float(both["STUDENT_LR"]) == config.STUDENT_LR
    assert int(both["STUDENT_THREADS"]) == config.THREADS
    assert int(both["TRANSFER_MAX"]) == config.TRANSFER_MAX
    assert int(quick["TRANSFER_MAX"]) == int(quick["TRANSFER_SENTENCES"]) == config.QUICK_TRANSFER_SENTENCES
    assert (both["EMB_MODEL"], int(both["EMB_DIM"]), int(both["EMB_EPOCHS"])) == (
        config.EMB_MODEL, config.EMB_DIM, config.EMB_EPOCHS)
    assert both["EMB_SAMPLE"] == f"$(if $(filter 1,$(QUICK)),{config.QUICK_EMB_SAMPLE},)"
    # the families: QUICK=1 names its own, the full run asks swener/config.py for every registered family
    assert quick["FAMILIES"] == words(config.QUICK_FAMILIES)
    assert both["FAMILIES"] == "$(shell $(RECIPE_PY) -I $(ROOT)swener/config.py families)"
    assert set(config.QUICK_FAMILIES) <= set(config.FAMILIES)


def test_config_runs_as_a_standalone_script_for_make():
    run = subprocess.run([sys.executable, "-I", str(ROOT / "swener" / "config.py"), "families"], capture_output=True,
                         text=True, check=True)
    assert run.stdout.split() == list(config.FAMILIES)
    run = subprocess.run([sys.executable, "-I", str(ROOT / "swener" / "config.py"), "families", "--quick"],
                         capture_output=True, text=True, check=True)
    assert run.stdout.split() == list(config.QUICK_FAMILIES)


def _defaults(command) -> dict:
    return {p.name: p.default for p in command.params}


def test_the_command_line_defaults_are_the_python_defaults():
    from swener.cli import main

    train = _defaults(main.commands["train"])
    assert (train["corpus_name"], train["epochs"], train["lr"], train["batch_size"], train["hidden_size"],
            train["threads"], train["gradient_probes"], train["oov"]) == (
        config.DEFAULT_CORPUS, config.STUDENT_EPOCHS, config.STUDENT_LR, config.STUDENT_BATCH,
        config.STUDENT_HIDDEN, config.THREADS, config.GRADIENT_PROBES, config.OOV_MODES[0])
    assert train["alpha"] is None and train["temperature"] is None  # given: the recipe's (default: config's)
    sweep = _defaults(main.commands["sweep"])
    assert (sweep["epochs"], sweep["threads"]) == (config.STUDENT_EPOCHS, config.THREADS)
    teacher = main.commands["teacher"]
    tt = _defaults(teacher.commands["train"])
    assert (tt["backbone"], tt["epochs"], tt["patience"], tt["lr"], tt["batch_size"], tt["decoding"], tt["seed"],
            tt["crf"], tt["freeze_word_embeddings"]) == (
        config.BACKBONE, config.TEACHER_EPOCHS, config.TEACHER_PATIENCE, config.TEACHER_LR, config.TEACHER_BATCH,
        config.TEACHER_DECODING, config.TEACHER_SEED, config.TEACHER_CRF, config.TEACHER_FREEZE)
    assert _defaults(teacher.commands["kbest"])["k"] == config.DEFAULT_KBEST
    emb = _defaults(main.commands["embeddings"].commands["train"])
    assert (emb["model"], emb["dim"], emb["epochs"]) == (config.EMB_MODEL, config.EMB_DIM, config.EMB_EPOCHS)
    family = next(p for p in main.commands["train"].params if p.name == "family")
    assert list(family.type.choices) == list(config.FAMILIES)


def test_the_settings_dataclasses_use_the_python_defaults():
    from swener.students.run import StudentSettings
    from swener.teacher.run import TeacherSettings
    from swener.train.fit import TrainSettings
    from swener.vectors.settings import VectorSettings

    student = StudentSettings()
    assert (student.alpha, student.temperature, student.kd_target, student.epochs, student.learning_rate,
            student.batch_size, student.hidden_size, student.threads, student.gradient_probes) == (
        config.DEFAULT_ALPHA, config.DEFAULT_TEMPERATURE, config.DEFAULT_KD_TARGET, config.STUDENT_EPOCHS,
        config.STUDENT_LR, config.STUDENT_BATCH, config.STUDENT_HIDDEN, config.THREADS, config.GRADIENT_PROBES)
    teacher = TeacherSettings()
    assert (teacher.backbone, teacher.epochs, teacher.patience, teacher.learning_rate, teacher.batch_size,
            teacher.decoding, teacher.use_crf, teacher.freeze_word_embeddings, teacher.seed) == (
        config.BACKBONE, config.TEACHER_EPOCHS, config.TEACHER_PATIENCE, config.TEACHER_LR, config.TEACHER_BATCH,
        config.TEACHER_DECODING, config.TEACHER_CRF, config.TEACHER_FREEZE, config.TEACHER_SEED)
    fit = TrainSettings()
    assert (fit.epochs, fit.learning_rate, fit.batch_size, fit.threads) == (
        config.STUDENT_EPOCHS, config.STUDENT_LR, config.STUDENT_BATCH, config.THREADS)
    vectors = VectorSettings()
    assert (vectors.model, vectors.dim, vectors.epochs) == (config.EMB_MODEL, config.EMB_DIM, config.EMB_EPOCHS)
    assert dataclasses.asdict(config.Recipe()) == {
        "alpha": config.DEFAULT_ALPHA, "alpha_end": None, "temperature": config.DEFAULT_TEMPERATURE,
        "kd_target": config.DEFAULT_KD_TARGET, "transfer_text": None, "transfer_sentences": None}


def test_the_student_tagger_is_plain_unless_told_and_sized_by_config():
    from swener.students.tagger import StudentTagger

    signature = inspect.signature(StudentTagger.__init__).parameters
    assert signature["alpha"].default == config.PLAIN_ALPHA == 0.0
    assert (signature["hidden_size"].default, signature["temperature"].default, signature["kd_target"].default) == (
        config.STUDENT_HIDDEN, config.DEFAULT_TEMPERATURE, config.DEFAULT_KD_TARGET)


def test_every_registered_encoder_is_a_family_with_both_heads():
    from swener.students import encoders

    assert set(encoders.REGISTRY) == set(config.ENCODERS)
    assert {config.FAMILIES[f] for f in config.FAMILIES} == {(e, h) for e in config.ENCODERS for h in config.HEADS}


@pytest.mark.parametrize("args,message", [
    (["--temperature", "-1"], "error: temperature must be a positive number, got -1.0"),
    (["--temperature", "0"], "error: temperature must be a positive number, got 0.0"),
    (["--alpha", "1.5"], "error: alpha must be a number in [0, 1], got 1.5"),
    (["--alpha", "0.9:x"], "error: alpha must be a number in [0, 1] or START:END (e.g. 0.9:0.1), got '0.9:x'"),
    (["--epochs", "0"], "error: --epochs must be at least 1, got 0"),
    (["--lr", "-0.1"], "error: --lr must be a positive number, got -0.1"),
    (["--max-sentences", "0"], "error: --max-sentences must be at least 1, got 0"),
])
def test_a_bad_option_value_is_one_error_line_before_anything_runs(args, message, tmp_path):
    from swener.cli import main

    result = CliRunner().invoke(main, ["train", "--family", "cnn", "--embeddings", str(tmp_path / "none"),
                                       "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()


def test_a_bad_teacher_option_is_one_error_line_too(tmp_path):
    from swener.cli import main

    result = CliRunner().invoke(main, ["teacher", "train", "--out", str(tmp_path), "--patience", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: --patience must be at least 1, got 0"]


def test_the_folder_readmes_list_the_pinned_checksums():
    from swener.data.corpora import REGISTRY
    from swener.teacher import backbone

    corpora_readme = (ROOT / "corpora" / "README.md").read_text()
    for source in REGISTRY.values():
        for file in source.files.values():
            assert f"`{file.sha256}`" in corpora_readme, (source.name, file.mirror_path)
    embeddings_readme = (ROOT / "embeddings" / "README.md").read_text()
    assert f"`{backbone.MODEL_SHA256}`" in embeddings_readme and f"`{backbone.TOKENIZER_SHA256}`" in embeddings_readme
