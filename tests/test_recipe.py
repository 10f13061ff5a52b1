"""The recipe file: its checks, `swener recipe`, and `make students` taking each family's values from it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from swener import config
from swener.students.tagger import FAMILIES

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_recipe_is_what_the_dev_sweeps_chose():
    """Screened families: the KD setting with the best mean dev F1 over its seeds (two at least) in the committed
    sweep table, from the best teacher; the others: the screened family with their head."""
    import statistics
    from collections import defaultdict

    data = json.loads(config.DEFAULT_RECIPE.read_text())
    assert set(data["families"]) <= set(FAMILIES) and "default" in data  # a family it does not list: the default
    screened = {}
    for family in ("bilstm-crf", "bilstm"):
        sweeps = ROOT / "results" / "archive" / "2026-12-01-sweeps"  # the recipe factors' table, the transfer study's
        trials = [t for path in (sweeps / f"{family}.json", sweeps / "transfer" / f"{family}.json")
                  for t in json.loads(path.read_text())["trials"]]
        # the tables hold several teachers' trials: the recipe is chosen with the best teacher on dev
        best_teacher = max(t["teacher_dev_f1"] for t in trials)
        settings = defaultdict(set)  # the transfer table repeats the plain trials it pairs with
        for trial in trials:
            if (trial["alpha"] > 0 and trial["epochs"] == config.RECIPE_SCREEN_EPOCHS and not trial.get("updates")
                    and trial["teacher_dev_f1"] == best_teacher
                    and trial.get("transfer_ratio", config.TRANSFER_RATIO) == config.TRANSFER_RATIO):
                key = (trial["alpha"], trial["alpha_end"], trial["temperature"], trial["kd_target"],
                       trial["transfer_text"], trial["transfer_sentences"])
                settings[key].add((trial["seed"], trial["dev_f1"]))
        best = max((key for key, f1s in settings.items() if len(f1s) >= 2),
                   key=lambda key: statistics.mean(f1 for _, f1 in settings[key]))
        found = config.load(config.DEFAULT_RECIPE, family)
        text = Path(found.transfer_text).name if found.transfer_text else None  # trials name it as they were given
        assert (found.alpha, found.alpha_end, found.kd_target, text, found.transfer_sentences) == (
            best[0], best[1], best[3], best[4] and Path(best[4]).name, best[5]), family
        if found.kd_target != "kbest":  # T does not apply to k-best paths
            assert found.temperature == best[2]
        screened["crf" if family.endswith("-crf") else "softmax"] = found
    for family in FAMILIES:
        assert config.load(config.DEFAULT_RECIPE, family) == screened["crf" if family.endswith("-crf") else "softmax"]


def test_a_relative_transfer_text_is_a_file_of_the_data_folder(tmp_path, monkeypatch):
    path = _write(tmp_path, {"cnn": {"transfer_text": "text/news.txt.gz", "transfer_sentences": 5},
                             "window": {"transfer_text": str(tmp_path / "mine.txt")}})
    monkeypatch.setenv("SWENER_DATA", str(tmp_path / "data"))
    assert config.load(path, "cnn").transfer_text == str(tmp_path / "data" / "text" / "news.txt.gz")
    assert config.load(path, "window").transfer_text == str(tmp_path / "mine.txt")  # absolute: as it is
    make_words = subprocess.run([sys.executable, "-I", str(ROOT / "swener" / "config.py"), str(path), "cnn"],
                                capture_output=True, text=True, check=True).stdout.split()
    assert make_words[3:] == [str(tmp_path / "data" / "text" / "news.txt.gz"), "5"]


def test_a_family_the_recipe_does_not_list_takes_its_default_or_is_an_error(tmp_path):
    listed = {"cnn": {"alpha": 0.3}}
    path = tmp_path / "with-default.json"
    path.write_text(json.dumps({"families": listed, "default": {"alpha": 0.7, "temperature": 3}}))
    assert config.load(path, "cnn").alpha == 0.3
    assert (config.load(path, "window").alpha, config.load(path, "window").temperature) == (0.7, 3)
    path.write_text(json.dumps({"families": listed, "default": {"temperature": -1}}))
    with pytest.raises(config.RecipeError, match="the default .*temperature must be a positive number"):
        config.load(path, "window")
    with pytest.raises(config.RecipeError, match='no recipe for family .window. .* and no "default"'):
        config.load(_write(tmp_path, listed), "window")


def _write(tmp_path, families, name="mine.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"families": families}))
    return path


def test_recipe_errors_name_the_file_and_the_setting(tmp_path):
    with pytest.raises(config.RecipeError, match="no such recipe file"):
        config.load(tmp_path / "none.json", "cnn")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(config.RecipeError, match="bad.json: not a JSON recipe file"):
        config.load(tmp_path / "bad.json", "cnn")
    cases = [({"bilstm": {}}, "no recipe for family 'cnn'"),
             ({"cnn": {"alpha": 2}}, r"family 'cnn': alpha must be a number in \[0, 1\]"),
             ({"cnn": {"temperature": 0}}, "temperature must be a positive number"),
             ({"cnn": {"kd_target": "paths"}}, "kd_target must be one of marginals, emissions, kbest"),
             ({"cnn": {"alfa": 0.3}}, r"unknown settings \['alfa'\]"),
             ({"cnn": {"transfer_sentences": 0}}, "transfer_sentences must be a positive integer")]
    for families, message in cases:
        with pytest.raises(config.RecipeError, match=message):
            config.load(_write(tmp_path, families), "cnn")


def test_swener_recipe_prints_make_variables(tmp_path):
    from swener.cli import main

    path = _write(tmp_path, {"cnn": {"alpha": 0.9, "alpha_end": 0.1, "temperature": 1, "kd_target": "emissions"}})
    result = CliRunner().invoke(main, ["recipe", str(path), "--family", "cnn"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ALPHA := 0.9:0.1", "TEMPERATURE := 1", "KD_TARGET := emissions",
                                          "TRANSFER_TEXT := ", "TRANSFER_SENTENCES := "]
    result = CliRunner().invoke(main, ["recipe", str(path), "--family", "bilstm"])
    assert result.exit_code == 1 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def _make_dry(tmp_path, *variables):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["make", "-n", "-f", str(ROOT / "Makefile"), "-o", f"{sys.prefix}/bin/swener",
                           f"VENV={sys.prefix}", "SEEDS=1",
                           f"RECIPE_PY={sys.executable}", *variables, "students"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _kd_commands(output):
    """The KD training commands of a dry run by family, each on one line with single spaces."""
    lines = [" ".join(line.split()) + " " for line in output.replace("\\\n", " ").splitlines()]
    return {line.split("--family ")[1].split()[0]: line for line in lines
            if "swener train" in line and "--alpha 0 " not in line}


def test_make_students_takes_each_familys_values_from_the_recipe(tmp_path):
    (tmp_path / "news.txt").write_text("Anna bor i Umeå.\n", encoding="utf-8")
    path = _write(tmp_path, {
        "cnn": {"alpha": 0.25, "temperature": 1, "kd_target": "emissions"},
        "bilstm": {"alpha": 0.9, "alpha_end": 0.1, "temperature": 4,
                   "transfer_text": str(tmp_path / "news.txt"), "transfer_sentences": 300},
        "cnn-crf": {"alpha": 0.5, "temperature": 2, "kd_target": "kbest"}})
    dry = _make_dry(tmp_path, f"RECIPE={path}", "FAMILIES=cnn bilstm cnn-crf")
    assert dry.returncode == 0, dry.stderr
    commands = _kd_commands(dry.stdout)
    assert set(commands) == {"cnn", "bilstm", "cnn-crf"}
    assert "--alpha 0.25 --temperature 1 --kd-target emissions" in commands["cnn"]
    assert "-a0.25-T1-emissions-" in commands["cnn"] and "--transfer" not in commands["cnn"]
    assert "--alpha 0.9:0.1 --temperature 4 --kd-target marginals" in commands["bilstm"]
    assert f"--transfer {tmp_path / 'news.txt'} --transfer-sentences 300" in commands["bilstm"]
    assert "-a0.9to0.1-T4-marginals-" in commands["bilstm"] and "-trnews300/seed-1" in commands["bilstm"]
    assert "--kd-target kbest" in commands["cnn-crf"]
    assert "swener teacher kbest" in dry.stdout and f"--text {tmp_path / 'news.txt'}" in dry.stdout

    # a value on the command line overrides the recipe for every family
    dry = _make_dry(tmp_path, f"RECIPE={path}", "FAMILIES=cnn bilstm", "ALPHA=0.3")
    commands = _kd_commands(dry.stdout)
    assert "--alpha 0.3 --temperature 1 " in commands["cnn"] and "--alpha 0.3 --temperature 4 " in commands["bilstm"]

    # the committed recipe: the dev sweeps' choices
    dry = _make_dry(tmp_path, "FAMILIES=bilstm-crf bilstm")
    assert "--alpha 0.5 --temperature 1 --kd-target kbest" in _kd_commands(dry.stdout)["bilstm-crf"]
    assert "--alpha 0.5 --temperature 1 --kd-target marginals" in _kd_commands(dry.stdout)["bilstm"]


def test_make_stops_on_a_bad_recipe(tmp_path):
    path = _write(tmp_path, {"cnn": {"alpha": 7}})
    dry = _make_dry(tmp_path, f"RECIPE={path}", "FAMILIES=cnn")
    assert dry.returncode != 0 and "alpha must be a number in [0, 1]" in dry.stderr
    assert "no usable recipe for cnn" in dry.stderr
