"""swener's settings in one place: defaults, the student families, their checks, and the recipe file.

Every default that the command line, the settings dataclasses and the Makefile's documented
`?=` values use is written here once (tests/test_config.py fails when one of them drifts).
This module needs only the standard library: the Makefile runs it with any python3,

    python3 -I swener/config.py families [--quick]   # the default FAMILIES of a profile
    python3 -I swener/config.py RECIPE.json FAMILY   # a family's recipe as Make words

A recipe file (`recipes/default.json`) maps each student family to the KD settings that
`make students` uses for it (`"default"`: the settings of a family it does not list):

    {"families": {"bilstm-crf": {"alpha": 0.5, "alpha_end": null, "temperature": 2,
                                 "kd_target": "marginals", "transfer_text": null,
                                 "transfer_sentences": null}, ...}, "default": {...}}

`alpha_end` anneals alpha linearly from `alpha` (first epoch) to `alpha_end` (last epoch);
null keeps it constant. A relative `transfer_text` is a file of the shared data folder
(`text/almedalen.txt.gz`: SWENER_DATA or ../shared/data), so a recipe works from any directory.
`swener recipe FILE --family F` prints a family's values as Make variables.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    """The local mirror of the shared data (corpora, raw text), if there is one: SWENER_DATA or ../shared/data."""
    env = os.environ.get("SWENER_DATA")
    if env:
        return Path(env)
    for candidate in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


# ----- data -----
DEFAULT_CORPUS = "webbnyheter2012"
EVAL_CORPORA = ("uner-pud", "uner-talbanken")  # out-of-domain test sets every model is scored on

# ----- students: a family is an encoder (swener/students/encoders/<name>.py) with a head -----
ENCODERS: tuple[str, ...] = ("bilstm", "cnn", "window", "idcnn")  # the encoder registry line
HEADS: tuple[str, ...] = ("crf", "softmax")


def family_name(encoder: str, head: str) -> str:
    """"bilstm" + "crf" -> "bilstm-crf"; a softmax head is the encoder's own name."""
    return f"{encoder}-crf" if head == "crf" else encoder


FAMILIES: dict[str, tuple[str, str]] = {family_name(e, h): (e, h) for e in ENCODERS for h in HEADS}
# encoder options a new student gets unless --encoder-option says otherwise (a saved model keeps its own):
# without residual connections the ID-CNN died on 2 of 5 seeds (dev F1 0.0; README, "ID-CNN-CRF seeds 4 and 5")
ENCODER_OPTIONS: dict[str, dict] = {"idcnn": {"residual": True}}
QUICK_FAMILIES: tuple[str, ...] = ("bilstm-crf", "bilstm")  # QUICK=1: a miniature of the full run
STUDENT_EPOCHS = 20  # the headline run; 10 undertrained every family (docs/notebook: the budget study)
RECIPE_SCREEN_EPOCHS = 10  # the epochs at which the KD recipe (recipes/default.json) was chosen on dev
QUICK_STUDENT_EPOCHS = 3
STUDENT_LR = 0.1  # SGD, annealed on plateau
STUDENT_BATCH = 32
STUDENT_BUCKETS = True  # training batches of similar-length sentences (swener.train.buckets)
BUCKET_POOL = 50  # batches per pool sorted by length
STUDENT_HIDDEN = 256  # LSTM units per direction, or channels
SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
QUICK_SEEDS: tuple[int, ...] = (1,)
THREADS = 2  # torch threads for training and the speed measurement
OOV_MODES = ("subword", "zero")  # vectors of words outside the vocabulary
PLAIN_ALPHA = 0.0  # a StudentTagger built without alpha trains on gold labels only
# ----- student inputs besides the fastText vector (issue 37; off unless asked for) -----
CHAR_DIM = 25  # character embedding size of the per-word character CNN (Ma & Hovy 2016: 30)
CHAR_FILTERS = 50  # its filters: the width of a word's character features (Ma & Hovy 2016: 30)
CHAR_WIDTH = 3  # its convolution width
CHAR_MAX_LENGTH = 32  # characters a word keeps (a longer word: its first and last 16)
SUBWORD_DIM: int | None = None  # the teacher's piece vectors reduced by PCA to this many dims (None: kept whole)
SUBWORD_POOLINGS = ("mean", "first")  # a word's subword vector: the mean of its pieces, or its first piece

# ----- knowledge distillation -----
DEFAULT_ALPHA = 0.5
DEFAULT_TEMPERATURE = 1.0  # T 2 was below T 1 for both families screened on dev, in both screens
KD_TARGETS = ("marginals", "emissions", "kbest")
DEFAULT_KD_TARGET = "marginals"
DEFAULT_KBEST = 4  # teacher paths cached per sentence for --kd-target kbest
CRF_ONLY_TARGETS = ("kbest",)
GRADIENT_PROBES = 8  # batches per epoch whose two loss terms' gradient norms are logged
TRANSFER_MAX = 10_000  # transfer-set sentences cached once (students use TRANSFER_SENTENCES of them): the recipe's size
QUICK_TRANSFER_SENTENCES = 2_000  # QUICK=1: a transfer set of this size, cached and used (about 30 s of teacher time)
# transfer sentences per train sentence in an epoch, drawn in turn from the whole transfer set: the gold
# passes stay STUDENT_EPOCHS and a run costs about (1 + ratio) x a plain run whatever the set's size
TRANSFER_RATIO = 1.0
DEFAULT_RECIPE = REPO_ROOT / "recipes" / "default.json"
NONE_WORD = "-"  # a missing value in the Make words

# ----- the teacher -----
BACKBONE = "e5-small-sv"  # e5-small with its vocabulary trimmed to Swedish use (`swener backbone trim`)
TEACHER_EPOCHS = 10  # at most (about 9 min each on 2 quiet cores); the best epoch on dev is kept
QUICK_TEACHER_EPOCHS = 1
QUICK_BACKBONE = "e5-small"  # QUICK=1: the untrimmed backbone (no trimming pass) ...
QUICK_TEACHER_FREEZE = True  # ... with its vocabulary table frozen
TEACHER_PATIENCE = 2  # stop when dev F1 has not improved for this many epochs
TEACHER_LR = 5e-5
QUICK_TEACHER_LR = 2e-4  # QUICK=1: one epoch at 5e-5 left the frozen teacher at dev F1 0.0; 2e-4 gave 0.644
TEACHER_BATCH = 16
TEACHER_DECODINGS = ("bioes", "argmax")
TEACHER_DECODING = "bioes"
TEACHER_SEED = 1
TEACHER_CRF = False  # the paper's teacher has no CRF
TEACHER_FREEZE = False  # with the trimmed vocabulary the table is small enough to train
TEACHER_BUCKETS = True  # length-bucketed batches, as the students (33.5 min instead of 98 for the full teacher)

# ----- the gold curve (issue 36): the KD effect against the number of gold train sentences -----
GOLD_SEED = 36  # the one shuffle of the train split whose first N sentences are the gold subset of size N
GOLD_SIZES: tuple[int, ...] = (250, 500, 1000, 2000, 4000)  # and all of train
# A teacher of N gold sentences trains at least this many updates: its epochs and its patience are both
# multiplied by the smallest factor that reaches it (the all-gold teacher, 388 updates an epoch, is at 0.82
# dev F1 after 1,940). A first guess, NOT chosen on dev yet: choose it on dev at the smallest N (does the
# teacher's dev F1 still rise at its last epoch?) before the study's numbers are trusted.
GOLD_TEACHER_MIN_UPDATES = 2000
# Plain and KD students of the gold curve train the same number of updates (`--updates`): the headline
# run's (20 epochs x 194 batches of 32 on the 6,197 train sentences), so every N has the full run's budget.
GOLD_UPDATES = 3880
# KD students draw this many held-back (unlabelled) sentences per gold sentence in an epoch: the first
# probe's ratio (500 gold, 11 x 500 of the 5,697 held back); the held-back pool caps it at large N.
GOLD_TRANSFER_RATIO = 11.0

# ----- fastText vectors -----
EMB_MODEL = "cbow"
EMB_DIM = 100
EMB_EPOCHS = 5
QUICK_EMB_SAMPLE = "2M"  # QUICK=1 trains on a 2M-token sample of the raw text


class RecipeError(ValueError):
    """A recipe or KD option that cannot be used; the message is one line saying why."""


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """alpha as a float in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise RecipeError(f"{name} must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def check_temperature(temperature: float) -> float:
    """T as a positive float."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise RecipeError(f"temperature must be a positive number, got {temperature!r}")
    return float(temperature)


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
        check_temperature(self.temperature)
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
    """The recipe of `family` in a recipe file (its "default" if it does not list the family)."""
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
    if family in families:
        row, where = families[family], f"family {family!r}"
    elif "default" in data:
        row, where = data["default"], "the default (for families it does not list)"
    else:
        raise RecipeError(f"{path}: no recipe for family {family!r} (it has {', '.join(families) or 'none'}, "
                          'and no "default")')
    known = {f.name for f in fields(Recipe)}
    if not isinstance(row, dict) or set(row) - known:
        unknown = sorted(set(row) - known) if isinstance(row, dict) else row
        raise RecipeError(f"{path}: {where}: unknown settings {unknown}; known: {', '.join(sorted(known))}")
    try:
        recipe = Recipe(**row)
    except RecipeError as err:
        raise RecipeError(f"{path}: {where}: {err}") from None
    text = recipe.transfer_text
    if text is not None and not Path(text).is_absolute():  # a file of the shared data folder
        root = data_root()
        if root is None:
            raise RecipeError(f"{path}: {where}: transfer_text {text!r} is relative to the data folder, and there "
                              "is none: set SWENER_DATA (or put the data in ../shared/data)")
        recipe = replace(recipe, transfer_text=str(root / text))
    return recipe


def as_dict(recipe: Recipe) -> dict:
    """The recipe as a JSON object (for results.json and model cards)."""
    return asdict(recipe)


USAGE = "usage: python3 swener/config.py families [--quick] | python3 swener/config.py RECIPE.json FAMILY"


def main(argv: list[str]) -> int:
    """`families [--quick]`: the profile's default families; `FILE FAMILY`: the family's Make words on one line."""
    if argv[:1] == ["families"] and argv[1:] in ([], ["--quick"]):
        print(" ".join(QUICK_FAMILIES if argv[1:] else FAMILIES))
        return 0
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        print(load(argv[0], argv[1]).make_words())
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
