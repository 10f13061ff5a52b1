"""The `swener` command line: thin click commands over the library modules.

Heavy modules (flair, torch) are imported inside the commands that need them, so that
`swener --help` answers at once."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from swener import config  # standard library only: the defaults
from swener.errors import SwenerError


class Group(click.Group):
    """A click group that turns a SwenerError (or a bad recipe value) into one error line and exit status 1.

    Option values are checked while they are parsed (the callbacks below), inside this handler,
    so a bad value is one line too, before anything is loaded or trained.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (SwenerError, config.RecipeError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


def at_least(low: int):
    """An option callback: an integer of at least `low` (None passes: the option was not given)."""
    def check(ctx: click.Context, param: click.Parameter, value):
        if value is not None and value < low:
            raise SwenerError(f"{param.opts[0]} must be at least {low}, got {value}")
        return value
    return check


def positive(ctx: click.Context, param: click.Parameter, value):
    """An option callback: a number above 0."""
    if value is not None and not value > 0:
        raise SwenerError(f"{param.opts[0]} must be a positive number, got {value}")
    return value


def temperature_option(ctx: click.Context, param: click.Parameter, value):
    """An option callback: the KD temperature (positive)."""
    return None if value is None else config.check_temperature(value)


def seeds_option(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    """An option callback: comma-separated integer seeds."""
    try:
        return [int(x) for x in value.split(",")]
    except ValueError:
        raise SwenerError(f"--seeds {value!r}: write comma-separated integers, e.g. 1,2") from None


def encoder_options_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict | None:
    """An option callback: KEY=VALUE pairs (VALUE as JSON, else a string) -> a dict, None when none were given."""
    import json

    options: dict = {}
    for pair in value:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise SwenerError(f"{param.opts[0]} {pair!r}: write KEY=VALUE, e.g. residual=true")
        try:
            options[key.strip()] = json.loads(text)
        except ValueError:
            options[key.strip()] = text
    return options or None


def alpha_option(ctx: click.Context, param: click.Parameter, value: str | None):
    """An option callback: --alpha 0.5 (constant) or --alpha 0.9:0.1 (annealed over the epochs) -> (start, end)."""
    return None if value is None else config.parse_alpha(value)


@click.group(cls=Group)
@click.version_option(package_name="swener")
def main() -> None:
    """Swedish NER with knowledge distillation: corpora, embeddings, teacher, students."""
    _log_progress()


def _log_progress() -> None:
    """Show swener's INFO lines (progress of long passes) on stderr, once."""
    import logging

    logger = logging.getLogger("swener")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _existing_file(path: str, what: str) -> Path:
    """A path that must be an existing file (never taken for a hub id)."""
    found = Path(path)
    if not found.is_file():
        raise SwenerError(f"{path}: no such {what} file; check the path or train it first (see `make help`)")
    return found


corpus_option = click.option("--corpus", "corpus_name", default=config.DEFAULT_CORPUS, show_default=True,
                             help="A registered corpus, suc3, or a CoNLL file or folder.")
teacher_option = click.option("--teacher", "teacher_path", required=True, help="The teacher's best-model.pt.")
