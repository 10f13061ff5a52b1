"""KD sweeps on dev: the trial list, dev-only runs read back on a second call, the table."""
import json

import pytest
from test_students import _cache, no_teacher  # noqa: F401  (fixture)

from swener.errors import SwenerError
from swener.students import sweep


def _base(**changes) -> sweep.Trial:
    settings = dict(family="bilstm", alpha=0.5, alpha_end=None, temperature=1.0, kd_target="marginals",
                    transfer_text=None, transfer_sentences=None, seed=1, epochs=1, hidden_size=8)
    return sweep.Trial(**{**settings, **changes})


def test_one_factor_at_a_time_with_plain_and_base_once_per_seed():
    trials = sweep.one_factor_trials(_base(), [sweep.parse_factor("alpha=0.1,0.5,0.9"),
                                               sweep.parse_factor("temperature=1,2")], [1, 2])
    names = [t.name for t in trials]
    assert len(names) == len(set(names)) == 2 * (1 + 1 + 2 + 1)  # plain, base, alpha 0.1 and 0.9, T 2
    assert names[:2] == ["plain-ep1-h8-s1", "a0.5-T1-marginals-ep1-h8-s1"]
    assert {t.alpha for t in trials if t.temperature == 2.0} == {0.5}
    with pytest.raises(SwenerError, match="NAME=V1,V2"):
        sweep.parse_factor("beta=1")
    with pytest.raises(SwenerError, match="takes float"):
        sweep.parse_factor("alpha=x")
    with pytest.raises(ValueError, match="temperature must be a positive"):  # checked before anything trains
        sweep.one_factor_trials(_base(), [sweep.parse_factor("temperature=0")], [1])


def test_sweep_scores_dev_only_and_reads_finished_trials_back(tmp_path, tiny_vectors, no_teacher, monkeypatch):
    from swener.data import corpora
    from swener.eval import evaluate

    soft_dir = _cache(tmp_path, 40)
    trials = sweep.one_factor_trials(_base(), [sweep.parse_factor("alpha=0.9")], [1])
    table = tmp_path / "sweep.json"
    loaded = []
    real_load = corpora.load
    monkeypatch.setattr(corpora, "load", lambda name, *a, **k: loaded.append(name) or real_load(name, *a, **k))
    rows = sweep.run_sweep(trials, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "runs", table,
                           max_sentences=40)
    assert [r["name"] for r in rows] == [t.name for t in trials] and len(rows) == 3
    assert set(loaded) == {"webbnyheter2012"}  # no out-of-domain test corpus read
    results = json.loads((tmp_path / "runs" / "bilstm" / rows[0]["name"] / "results.json").read_text())
    assert list(results["scores"]) == ["webbnyheter2012/dev"] and results["counts"] == {}
    assert all(0.0 <= r["dev_f1"] <= 1.0 for r in rows) and rows[0]["alpha"] == 0.0
    assert json.loads(table.read_text())["trials"] == sorted(rows, key=lambda r: (r["family"], r["name"]))
    assert "| bilstm | a0.9-T1-marginals-ep1-h8-s1 | 0.9 |" in table.with_suffix(".md").read_text()

    monkeypatch.setattr(evaluate, "score_model", lambda *a, **k: pytest.fail("a finished trial was trained again"))
    again = sweep.run_sweep(trials, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "runs", table,
                            max_sentences=40)
    assert again == rows


def test_make_sweep_passes_space_separated_seeds_as_the_cli_list():
    """SWEEP_SEEDS is written like SEEDS ("1 2"); the CLI takes a comma-separated list."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(["make", "-n", "--no-print-directory", "-f", str(root / "Makefile"), "-o",
                          f"{sys.prefix}/bin/swener", f"VENV={sys.prefix}", "sweep", "SWEEP_SEEDS=1 2  3"],
                         cwd=root, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--seeds 1,2,3 " in run.stdout
