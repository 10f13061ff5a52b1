"""Finding and loading trained taggers by path (and, later, by short name)."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from swener.errors import SwenerError

log = logging.getLogger("swener")


def load_tagger(model: str):
    """Load a flair tagger from a .pt file; a missing or non-tagger file is a clear SwenerError."""
    path = Path(model)
    if path.is_dir() and (path / "best-model.pt").is_file():
        path = path / "best-model.pt"
    if not path.is_file():
        raise SwenerError(f"{model}: no such model file; give the path of a trained tagger (.pt)")
    if not zipfile.is_zipfile(path):
        raise SwenerError(f"{path}: not a tagger (a torch model file is expected); check the path")
    import flair

    import swener.registry  # noqa: F401  (registers swener's Flair classes)

    try:
        tagger = flair.nn.Classifier.load(path)
    except Exception as err:  # flair raises many kinds on a file that is not one of its models
        raise SwenerError(f"{path}: not a flair tagger ({type(err).__name__}: {err})") from None
    if not hasattr(tagger, "label_dictionary") or not hasattr(tagger, "predict"):
        raise SwenerError(f"{path}: a flair model, but not a sequence tagger")
    tagger.eval()
    return tagger
