"""The KD settings of a student: their defaults (here, once), their checks, and the recipe file.

A recipe file (`recipes/default.json`) maps each student family to the KD settings that
`make students` uses for it:

    {"families": {"bilstm-crf": {"alpha": 0.5, "alpha_end": null, "temperature": 2,
                                 "kd_target": "marginals", "transfer_text": null,
                                 "transfer_sentences": null}, ...}}

`alpha_end` anneals alpha linearly from `alpha` (first epoch) to `alpha_end` (last epoch);
null keeps it constant. This module needs only the standard library: the Makefile runs it
with any python3 (`python3 swener/recipe.py FILE FAMILY`), which prints the family's values
as Make words; `swener recipe FILE --family F` prints them as Make variables.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_ALPHA = 0.5
DEFAULT_TEMPERATURE = 2.0
KD_TARGETS = ("marginals", "emissions", "kbest")
DEFAULT_KD_TARGET = "marginals"
DEFAULT_KBEST = 4  # teacher paths cached per sentence for --kd-target kbest
CRF_ONLY_TARGETS = ("kbest",)
GRADIENT_PROBES = 8  # batches per epoch whose two loss terms' gradient norms are logged
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO_ROOT / "recipes" / "default.json"
EVAL_CORPORA = ("uner-pud", "uner-talbanken")  # out-of-domain test sets every model is scored on
NONE_WORD = "-"  # a missing value in the Make words


class RecipeError(ValueError):
    """A recipe or KD option that cannot be used; the message is one line saying why."""


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """alpha as a float in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise RecipeError(f"{name} must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def parse_alpha(text: str) -> tuple[float, float | None]:
    """'0.5' -> (0.5, None), a constant alpha; '0.9:0.1' -> (0.9, 0.1), annealed from 0.9 to 0.1."""
    parts = str(text).split(":")
    if len(parts) > 2:
        raise RecipeError(f"alpha must be a number in [0, 1] or START:END (e.g. 0.9:0.1), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise RecipeError(f"alpha must be a number in [0, 1] or START:END (e.g. 0.9:0.1), got {text!r}") from None
    start = check_alpha(values[0], "alpha")
    return start, (check_alpha(values[1], "the end of the alpha schedule") if len(values) == 2 else None)


def alpha_at(start: float, end: float | None, epoch: int, epochs: int) -> float:
    """alpha of a 1-based epoch: linear from `start` (epoch 1) to `end` (epoch `epochs`); constant if end is None."""
    if end is None or epochs <= 1:
        return start
    share = (min(max(epoch, 1), epochs) - 1) / (epochs - 1)
    return start + (end - start) * share


def format_alpha(start: float, end: float | None) -> str:
    """The option form of an alpha: '0.5', or '0.9:0.1' when annealed."""
    return f"{start:g}" if end is None else f"{start:g}:{end:g}"


@dataclass(frozen=True)
class Recipe:
    """The KD settings of one family."""

    alpha: float = DEFAULT_ALPHA
    alpha_end: float | None = None
    temperature: float = DEFAULT_TEMPERATURE
    kd_target: str = DEFAULT_KD_TARGET
    transfer_text: str | None = None
    transfer_sentences: int | None = None

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.alpha_end is not None:
            check_alpha(self.alpha_end, "alpha_end")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) \
                or not self.temperature > 0:
            raise RecipeError(f"temperature must be a positive number, got {self.temperature!r}")
        if self.kd_target not in KD_TARGETS:
            raise RecipeError(f"kd_target must be one of {', '.join(KD_TARGETS)}, got {self.kd_target!r}")
        if self.transfer_text is not None and (not isinstance(self.transfer_text, str) or not self.transfer_text
                                               or any(c.isspace() for c in self.transfer_text)):
            raise RecipeError(f"transfer_text must be a path without spaces, got {self.transfer_text!r}")
        if self.transfer_sentences is not None and (isinstance(self.transfer_sentences, bool) or not isinstance(
                self.transfer_sentences, int) or self.transfer_sentences < 1):
            raise RecipeError(f"transfer_sentences must be a positive integer, got {self.transfer_sentences!r}")

    def make_words(self) -> str:
        """alpha (START:END if annealed), T, KD target, transfer text, transfer sentences ('-' for none)."""
        words = [format_alpha(self.alpha, self.alpha_end), f"{self.temperature:g}", self.kd_target,
                 self.transfer_text or NONE_WORD,
                 str(self.transfer_sentences) if self.transfer_sentences is not None else NONE_WORD]
        return " ".join(words)

    def make_variables(self) -> str:
        """The same as Make variable assignments, one a line."""
        names = ("ALPHA", "TEMPERATURE", "KD_TARGET", "TRANSFER_TEXT", "TRANSFER_SENTENCES")
        return "".join(f"{name} := {'' if word == NONE_WORD else word}\n"
                       for name, word in zip(names, self.make_words().split(" ")))


def load(path: str | Path, family: str) -> Recipe:
    """The recipe of `family` in a recipe file; any fault is a RecipeError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecipeError(f"{path}: not a JSON recipe file ({err})") from None
    families = data.get("families") if isinstance(data, dict) else None
    if not isinstance(families, dict):
        raise RecipeError(f'{path}: expected a JSON object with "families": {{family: settings}}')
    if family not in families:
        raise RecipeError(f"{path}: no recipe for family {family!r} (it has {', '.join(families) or 'none'})")
    row = families[family]
    known = {f.name for f in fields(Recipe)}
    if not isinstance(row, dict) or set(row) - known:
        unknown = sorted(set(row) - known) if isinstance(row, dict) else row
        raise RecipeError(f"{path}: family {family!r}: unknown settings {unknown}; known: {', '.join(sorted(known))}")
    try:
        return Recipe(**row)
    except RecipeError as err:
        raise RecipeError(f"{path}: family {family!r}: {err}") from None


def as_dict(recipe: Recipe) -> dict:
    """The recipe as a JSON object (for results.json and model cards)."""
    return asdict(recipe)


def main(argv: list[str]) -> int:
    """`python3 swener/recipe.py FILE FAMILY`: the family's Make words on one line."""
    if len(argv) != 2:
        print("usage: python3 swener/recipe.py RECIPE.json FAMILY", file=sys.stderr)
        return 2
    try:
        print(load(argv[0], argv[1]).make_words())
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
