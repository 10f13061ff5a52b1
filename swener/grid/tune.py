"""`swener tune`: Ray Tune searches one family's KD settings on dev F1, never on test.

The space is alpha, T, the KD target, the transfer-set size and the student's hidden size
(each a list of values: a grid, or `samples` random draws from it), with ASHA stopping the
trials whose dev F1 after an epoch is in the bottom part of their rung. Every trial is a
swener.sweep Trial: it trains in `<root>/<family>/<trial name>/` (a finished trial, e.g. of
an earlier `swener sweep` or `swener tune` on the same root, is read back), scores dev only
(StudentSettings.dev_only) and reports dev F1 after each epoch through a Flair plugin. The
trials go into a sweep table (JSON and Markdown) and the best finished trial's KD settings
into a recipe file (recipes/*.json) that `make students RECIPE=...` and `swener grid
RECIPE=...` read; the hidden size it chose is written beside them (key "tune").
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from swener import config as recipe  # the KD settings and their checks
from swener.atomic import write_json
from swener.errors import SwenerError
from swener.students import sweep

log = logging.getLogger("swener")

SPACE = ("alpha", "temperature", "kd_target", "transfer_sentences", "hidden_size")


@dataclass
class TuneSettings:
    """What is searched and how: `space` maps names of SPACE to their values."""

    family: str
    space: dict[str, list]
    base: sweep.Trial
    search: str = "grid"  # grid: every combination; random: `samples` draws
    samples: int = 8
    asha: bool = True
    grace_epochs: int = 1  # ASHA: epochs every trial runs before it can be stopped
    threads: int = 1
    max_sentences: int | None = None


def trials_of(config: dict, base: sweep.Trial) -> sweep.Trial:
    """The sweep Trial of one Tune config (the base trial with the searched values)."""
    return replace(base, **{name: config[name] for name in SPACE if name in config})


def report_dev_f1(last_epoch: int) -> object:
    """A Flair trainer plugin: after each epoch's evaluation but the last, dev F1 to Ray Tune (for ASHA).

    The last epoch is reported by the trial once its run is scored and swapped in: at `max_t`
    the scheduler ends the trial, which would kill it before its folder is complete.
    """
    from flair.trainers.plugins.base import TrainerPlugin

    class ReportDevF1(TrainerPlugin):
        @TrainerPlugin.hook
        def after_evaluation(self, epoch: int, validation_scores: tuple = (), **kw: Any) -> None:
            from ray import tune

            if validation_scores and epoch < last_epoch:
                tune.report({"dev_f1": float(validation_scores[0]), "epoch": epoch})

    return ReportDevF1()


def run_trial(config: dict, base: sweep.Trial, corpus: str, embeddings: str, soft_dir: str, root: str,
              threads: int, max_sentences: int | None) -> None:
    """The Tune trainable: train (or read back) one trial on dev, reporting dev F1 each epoch."""
    from ray import tune

    from swener.students.run import train_student

    trial = trials_of(config, base)
    out = Path(root) / trial.family / trial.name
    if (out / "results.json").exists():  # read back: its epochs' dev F1 from Flair's loss.tsv
        results = json.loads((out / "results.json").read_text())
        curve = _dev_curve(out / "loss.tsv")
        for epoch, f1 in curve or [(results.get("epochs", trial.epochs),
                                    results["scores"][f"{corpus}/dev"]["micro_f1"])]:
            tune.report({"dev_f1": f1, "epoch": epoch})
        return
    settings = trial.settings(threads, max_sentences)
    results = train_student(settings, corpus, Path(embeddings), Path(soft_dir), out,
                            plugins=[report_dev_f1(trial.epochs)])
    tune.report({"dev_f1": results["scores"][f"{corpus}/dev"]["micro_f1"], "epoch": results["epochs"]})


def _dev_curve(loss_tsv: Path) -> list[tuple[int, float]]:
    """(epoch, dev F1) rows of Flair's loss.tsv, [] when it is missing."""
    if not loss_tsv.exists():
        return []
    lines = loss_tsv.read_text().splitlines()
    head = lines[0].split("\t")
    if "DEV_F1" not in head:
        return []
    epoch, f1 = head.index("EPOCH"), head.index("DEV_F1")
    return [(int(row.split("\t")[epoch]), float(row.split("\t")[f1])) for row in lines[1:] if row.strip()]


def search_space(settings: TuneSettings) -> dict:
    from ray import tune

    pick = tune.grid_search if settings.search == "grid" else tune.choice
    return {name: pick(list(values)) for name, values in settings.space.items()}


def check_space(settings: TuneSettings) -> None:
    """Every combination a valid KD setting (before anything trains); a transfer size needs a transfer text."""
    unknown = set(settings.space) - set(SPACE)
    if unknown:
        raise SwenerError(f"cannot search {sorted(unknown)}: the space is {', '.join(SPACE)}")
    for name, values in settings.space.items():
        if not values:
            raise SwenerError(f"--{name.replace('_', '-')}: no values")
        for value in values:
            trial = replace(settings.base, **{name: value})
            try:
                recipe.Recipe(alpha=trial.alpha, temperature=trial.temperature, kd_target=trial.kd_target,
                              transfer_sentences=trial.transfer_sentences)
            except recipe.RecipeError as err:
                raise SwenerError(f"--{name.replace('_', '-')} {value!r}: {err}") from None
    if "transfer_sentences" in settings.space and not settings.base.transfer_text:
        raise SwenerError("--transfer-sentences searches a transfer set's size: give --transfer TEXT")


def run_tune(settings: TuneSettings, corpus: str, embeddings: Path, soft_dir: Path, root: Path, table: Path,
             address: str | None = None, cpus: int | None = None, object_store_mb: int = 256) -> list[dict]:
    """Search on Ray Tune; returns the table's rows (finished and stopped trials), best first."""
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials keep the working directory
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from swener.grid.ray_runner import start_ray

    check_space(settings)
    root, table = Path(root).resolve(), Path(table).resolve()
    ray = start_ray(address, cpus, object_store_mb)
    try:
        scheduler = ASHAScheduler(time_attr="epoch", max_t=max(settings.base.epochs, 1),
                                  grace_period=min(settings.grace_epochs, settings.base.epochs),
                                  reduction_factor=2) if settings.asha else FIFOScheduler()
        trainable = tune.with_parameters(run_trial, base=settings.base, corpus=corpus,
                                         embeddings=str(Path(embeddings).resolve()),
                                         soft_dir=str(Path(soft_dir).resolve()), root=str(root),
                                         threads=settings.threads, max_sentences=settings.max_sentences)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": settings.threads}),
            param_space=search_space(settings),
            tune_config=tune.TuneConfig(metric="dev_f1", mode="max", scheduler=scheduler,
                                        num_samples=1 if settings.search == "grid" else settings.samples),
            run_config=tune.RunConfig(name=f"tune-{settings.family}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str(root / "ray-tune"), verbose=0))
        grid = tuner.fit()
        rows: dict[str, dict] = {row["name"]: row for row in sweep.read_table(table)}
        teacher_f1 = sweep.teacher_dev_f1(Path(soft_dir))
        for result in grid:
            trial = trials_of(result.config, settings.base)
            results_json = root / trial.family / trial.name / "results.json"
            if results_json.exists():
                row = sweep.table_row(trial, json.loads(results_json.read_text()), corpus, teacher_f1)
                row["stopped_early"] = False
            else:  # stopped by ASHA (or failed): its last reported dev F1
                metrics = result.metrics or {}
                row = {"name": trial.name, **asdict(trial), "dev_f1": float(metrics.get("dev_f1", 0.0)),
                       "dev_per_type": {}, "epochs_run": int(metrics.get("epoch", 0)),
                       "minutes": float(metrics.get("time_total_s", 0.0)) / 60, "train_sentences": None,
                       "machine": None, "stopped_early": result.error is None,
                       "error": str(result.error).splitlines()[0] if result.error else None}
            rows[trial.name] = row
        searched = [r for r in rows.values() if r["family"] == settings.family]
        sweep.write_table(table, sorted(rows.values(), key=lambda r: (r["family"], -r["dev_f1"])))
    finally:
        ray.shutdown()
    return sorted(searched, key=lambda r: -r["dev_f1"])


def best_finished(rows: Sequence[dict]) -> dict:
    """The trial with the highest dev F1 among those that ran all their epochs."""
    finished = [r for r in rows if not r.get("stopped_early") and not r.get("error")]
    if not finished:
        raise SwenerError("no trial finished; see the table")
    return max(finished, key=lambda r: r["dev_f1"])


def write_recipe(out: Path, base_recipe: Path, family: str, best: dict, table: Path) -> dict:
    """The recipe file with `family`'s KD settings replaced by the best trial's (the other families kept)."""
    source = out if out.exists() else base_recipe
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SwenerError(f"{source}: not a recipe file ({err})") from None
    chosen = recipe.Recipe(alpha=best["alpha"], alpha_end=best["alpha_end"], temperature=best["temperature"],
                           kd_target=best["kd_target"], transfer_text=best["transfer_text"],
                           transfer_sentences=best["transfer_sentences"])
    data.setdefault("families", {})[family] = recipe.as_dict(chosen)
    data.setdefault("tune", {})[family] = {
        "hidden_size": best["hidden_size"], "dev_f1": best["dev_f1"], "trial": best["name"],
        "epochs": best["epochs"], "seed": best["seed"], "table": str(table),
        "note": "chosen by swener tune on dev F1 (test never read); hidden_size is not a recipe setting: "
                "pass it as `swener train --hidden-size`"}
    data["about"] = (data.get("about", "") + f" | {family}: chosen by swener tune on dev ({best['name']}, "
                     f"dev F1 {best['dev_f1']:.4f}).").strip(" |")
    write_json(out, data)
    recipe.load(out, family)  # readable by make students
    return data
