"""One training entry point for the teacher and the students (Flair's ModelTrainer).

Training runs in `<out>.partial/`; only a finished run is renamed to `<out>/`, so a stopped
run never leaves something that looks done. Flair keeps the best model on dev F1 and a
checkpoint after each epoch inside the partial folder.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("swener")


@dataclass
class TrainSettings:
    """How a model is trained; the defaults are the students' (SGD with annealing)."""

    epochs: int = 15
    learning_rate: float = 0.1
    batch_size: int = 32
    fine_tune: bool = False  # AdamW with linear warm-up (transformers), else SGD + anneal on plateau
    seed: int = 1
    max_sentences: int | None = None  # a slice of each split, for quick runs
    threads: int = 2


def fit(model, corpus, out_dir: Path, settings: TrainSettings, plugins: list | None = None) -> Path:
    """Train `model` on a flair Corpus (train and dev) and return the path of the best model on dev."""
    import flair
    import torch
    from flair.data import Corpus
    from flair.trainers import ModelTrainer

    torch.set_num_threads(settings.threads)
    flair.set_seed(settings.seed)
    # the test split stays out of training: Flair would score it at the end
    corpus = Corpus(train=corpus.train, dev=corpus.dev, test=None, name=corpus.name, sample_missing_splits=False)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    trainer = ModelTrainer(model, corpus)
    common = dict(base_path=partial, learning_rate=settings.learning_rate, mini_batch_size=settings.batch_size,
                  max_epochs=settings.epochs, save_model_each_k_epochs=1, create_file_logs=True,
                  plugins=plugins or [], main_evaluation_metric=("micro avg", "f1-score"))
    started = time.perf_counter()
    if settings.fine_tune:
        trainer.fine_tune(**common, use_final_model_for_eval=False, embeddings_storage_mode="none")
    else:
        trainer.train(**common, embeddings_storage_mode="cpu")
    seconds = time.perf_counter() - started
    for checkpoint in partial.glob("model_epoch_*.pt"):
        checkpoint.unlink()
    best = partial / "best-model.pt"
    if not best.exists():
        (partial / "final-model.pt").rename(best)
    (partial / "final-model.pt").unlink(missing_ok=True)
    (partial / "training.json").write_text(json.dumps(
        {**asdict(settings), "train_seconds": seconds, "epoch_seconds": seconds / max(settings.epochs, 1),
         "train_sentences": len(corpus.train), "dev_sentences": len(corpus.dev or [])}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return out_dir / "best-model.pt"
