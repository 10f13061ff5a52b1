"""`swener report`, `study`, `compare`, `tag`, `export`, `models`: results and trained models."""
from __future__ import annotations

import json
import sys
from pathlib import Path

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
def report_cmd(models_dir: Path, teacher_json: Path | None, out: Path, match: tuple[str, ...], samples: int,
               results: tuple[Path, ...], profile: str | None) -> None:
    """Tables, KD effects with bootstrap intervals, costs and plots: REPORT.md, results.json, PNGs."""
    import shlex

    from swener import report

    command = shlex.join(["swener", *sys.argv[1:]])
    for path in results:
        _existing_file(str(path), "results.json")
    paths = report.build(list(results) or report.find_results(models_dir, match), out,
                         teacher=_existing_file(str(teacher_json), "teacher.json") if teacher_json else None,
                         command=command, samples=samples, profile=profile)
    for path in paths.values():
        click.echo(f"wrote {path}")


@main.command("study")
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for studies.json/.md and plots.")
def study_cmd(tables: tuple[Path, ...], out: Path) -> None:
    """The KD effect on dev against teacher quality and transfer-set size, from sweep tables."""
    from swener.report.studies import build_studies

    for path in tables:
        _existing_file(str(path), "sweep table")
    effects = build_studies(list(tables), out)["effects"]
    click.echo(f"wrote {out}/studies.md and its plots ({len(effects)} KD settings with a plain baseline)")


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
@click.argument("files", nargs=-1)
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write here (replaced only when tagging succeeded); default: stdout.")
@click.option("--format", "output_format", type=click.Choice(["conll", "jsonl", "inline"]), default="conll",
              show_default=True, help="conll: token TAB IOB2 tag; jsonl: a JSON object a sentence; inline: [Anna]PER.")
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
@click.option("--precision", type=click.Choice(["float32", "bf16", "int8"]), default="float32", show_default=True,
              help="Students on the flair engine: bfloat16 autocast or dynamic int8 quantisation.")
def tag_cmd(model: str, files: tuple[str, ...], out: Path | None, output_format: str, input_format: str,
            batch_size: int, errors: str, max_tokens: int, threads: int, engine: str, precision: str) -> None:
    """Tag Swedish text FILEs (or stdin, -) with MODEL: a .pt file, an export folder or a short name (see `swener
    models`)."""
    import os

    from swener.serve import names as models
    from swener.serve import tagging

    paths = list(files) or ["-"]
    tagging.check_paths(paths, out)
    if not _onnx_model(model, engine):
        import torch

        torch.set_num_threads(threads)  # a small tagger on shared cores: 2 threads ran 30x slower than 1 here
    tagger = models.load_tagger(model, engine=engine, precision=precision, threads=threads)
    try:
        summary = tagging.tag_files(tagger, paths, out, output_format, input_format, batch_size, errors, max_tokens)
    except BrokenPipeError:  # the reader of a pipe stopped (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if sys.stderr.isatty():
        click.echo(f"{summary.sentences} sentences, {summary.tokens} tokens, {summary.entities} entities "
                   f"in {summary.seconds:.1f} s" + (f": {out}" if out else ""), err=True)


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
    click.echo(f"wrote {written}")


@main.command("models")
@click.option("--all", "show_all", is_flag=True, help="Every trained model, not only the one each short name picks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_cmd(show_all: bool, as_json: bool) -> None:
    """The trained models that short names stand for, with the key facts of their model cards."""
    from swener.serve import names as models

    rows = models.listing(show_all)
    if as_json:
        click.echo(json.dumps([{**e.as_dict(), "picked": p} for e, _, p in rows], indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(models.table(rows, show_all)))
