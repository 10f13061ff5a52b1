"""Saved Flair models: written atomically, read back with one clear error for a file that is not a tagger.

Flair finds a saved model's class by its name among the loaded subclasses of its Classifier, so
the caller imports the modules of the classes it expects first (`swener.serve.names.load_tagger`
imports all of swener's; the teacher's runs import `swener.teacher.model`).
"""
from __future__ import annotations

import contextlib
import io
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from swener.atomic import atomic_path
from swener.errors import SwenerError

if TYPE_CHECKING:
    import flair
    from flair.models import SequenceTagger


def save_atomic(model: flair.nn.Model, path: Path) -> None:
    """Save a flair model so that `path` is either the old file or the complete new one."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_flair(path: Path) -> SequenceTagger:
    """A flair SequenceTagger from a file (or a folder with best-model.pt), in eval mode."""
    path = Path(path)
    if path.is_dir() and (path / "best-model.pt").is_file():
        path = path / "best-model.pt"
    if not path.is_file():
        raise SwenerError(f"{path}: no such model file; give the path of a trained tagger (.pt)")
    if not zipfile.is_zipfile(path):
        raise SwenerError(f"{path}: not a tagger (a torch model file is expected); check the path")
    import flair
    from flair.models import SequenceTagger

    flair_log = logging.getLogger("flair")
    level = flair_log.level
    flair_log.setLevel(logging.CRITICAL)  # on a foreign file flair logs and prints each class it tried
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            tagger = flair.nn.Classifier.load(path)
    except Exception as err:  # flair raises many kinds on a file that is not one of its models
        raise SwenerError(f"{path}: not a flair tagger ({type(err).__name__}: {err})") from None
    finally:
        flair_log.setLevel(level)
    if not isinstance(tagger, SequenceTagger):
        raise SwenerError(f"{path}: a flair model ({type(tagger).__name__}), but not a sequence tagger")
    tagger.eval()
    return tagger
