"""Short names pick the best model of a family on dev (plain and KD), say so in one line, and
`swener models` labels each run's profile: recorded by `swener train --profile`, else inferred."""
import copy
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from swener import config
from swener.cli import main
from swener.errors import SwenerError
from swener.serve import names as models

# The structure of a real results.json of the full run (bilstm, plain, seed 1, 2026-12), trimmed to a few
# numbers per block; the tests change settings, scores and embeddings.
REAL_RESULTS = {
    "epochs": 10,
    "settings": {"family": "bilstm", "alpha": 0.0, "temperature": 1, "kd_target": "marginals", "alpha_end": None,
                 "hidden_size": 256, "epochs": 10, "learning_rate": 0.1, "batch_size": 32, "length_buckets": True,
                 "seed": 1, "max_sentences": None, "threads": 2, "oov": "subword", "transfer_text": None,
                 "transfer_sentences": None, "transfer_ratio": 1.0, "gradient_probes": 8, "updates": None,
                 "dev_only": False, "encoder_options": None},
    "corpus": "webbnyheter2012",
    "scores": {"webbnyheter2012/dev": {"micro_f1": 0.6981366459627328, "macro_f1": 0.5148288300931348,
                                       "precision": 0.7553763440860215, "recall": 0.648960739030023},
               "webbnyheter2012/test": {"micro_f1": 0.6871, "macro_f1": 0.51},
               "uner-pud/test": {"micro_f1": 0.512, "macro_f1": 0.40}},
    "counts": {}, "errors": {}, "oov_entities": {},
    "cost": {"tokens_per_second": 86563.02563477728, "latency_ms": 0.8555710001019179, "parameters": 32839705,
             "parameters_without_embeddings": 752005, "size_bytes": 69820677, "peak_rss_mb": 1203.55859375},
    "embeddings": "embeddings/cbow-d100-e5", "soft_labels": None, "transfer": None, "machine": "vm (2 cores)",
    "training": {"epochs": 10, "learning_rate": 0.1, "batch_size": 32, "seed": 1, "max_sentences": None,
                 "train_seconds": 47.29496829599975, "train_sentences": 6197, "dev_sentences": 688},
}
QUICK_EMB, FULL_EMB = "embeddings/cbow-d100-e5-sample2M", "embeddings/cbow-d100-e5"
TEACHER_ID = "webbnyheter2012/e5-small-fz-lb-bioes-ep1-p2-lr2e-4-b16-nall"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture()
def real_results() -> dict:
    return copy.deepcopy(REAL_RESULTS)


def _run(root: Path, template: dict, family: str, kind: str, settings_dir: str, seed: int, dev: float, *,
         epochs: int = 3, embeddings: str = QUICK_EMB, profile: str | None = None, max_sentences=None,
         written: float = 1e9) -> Path:
    """A seed folder as `swener train` leaves it: results.json (the real structure) and a best-model.pt."""
    data = copy.deepcopy(template)
    data["settings"].update(family=family, seed=seed, epochs=epochs, max_sentences=max_sentences,
                            alpha=0.5 if kind == "kd" else 0.0)
    data["embeddings"] = embeddings
    data["soft_labels"] = f"softlabels/{TEACHER_ID}" if kind == "kd" else None
    data["scores"]["webbnyheter2012/dev"]["micro_f1"] = dev
    data["scores"]["webbnyheter2012/test"] = {"micro_f1": dev - 0.02}
    if profile is not None:
        data["profile"] = profile
    folder = root / family / kind / settings_dir / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "best-model.pt").write_bytes(b"")  # listing and resolving never open it
    (folder / "results.json").write_text(json.dumps(data))
    os.utime(folder / "results.json", (written, written))
    return folder / "best-model.pt"


def _quick_profile(root: Path, template: dict) -> dict[str, Path]:
    """The quick profile's two families as results.json from before --profile: KD below plain for bilstm-crf."""
    quick = "webbnyheter2012-cbow-d100-e5-sample2M-ep3-lr0.1-nall"
    return {"crf-kd": _run(root, template, "bilstm-crf", "kd", f"{quick}-a0.5-T1", 1, 0.5237, written=2e9),
            "crf-plain": _run(root, template, "bilstm-crf", "plain", quick, 1, 0.5523),
            "lstm-kd": _run(root, template, "bilstm", "kd", f"{quick}-a0.5-T1", 1, 0.6012),
            "lstm-plain": _run(root, template, "bilstm", "plain", quick, 1, 0.5731)}


def test_a_family_name_picks_the_best_on_dev_over_plain_and_kd(tmp_path, real_results):
    made = _quick_profile(tmp_path, real_results)
    notes: list[str] = []
    assert models.resolve("bilstm-crf", tmp_path, notes.append) == made["crf-plain"]  # 0.5523 plain > 0.5237 KD
    assert models.resolve("bilstm", tmp_path, notes.append) == made["lstm-kd"]
    assert models.resolve("bilstm-crf-kd", tmp_path, notes.append) == made["crf-kd"]
    assert models.resolve("bilstm-crf-plain", tmp_path, notes.append) == made["crf-plain"]
    assert notes == [
        f"bilstm-crf: {made['crf-plain']} (plain, quick profile (inferred), dev F1 0.5523; best on dev of 2 "
        "bilstm-crf models)",
        f"bilstm: {made['lstm-kd']} (kd, quick profile (inferred), dev F1 0.6012; best on dev of 2 bilstm models)",
        f"bilstm-crf-kd: {made['crf-kd']} (kd, quick profile (inferred), dev F1 0.5237; best on dev of 1 "
        "bilstm-crf kd model)",
        f"bilstm-crf-plain: {made['crf-plain']} (plain, quick profile (inferred), dev F1 0.5523; best on dev of 1 "
        "bilstm-crf plain model)"]
    assert models.resolve(str(made["crf-kd"]), tmp_path, notes.append) == made["crf-kd"] and len(notes) == 4
    with pytest.raises(SwenerError, match="cnn: no trained model of that name"):
        models.resolve("cnn", tmp_path)
    assert models.resolve("bilstm-crf-large", tmp_path) == Path("bilstm-crf-large")  # not a short name: a path


def test_every_setting_and_seed_competes_but_a_slice_or_another_corpus_does_not(tmp_path, real_results):
    full = "webbnyheter2012-cbow-d100-e5-ep20-lr0.1-nall"
    _run(tmp_path, real_results, "cnn", "plain", full, 1, 0.70, epochs=20, embeddings=FULL_EMB)
    best = _run(tmp_path, real_results, "cnn", "kd", f"{full}-a0.5-T1", 3, 0.74, epochs=20, embeddings=FULL_EMB,
                written=1e9)
    _run(tmp_path, real_results, "cnn", "kd", f"{full}-a0.9-T2", 1, 0.72, epochs=20, embeddings=FULL_EMB, written=3e9)
    _run(tmp_path, real_results, "cnn", "plain", "sliced-n500", 1, 0.95, epochs=20, embeddings=FULL_EMB,
         max_sentences=500)
    other = _run(tmp_path, real_results, "cnn", "kd", "other-corpus", 1, 0.99, epochs=20, embeddings=FULL_EMB)
    results = other.with_name("results.json")
    data = json.loads(results.read_text())
    data["corpus"] = "uner-talbanken"
    data["scores"] = {"uner-talbanken/dev": {"micro_f1": 0.99}, "uner-talbanken/test": {"micro_f1": 0.98}}
    results.write_text(json.dumps(data))
    notes: list[str] = []
    assert models.resolve("cnn", tmp_path, notes.append) == best
    assert notes == [f"cnn: {best} (kd, full profile (inferred), dev F1 0.7400; best on dev of 3 cnn models; "
                     "2 not comparable (a slice or another corpus))"]


def test_profiles_recorded_or_inferred_in_the_listing(tmp_path, real_results):
    made = _quick_profile(tmp_path, real_results)
    full = "webbnyheter2012-cbow-d100-e5-ep20-lr0.1-nall"
    recorded = _run(tmp_path, real_results, "cnn", "plain", full, 1, 0.70, epochs=20, embeddings=FULL_EMB,
                    profile="quick")  # a recorded profile wins over the settings
    teacher = tmp_path / "teacher" / TEACHER_ID
    teacher.mkdir(parents=True)
    (teacher / "best-model.pt").write_bytes(b"")
    (teacher / "training.json").write_text(json.dumps({"epochs": config.QUICK_TEACHER_EPOCHS, "seed": 1,
                                                       "max_sentences": None}))
    (teacher / "teacher.json").write_text(json.dumps({"scores": {"webbnyheter2012/dev": {"micro_f1": 0.644}}}))
    env = {"SWENER_MODELS": str(tmp_path)}
    result = CliRunner().invoke(main, ["models"], env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.startswith("  ")}
    assert rows["bilstm-crf"][1:4] == ["plain", "webbnyheter2012", "quick~"] and str(made["crf-plain"]) in \
        rows["bilstm-crf"]
    assert rows["bilstm"][1:4] == ["kd", "webbnyheter2012", "quick~"]
    assert rows["cnn"][1:4] == ["plain", "webbnyheter2012", "quick"] and str(recorded) in rows["cnn"]
    assert rows["teacher"][1:4] == ["teacher", "webbnyheter2012", "quick~"] and "0.6440" in rows["teacher"]
    assert "full" not in result.stdout.replace("full run", "")  # no quick run is called full
    assert f"teacher: {TEACHER_ID}" in result.stdout and "~: profile inferred" in result.stdout
    cards = json.loads(CliRunner().invoke(main, ["models", "--all", "--json"], env=env).stdout)
    assert len(cards) == 6 and sum(c["picked"] for c in cards) == 4
    by_path = {c["path"]: c for c in cards}
    assert by_path[str(made["crf-kd"])]["shown_as"] == "bilstm-crf-kd" and not by_path[str(made["crf-kd"])]["picked"]
    assert (by_path[str(recorded)]["profile"], by_path[str(recorded)]["profile_inferred"]) == ("quick", False)
    assert (by_path[str(made["crf-plain"])]["profile"], by_path[str(made["crf-plain"])]["profile_inferred"]) == (
        "quick", True)


def test_the_full_runs_results_in_the_repository_are_inferred_full(real_results):
    found = [path for path in sorted(RESULTS_DIR.rglob("seed-*/results.json"))[:200]]
    assert found  # the repository keeps the full runs' results.json files
    for path in found:
        assert models.profile_of(json.loads(path.read_text())) == ("full", True), path
    quick = {**real_results, "embeddings": QUICK_EMB}
    assert models.profile_of(quick) == ("quick", True)
    epochs = {**real_results, "settings": {**real_results["settings"], "epochs": config.QUICK_STUDENT_EPOCHS}}
    assert models.profile_of(epochs) == ("quick", True)
    assert models.profile_of({**quick, "profile": "full"}) == ("full", False)


@pytest.mark.slow
def test_swener_train_records_its_profile(tmp_path, tiny_vectors):
    out = tmp_path / "bilstm" / "plain" / "tiny" / "seed-1"
    result = CliRunner().invoke(main, ["train", "--family", "bilstm", "--alpha", "0", "--embeddings", tiny_vectors,
                                       "--epochs", "1", "--hidden-size", "8", "--max-sentences", "30",
                                       "--threads", "1", "--profile", "quick", "--out", out])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["profile"] == "quick" and saved["settings"]["epochs"] == 1  # the marks alone would say full
    entry, among = models.choose(models.entries_for("bilstm", tmp_path))
    assert (entry.path, entry.profile, entry.profile_inferred, among) == (out / "best-model.pt", "quick", False, 1)
