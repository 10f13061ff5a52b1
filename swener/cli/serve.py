"""`swener report`, `study`, `compare`, `tag`, `export`, `models`: results and trained models."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import click

from swener.cli.base import _existing_file, at_least, main


@main.command("report")
@click.option("--models", "models_dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True,
              help="Folder of student runs: <family>/<plain|kd>/<settings>/seed-N/results.json.")
@click.option("--teacher", "teacher_json", type=click.Path(path_type=Path), default=None,
              help="The teacher's teacher.json (from `swener teacher evaluate`): its row and the cache cost.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--match", multiple=True, help="Use only runs whose path contains this text (repeatable: all must).")
@click.option("--samples", default=2000, show_default=True, help="Bootstrap draws per KD effect.")
@click.option("--result", "results", multiple=True, type=click.Path(path_type=Path),
              help="A results.json to include (repeatable); replaces the search of --models.")
@click.option("--profile", type=click.Choice(["quick", "full"]), default=None,
              help="The profile that made the runs, shown at the top (default: quick if they used a slice).")
@click.option("--via", default="", help="What called the report, for its header (e.g. 'make experiment').")
def report_cmd(models_dir: Path, teacher_json: Path | None, out: Path, match: tuple[str, ...], samples: int,
               results: tuple[Path, ...], profile: str | None, via: str) -> None:
    """Tables, KD effects with bootstrap intervals, costs and plots: REPORT.md, results.json, PNGs."""
    from swener import report

    for path in results:
        _existing_file(str(path), "results.json")
    paths = report.build(list(results) or report.find_results(models_dir, match), out,
                         teacher=_existing_file(str(teacher_json), "teacher.json") if teacher_json else None,
                         command=_short_command(models_dir, teacher_json, out, match, samples, results, profile),
                         samples=samples, profile=profile, via=via)
    for path in paths.values():
        click.echo(f"wrote {path}")


def _short_command(models_dir: Path, teacher_json: Path | None, out: Path, match: tuple[str, ...], samples: int,
                   results: tuple[Path, ...], profile: str | None) -> str:
    """`swener report` with the options given, the --result files folded into `--result ...` (results.json lists
    them), for the report's header."""
    import shlex

    args = ["swener", "report"]
    args += ["--profile", profile] if profile else []
    args += ["--teacher", str(teacher_json)] if teacher_json else []
    args += ["--out", str(out)]
    args += ["--samples", str(samples)]
    args += [x for m in match for x in ("--match", m)]
    args += [] if results else ["--models", str(models_dir)]
    return shlex.join(args) + (" --result ..." if results else "")


class _StudyGroup(click.Group):
    """`swener study`: its subcommands; `swener study TABLE... --out DIR` (the old form) is `study sweeps`."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["sweeps", *args]
        return super().resolve_command(ctx, args)


@main.group("study", cls=_StudyGroup)
def study_cmd() -> None:
    """Studies on dev from sweep tables: KD against teacher quality and transfer size, paired tables, budget."""


@study_cmd.command("sweeps")
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for studies.json/.md and plots.")
def study_sweeps_cmd(tables: tuple[Path, ...], out: Path) -> None:
    """The KD effect on dev against teacher quality and transfer-set size, from sweep tables."""
    from swener.report.studies import build_studies

    for path in tables:
        _existing_file(str(path), "sweep table")
    effects = build_studies(list(tables), out)["effects"]
    click.echo(f"wrote {out}/studies.md and its plots ({len(effects)} KD settings with a plain baseline)")


def _sources(kd_from: str, teacher_labels: tuple[str, ...]) -> Callable[[dict], str]:
    """The `source` of a paired table from --kd-from and --teacher-label SUFFIX=TEXT options."""
    from swener.report.paired import teacher_source

    by_suffix = {}
    for item in teacher_labels:
        suffix, sep, label = item.partition("=")
        if not sep or not suffix or not label:
            raise click.BadParameter(f"{item!r}: expected SUFFIX=TEXT, e.g. '-in=in-fold (control)'",
                                     param_hint="--teacher-label")
        by_suffix[suffix] = label
    return teacher_source(kd_from, by_suffix)


def _write_summary(text: str, out: Path | None) -> None:
    from swener.atomic import write_text

    click.echo(text, nl=False)
    if out:
        write_text(out, text)


_KD_FROM = click.option("--kd-from", default="teacher", show_default=True,
                        help="The 'KD from' column: what the KD trials learnt from.")
_TEACHER_LABEL = click.option("--teacher-label", "teacher_labels", multiple=True, metavar="SUFFIX=TEXT",
                              help="'KD from' for trials whose teacher's name ends with SUFFIX (repeatable).")
_OUT = click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
                    help="Also write the table here (e.g. the study folder's summary.md).")


@study_cmd.command("paired")
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@_KD_FROM
@_TEACHER_LABEL
@_OUT
def study_paired_cmd(tables: tuple[Path, ...], kd_from: str, teacher_labels: tuple[str, ...], out: Path | None) -> None:
    """Each KD trial's dev F1 minus the plain trial's of its seed, mean and 95 % t interval, per sweep TABLE."""
    from swener.report.paired import paired_summary

    for path in tables:
        _existing_file(str(path), "sweep table")
    _write_summary(paired_summary(list(tables), _sources(kd_from, teacher_labels)), out)


@study_cmd.command("budget")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@_KD_FROM
@_TEACHER_LABEL
@_OUT
def study_budget_cmd(folder: Path, kd_from: str, teacher_labels: tuple[str, ...], out: Path | None) -> None:
    """The budget study's paired table from FOLDER/<family>-ep<N>.json: equal epochs, then equal updates."""
    from swener.report.paired import budget_summary

    _write_summary(budget_summary(folder, _sources(kd_from, teacher_labels)), out)


@main.command("compare")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the table to this file.")
def compare_cmd(results: tuple[Path, ...], out: Path | None) -> None:
    """Mean ± sd over seeds of groups of runs (e.g. --oov subword vs zero), one row per settings folder."""
    from swener import report
    from swener.atomic import write_text

    for path in results:
        _existing_file(str(path), "results.json")
    table = report.compare_table(list(results))
    click.echo(table, nl=False)
    if out:
        write_text(out, table)


# ----- tagging files, and the trained models by short name -----


@main.command("tag")
@click.argument("model")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write all inputs here, in order (replaced only when tagging succeeded); default: stdout.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="One output per input here, at its path under its folder argument (a file argument: its "
                   "name) plus .conll, .jsonl, .inline.txt or .html; each replaced only when its tagging succeeded.")
@click.option("--format", "output_format", type=click.Choice(["conll", "jsonl", "inline", "html"]), default="conll",
              show_default=True, help="conll: token TAB IOB2 tag; jsonl: a JSON object a sentence; inline: [Anna]PER; "
                                      "html: a page per input, entities coloured by type, confidence on hover.")
@click.option("--input-format", type=click.Choice(["text", "tokens", "conll"]), default="text", show_default=True,
              help="text: raw UTF-8 text; tokens: a tokenised sentence a line; "
                   "conll: the first column of a column file.")
@click.option("--batch-size", type=int, callback=at_least(1), default=64, show_default=True)
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="Bytes that are not UTF-8: stop with an error naming the line, or replace them with U+FFFD.")
@click.option("--max-tokens", type=int, callback=at_least(1), default=256, show_default=True,
              help="Tag longer sentences in chunks of this many tokens.")
@click.option("--threads", type=int, callback=at_least(1), default=1, show_default=True,
              help="torch threads; more only help a large model on otherwise idle cores.")
@click.option("--engine", type=click.Choice(["auto", "flair", "onnx"]), default="auto", show_default=True,
              help="onnx: the exported model (swener export) in ONNX Runtime, without torch or Flair; "
                   "auto: onnx for an export folder, else flair.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bf16", "int8"]), default="auto",
              show_default=True,
              help="auto: an exported model in int8 where this CPU has VNNI and int8 passed the dev check "
                   "(python -m swener.serve.precision_check FOLDER), else float32 (said on stderr); a .pt student in "
                   "float32. bf16 (autocast) is for .pt students only; int8: ONNX Runtime or torch dynamic int8.")
@click.option("--workers", type=int, callback=at_least(1), default=None,
              help="Processes that tag an exported model (text or tokens in; conll, jsonl or inline out); "
                   "default: one per usable core.")
def tag_cmd(model: str, paths: tuple[str, ...], out: Path | None, out_dir: Path | None, output_format: str,
            input_format: str, batch_size: int, errors: str, max_tokens: int, threads: int, engine: str,
            precision: str, workers: int | None) -> None:
    """Tag Swedish text with MODEL: a .pt file, an export folder or a short name (see `swener models`).

    Each PATH is a file, a folder (every non-hidden file under it, in sorted order) or - (stdin,
    the default)."""
    import os

    from swener.serve import names as models
    from swener.serve import pipeline, tagging

    inputs = list(paths) or ["-"]
    tagging.plan_outputs(inputs, out, out_dir, output_format)  # refuse bad paths before the model loads
    onnx = _onnx_model(model, engine)
    if not onnx:
        import torch

        torch.set_num_threads(threads)  # a small tagger on shared cores: 2 threads ran 30x slower than 1 here
    tagger = models.load_tagger(model, engine=engine, precision="float32" if onnx or precision == "auto"
                                else precision, threads=threads)
    if onnx:
        from swener.serve.precision import choose

        if precision == "auto":
            precision, why = choose(tagger.folder)
            if precision != "float32" or sys.stderr.isatty():  # a lossy choice is always said
                click.echo(f"precision: {why}", err=True)
        if precision != "float32":
            tagger = type(tagger)(tagger.folder, threads=threads, precision=precision)
    try:
        summary = tagging.tag_files(tagger, inputs, out, output_format, input_format, batch_size, errors, max_tokens,
                                    out_dir=out_dir, model=model, workers=workers or pipeline.default_workers())
    except BrokenPipeError:  # the reader of a pipe stopped (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if sys.stderr.isatty():
        where = f": {out_dir}/" if out_dir else f": {out}" if out else ""
        click.echo(f"{summary.files} files, {summary.sentences} sentences, {summary.tokens} tokens, "
                   f"{summary.entities} entities in {summary.seconds:.1f} s{where}", err=True)


def _onnx_model(model: str, engine: str) -> bool:
    """Whether MODEL will run on ONNX Runtime (so torch need not be imported)."""
    if engine == "onnx":
        return True
    from swener.serve.onnx import is_export

    return engine == "auto" and is_export(Path(model))


@main.command("export")
@click.argument("model")
@click.option("--variant", type=click.Choice(["onnx", "bf16", "int8"]), default="onnx", show_default=True,
              help="onnx: a folder for ONNX Runtime; bf16 / int8: a reduced-precision student file.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Default: <model>-onnx/, <model>.bf16.pt or <model>.int8.pt beside the model.")
def export_cmd(model: str, variant: str, out: Path | None) -> None:
    """Write a trained student for serving: ONNX (no torch or Flair needed to tag) or bf16 / int8."""
    from swener.serve import export
    from swener.serve import names as models

    path = models.resolve(model)
    if path.is_dir() and (path / "best-model.pt").is_file():
        path = path / "best-model.pt"
    tagger = models.load_tagger(str(path), engine="flair")
    written = export.write_variant(tagger, path, variant, out)
    card = f" (model card: {written / export.CARD_FILE})" if variant == "onnx" else ""
    click.echo(f"wrote {written}{card}")


@main.command("models")
@click.option("--all", "show_all", is_flag=True, help="Every trained model, not only the one each short name picks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_cmd(show_all: bool, as_json: bool) -> None:
    """The trained models that short names stand for (the best on dev), with the key facts of their model cards."""
    from swener.serve import names as models

    rows = models.listing(show_all)
    if as_json:
        click.echo(json.dumps([{**e.as_dict(), "shown_as": name, "picked": p} for name, e, p in rows], indent=2,
                              ensure_ascii=False))
    else:
        click.echo("\n".join(models.table(rows, show_all)))
