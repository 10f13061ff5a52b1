"""The gold curve's commands: `swener corpus held-back` (the in-domain transfer pool) and `swener gold-curve report`;
and `gold_option`, the `--gold N|all` option of `teacher train`, `teacher soft-labels`, `teacher kbest`, `train`."""
from __future__ import annotations

from pathlib import Path

import click

from swener.cli.base import Group, corpus_option, main
from swener.cli.data import corpus
from swener.errors import SwenerError


def _gold(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from swener.data.subsets import parse_gold

    return parse_gold(value)


gold_option = click.option(
    "--gold", "gold", default=None, callback=_gold, metavar="N|all",
    help="Train on the gold subset of N sentences: the first N of one fixed seeded shuffle of the train split "
         "(nested: each contains the smaller ones); dev and test unchanged. all (the default): the whole split.")


@corpus.command("held-back")
@corpus_option
@click.option("--gold", "gold", required=True, callback=_gold, metavar="N", help="The gold subset's size.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The pool as a tokens file (*.tokens or *.tokens.gz): one token a line, no tags.")
def held_back_cmd(corpus_name: str, gold: int | None, out: Path) -> None:
    """Write the train sentences outside the gold subset of N as unlabelled text (tokens only), a transfer set."""
    from swener.data import corpora
    from swener.data.subsets import held_back
    from swener.data.tokens import write_tokens

    if gold is None:
        raise SwenerError("--gold all holds nothing back; give a number of gold sentences")
    loaded = corpora.load(corpus_name)
    written = write_tokens(out, (s.tokens for s in held_back(loaded, gold)))
    click.echo(f"wrote {out}: {written} sentences held back of {len(loaded.splits['train'])} (gold {gold})")


@main.group("gold-curve", cls=Group)
def gold_curve() -> None:
    """The gold curve: the KD effect against the number of gold train sentences (issue 36)."""


def _teacher_pair(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict:
    from swener.data.subsets import parse_gold

    found = {}
    for pair in value:
        size, sep, path = pair.partition("=")
        if not sep or not path:
            raise SwenerError(f"--teacher {pair!r}: write N=TEACHER.json (N a gold size or all)")
        found[parse_gold(size)] = Path(path)
    return found


@gold_curve.command("report")
@click.option("--result", "results", multiple=True, required=True, type=click.Path(path_type=Path, exists=True),
              help="A student's results.json (repeat for every run of the study).")
@click.option("--teacher", "teachers", multiple=True, callback=_teacher_pair, metavar="N=FILE",
              help="The teacher of gold size N's teacher.json (`swener teacher evaluate`); repeatable.")
@click.option("--samples", default=2000, show_default=True, help="Bootstrap draws per KD effect.")
@click.option("--via", default="", help="What called the report, for its header (e.g. 'make gold-curve').")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/gold-curve"), show_default=True)
def gold_curve_report(results: tuple[Path, ...], teachers: dict, samples: int, via: str, out: Path) -> None:
    """The table (N x family: plain, KD, ΔF1 with its interval, per test set) and the plot against N."""
    from swener.report.gold_curve import FILES, build

    summary = build(list(results), out, teachers, samples, via)
    for family, sizes in summary["pays"].items():
        click.echo(f"{family}: KD gains >= 2 points in domain at N = {', '.join(sizes) or 'none'}")
    click.echo(f"wrote {', '.join(str(out / name) for name in FILES.values())}")
