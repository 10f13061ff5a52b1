"""The `swener` command line: thin click commands over the library modules.

Heavy modules (flair, torch) are imported inside the commands that need them, so that
`swener --help` answers at once.
"""
from __future__ import annotations

import json
import sys

import click

from swener.errors import SwenerError


class Group(click.Group):
    """A click group that turns SwenerError into one error line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SwenerError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.version_option(package_name="swener")
def main() -> None:
    """Swedish NER with knowledge distillation: corpora, embeddings, teacher, students."""


@main.group(cls=Group)
def corpus() -> None:
    """Inspect the Swedish NER corpora."""


@corpus.command("stats")
@click.argument("name_or_path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def corpus_stats(name_or_path: str, as_json: bool) -> None:
    """Sentences, tokens and entities per split, and what was repaired or dropped."""
    from swener import corpora

    result = corpora.stats(corpora.load(name_or_path))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"{result['corpus']} ({result['licence']}), types: {', '.join(result['types'])}")
    for split, row in result["splits"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in row["entities_per_type"].items())
        click.echo(f"  {split:5s} {row['sentences']:6d} sentences {row['tokens']:7d} tokens "
                   f"{row['entities']:5d} entities ({kinds})")
        for note in row["notes"]:
            click.echo(f"        - {note}")


if __name__ == "__main__":
    main()
