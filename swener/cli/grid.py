"""`swener grid` and `swener tune`: the experiment's grid as Ray tasks, and Ray Tune searches on dev."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from swener.cli.base import main
from swener.errors import SwenerError
from swener.grid import plan as grid_plan


def _ray_missing() -> SwenerError:
    return SwenerError("Ray is not installed: pip install -e '.[ray]' (or use the Make route, make experiment)")


@main.command("grid")
@click.argument("assignments", nargs=-1, metavar="[VAR=VALUE]...")
@click.option("--root", "-C", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The folder the runs are written in (Make's working directory); on a "
                                      "cluster a folder every node sees.")
@click.option("--address", default=None, help="A Ray cluster to run on (else RAY_ADDRESS, else a local Ray).")
@click.option("--cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray (default: all of this machine's).")
@click.option("--teacher-cpus", type=click.IntRange(min=1), default=2, show_default=True,
              help="CPUs declared for the teacher's steps and the embeddings (a GPU too when Ray sees one).")
@click.option("--object-store-mb", type=click.IntRange(min=75), default=256, show_default=True,
              help="The local Ray's object store (uncapped it takes 30% of the RAM).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Retries of a step whose command fails or whose worker dies.")
@click.option("--dry-run", "-n", is_flag=True, help="Print the steps that would run and their commands.")
@click.option("--summary", "summary_json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the outcome of every step (timings, attempts, dev F1) to this JSON file.")
@click.option("--inject-fault", default=None, hidden=True,
              help="Tests: PATTERN[:always] kills the worker of the matching steps once they have started.")
def grid_cmd(assignments: tuple[str, ...], root: Path, address: str | None, cpus: int | None, teacher_cpus: int,
             object_store_mb: int, retries: int, dry_run: bool, summary_json: Path | None,
             inject_fault: str | None) -> None:
    """Run `make experiment`'s grid as Ray tasks: the same variables, runs, folders and report.

    VAR=VALUE are the Makefile's variables (QUICK=1, SEEDS="1 2", FAMILIES=cnn, ALPHA=0.3, ...),
    also read from the environment as Make does. Finished runs are skipped; rerun to resume.
    """
    try:
        variables = grid_plan.variables({**grid_plan.environ_defaults(), **grid_plan.parse_assignments(assignments)})
        the_plan = grid_plan.plan(variables)
    except grid_plan.PlanError as err:
        raise SwenerError(str(err)) from None
    if dry_run:
        from swener.grid.ray_runner import pending_steps

        to_run, skipped = pending_steps(the_plan, root)
        for step in to_run:
            click.echo(f"# {step.name} -> {step.target}")
            for command in step.commands:
                click.echo(shlex.join(command))
        click.echo(f"# {len(to_run)} steps to run, {len(skipped)} finished before", err=True)
        return
    try:
        import ray  # noqa: F401

        from swener.grid import ray_runner
    except ImportError:
        raise _ray_missing() from None
    summary = ray_runner.run_grid(the_plan, root, address=address, cpus=cpus, teacher_cpus=teacher_cpus,
                                  object_store_mb=object_store_mb, retries=retries,
                                  fault=ray_runner.Fault.parse(inject_fault), echo=lambda line: click.echo(line))
    for line in summary.lines():
        click.echo(line)
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary.as_json(), indent=1))
    if summary.interrupted:
        sys.exit(130)
    if not summary.ok:
        sys.exit(1)


def _values(kind, name: str):
    """A click callback: 'a,b,c' -> [kind(a), kind(b), kind(c)] ('none' is None), or None when not given."""
    def parse(ctx, param, text):
        if text is None:
            return None
        try:
            return [None if v.strip().lower() == "none" else kind(v) for v in text.split(",")]
        except ValueError:
            raise click.BadParameter(f"write comma-separated {kind.__name__} values", param_hint=name) from None
    return parse


@main.command("tune")
@click.option("--family", type=click.Choice(["bilstm-crf", "bilstm", "cnn", "cnn-crf"]), required=True)
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--embeddings", "embeddings_path", type=click.Path(path_type=Path), required=True)
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), required=True)
@click.option("--alpha", callback=_values(float, "--alpha"), help="Values of alpha, e.g. 0.1,0.5,0.9.")
@click.option("--temperature", callback=_values(float, "--temperature"), help="Values of T, e.g. 1,2,4.")
@click.option("--kd-target", callback=_values(str, "--kd-target"), help="e.g. marginals,emissions.")
@click.option("--transfer", "transfer_text", default=None, help="A transfer text (its cache in --soft-labels).")
@click.option("--transfer-sentences", callback=_values(int, "--transfer-sentences"),
              help="Sizes of the transfer set, e.g. 1000,5000,none (none: all cached).")
@click.option("--hidden-size", callback=_values(int, "--hidden-size"), help="Student sizes, e.g. 128,256.")
@click.option("--search", type=click.Choice(["grid", "random"]), default="grid", show_default=True,
              help="Every combination, or --samples random draws.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--asha/--no-asha", default=True, show_default=True,
              help="Stop trials early (ASHA) on their dev F1 after each epoch.")
@click.option("--grace-epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The base recipe (the family's settings where not searched; the other families are kept).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CPUs per trial.")
@click.option("--max-sentences", type=int, default=None)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("models/tune"),
              show_default=True, help="Trial runs in ROOT/FAMILY/TRIAL (finished ones are read back).")
@click.option("--table", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The trials table (JSON, with a Markdown twin).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The recipe file to write (recipes/NAME.json); updated in place when it exists.")
@click.option("--address", default=None, help="A Ray cluster (else RAY_ADDRESS, else a local Ray).")
@click.option("--cpus", type=click.IntRange(min=1), default=None)
@click.option("--object-store-mb", type=click.IntRange(min=75), default=256, show_default=True)
def tune_cmd(family: str, corpus_name: str, embeddings_path: Path, soft_dir: Path, alpha, temperature, kd_target,
             transfer_text: str | None, transfer_sentences, hidden_size, search: str, samples: int, asha: bool,
             grace_epochs: int, recipe_file: Path | None, epochs: int, seed: int, threads: int,
             max_sentences: int | None, root: Path, table: Path, out: Path, address: str | None, cpus: int | None,
             object_store_mb: int) -> None:
    """Search one family's KD settings and size on dev F1 with Ray Tune; the best into a recipe file."""
    try:
        from swener import config as _recipe
        from swener.grid import tune
        from swener.students import sweep
    except ImportError as err:
        raise SwenerError(f"swener tune: {err}") from None
    recipe_file = recipe_file or _recipe.DEFAULT_RECIPE
    try:
        base_recipe = _recipe.load(recipe_file, family)
    except _recipe.RecipeError as err:
        raise SwenerError(str(err)) from None
    base = sweep.Trial(family=family, alpha=base_recipe.alpha, alpha_end=base_recipe.alpha_end,
                       temperature=base_recipe.temperature, kd_target=base_recipe.kd_target,
                       transfer_text=transfer_text or base_recipe.transfer_text,
                       transfer_sentences=base_recipe.transfer_sentences, seed=seed, epochs=epochs)
    space = {name: values for name, values in (("alpha", alpha), ("temperature", temperature),
                                               ("kd_target", kd_target), ("transfer_sentences", transfer_sentences),
                                               ("hidden_size", hidden_size)) if values is not None}
    if not space:
        raise SwenerError("nothing to search: give values for at least one of --alpha, --temperature, "
                          "--kd-target, --transfer-sentences, --hidden-size")
    settings = tune.TuneSettings(family=family, space=space, base=base, search=search, samples=samples, asha=asha,
                                 grace_epochs=grace_epochs, threads=threads, max_sentences=max_sentences)
    tune.check_space(settings)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise _ray_missing() from None
    rows = tune.run_tune(settings, corpus_name, embeddings_path, soft_dir, root, table, address=address, cpus=cpus,
                         object_store_mb=object_store_mb)
    for row in rows:
        state = "stopped early" if row.get("stopped_early") else "error" if row.get("error") else "finished"
        click.echo(f"{row['name']}: dev F1 {row['dev_f1']:.4f} after {row['epochs_run']} epochs ({state})")
    best = tune.best_finished(rows)
    tune.write_recipe(out, recipe_file, family, best, table)
    click.echo(f"best: {best['name']} (dev F1 {best['dev_f1']:.4f}); wrote {out} "
               f"(make students RECIPE={out}); table {table}")
