"""`swener tune`: a Ray Tune search on dev F1 (never test) whose best settings become a recipe file."""
import json

import pytest
from test_students import _cache, no_teacher  # noqa: F401  (fixture)

from swener import config as recipe
from swener.errors import SwenerError
from swener.grid import tune
from swener.students import sweep


def _base(**changes) -> sweep.Trial:
    settings = dict(family="bilstm", alpha=0.5, alpha_end=None, temperature=1.0, kd_target="marginals",
                    transfer_text=None, transfer_sentences=None, seed=1, epochs=2, hidden_size=8)
    return sweep.Trial(**{**settings, **changes})


def test_space_is_checked_before_anything_trains():
    with pytest.raises(SwenerError, match="temperature"):
        tune.check_space(tune.TuneSettings("bilstm", {"temperature": [1.0, 0.0]}, _base()))
    with pytest.raises(SwenerError, match="the space is"):
        tune.check_space(tune.TuneSettings("bilstm", {"lr": [0.1]}, _base()))
    with pytest.raises(SwenerError, match="--transfer TEXT"):
        tune.check_space(tune.TuneSettings("bilstm", {"transfer_sentences": [10]}, _base()))
    assert tune.trials_of({"alpha": 0.9, "hidden_size": 16}, _base()).name == "a0.9-T1-marginals-ep2-h16-s1"


def test_best_finished_trial_becomes_the_family_recipe(tmp_path):
    rows = [{"name": "a", "alpha": 0.9, "alpha_end": None, "temperature": 4.0, "kd_target": "marginals",
             "transfer_text": None, "transfer_sentences": None, "hidden_size": 128, "dev_f1": 0.9,
             "stopped_early": True, "epochs": 2, "seed": 1},
            {"name": "b", "alpha": 0.1, "alpha_end": None, "temperature": 2.0, "kd_target": "emissions",
             "transfer_text": None, "transfer_sentences": None, "hidden_size": 64, "dev_f1": 0.5,
             "stopped_early": False, "epochs": 2, "seed": 1}]
    best = tune.best_finished(rows)
    assert best["name"] == "b"  # a stopped trial is never chosen
    out = tmp_path / "tuned.json"
    tune.write_recipe(out, recipe.DEFAULT_RECIPE, "bilstm", best, tmp_path / "table.json")
    assert recipe.load(out, "bilstm") == recipe.Recipe(alpha=0.1, temperature=2.0, kd_target="emissions")
    assert recipe.load(out, "cnn") == recipe.load(recipe.DEFAULT_RECIPE, "cnn")  # the other families kept
    assert json.loads(out.read_text())["tune"]["bilstm"]["hidden_size"] == 64
    assert recipe.main([str(out), "bilstm"]) == 0  # what make students reads


@pytest.mark.slow
def test_tune_on_local_ray_searches_on_dev_only(tmp_path, tiny_vectors, no_teacher):
    pytest.importorskip("ray")
    soft_dir = _cache(tmp_path, 40)
    settings = tune.TuneSettings("bilstm", {"alpha": [0.1, 0.9], "hidden_size": [8]}, _base(), grace_epochs=1,
                                 threads=1, max_sentences=40)
    table = tmp_path / "tune.json"
    rows = tune.run_tune(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "runs", table, cpus=2,
                         object_store_mb=128)
    assert sorted(r["alpha"] for r in rows) == [0.1, 0.9] and rows[0]["dev_f1"] >= rows[1]["dev_f1"]
    assert all(1 <= r["epochs_run"] <= 2 for r in rows)
    for run in (tmp_path / "runs" / "bilstm").glob("*/results.json"):
        assert list(json.loads(run.read_text())["scores"]) == ["webbnyheter2012/dev"]  # test never scored
    assert [r["name"] for r in json.loads(table.read_text())["trials"]] == [r["name"] for r in rows]
    best = tune.best_finished(rows)
    tune.write_recipe(tmp_path / "tuned.json", recipe.DEFAULT_RECIPE, "bilstm", best, table)
    assert recipe.load(tmp_path / "tuned.json", "bilstm").alpha == best["alpha"]

    finished = {p: p.stat().st_mtime for p in (tmp_path / "runs" / "bilstm").glob("*/results.json")}
    again = tune.run_tune(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "runs", table, cpus=2,
                          object_store_mb=128)
    assert {p: p.stat().st_mtime for p in finished} == finished  # finished trials read back, not trained again
    second = {r["name"]: r["dev_f1"] for r in again}
    assert all(second[r["name"]] == r["dev_f1"] for r in rows if not r["stopped_early"])
