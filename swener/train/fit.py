"""One training entry point for the teacher and the students (Flair's ModelTrainer).

Training runs in `<out>.partial/`, and so does whatever `finish` adds (a student's scores
and results.json); only then is the run swapped in: `<out>` -> `<out>.old`, `<out>.partial`
-> `<out>`, `<out>.old` removed. A run killed at any point leaves at `<out>` either the old
complete run or the new complete one (or, killed between the two renames, nothing at `<out>`
and the old run at `<out>.old`, which the next `fit` or `recover` puts back). Flair keeps the
best model on dev F1 and a checkpoint after each epoch inside the partial folder.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from swener import config

if TYPE_CHECKING:
    import flair
    from flair.data import Corpus

log = logging.getLogger("swener")


@dataclass
class TrainSettings:
    """How a model is trained; the defaults are the students' (SGD with annealing)."""

    epochs: int = config.STUDENT_EPOCHS
    learning_rate: float = config.STUDENT_LR
    batch_size: int = config.STUDENT_BATCH
    fine_tune: bool = False  # AdamW with linear warm-up (transformers), else SGD + anneal on plateau
    seed: int = 1
    max_sentences: int | None = None  # a slice of each split, for quick runs
    threads: int = config.THREADS
    use_amp: bool = False  # bf16 autocast on the CPU (fine-tuning only)
    fused_adamw: bool = True  # one fused AdamW kernel over all parameters (fine-tuning only)
    length_buckets: bool = False  # batches of similar-length sentences (`swener.train.buckets`)
    # a transfer set appended to train: how many train sentences come first, and how many transfer
    # sentences each epoch takes (None: all of them, every epoch); needs length_buckets
    labelled: int | None = None
    transfer_per_epoch: int | None = None


def partial_dir(out_dir: Path) -> Path:
    """Where a run of `out_dir` is trained and scored before it is swapped in."""
    return out_dir.with_name(out_dir.name + ".partial")


def old_dir(out_dir: Path) -> Path:
    """Where the previous run of `out_dir` waits while the new one is swapped in."""
    return out_dir.with_name(out_dir.name + ".old")


def recover(out_dir: Path) -> None:
    """Finish an interrupted swap: put the old run back if `out_dir` is missing, else drop the old one."""
    old = old_dir(out_dir)
    if not old.exists():
        return
    if out_dir.exists():
        shutil.rmtree(old)
    else:
        old.rename(out_dir)
        log.info("restored %s from an interrupted run", out_dir)


def swap_in(partial: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the complete run in `partial` (the old run removed only after the swap)."""
    recover(out_dir)
    old = old_dir(out_dir)
    if out_dir.exists():
        out_dir.rename(old)
    partial.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def fit(model: flair.nn.Model, corpus: Corpus, out_dir: Path, settings: TrainSettings, plugins: list | None = None,
        finish: Callable[[Path], None] | None = None) -> Path:
    """Train `model` on a flair Corpus (train and dev) and return the path of the best model on dev.

    Plugins with a `training_record()` method add its keys to the run's training.json.
    `finish(partial_folder)` runs after training, before the swap (e.g. scores the model and
    writes results.json there); a run that fails or is killed before the swap leaves the
    previous run at `out_dir` untouched.
    """
    import flair
    import torch
    from flair.data import Corpus
    from flair.trainers import ModelTrainer

    from swener.train.buckets import LengthBuckets

    out_dir = Path(out_dir)
    recover(out_dir)
    torch.set_num_threads(settings.threads)
    flair.set_seed(settings.seed)
    # the test split stays out of training: Flair would score it at the end
    corpus = Corpus(train=corpus.train, dev=corpus.dev, test=None, name=corpus.name, sample_missing_splits=False)
    partial = partial_dir(out_dir)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    trainer = ModelTrainer(model, corpus)
    common = dict(base_path=partial, learning_rate=settings.learning_rate, mini_batch_size=settings.batch_size,
                  max_epochs=settings.epochs, save_model_each_k_epochs=1, create_file_logs=True,
                  plugins=plugins or [], main_evaluation_metric=("micro avg", "f1-score"))
    if settings.transfer_per_epoch is not None and not settings.length_buckets:
        raise ValueError("transfer_per_epoch needs length_buckets (the sampler draws the transfer sentences)")
    sampler = {"sampler": LengthBuckets(settings.batch_size, seed=settings.seed, labelled=settings.labelled,
                                        per_epoch=settings.transfer_per_epoch)} if settings.length_buckets else {}
    started = time.perf_counter()
    if settings.fine_tune:
        trainer.fine_tune(**common, use_final_model_for_eval=False, embeddings_storage_mode="none", **sampler,
                          use_amp=settings.use_amp, **({"fused": True} if settings.fused_adamw else {}))
    else:
        trainer.train(**common, embeddings_storage_mode="cpu", **sampler)
    seconds = time.perf_counter() - started
    seen = len(sampler["sampler"]) if sampler else len(corpus.train)  # sentences per epoch
    updates = -(-seen // settings.batch_size)  # pools are whole batches: only the last batch may be short
    _keep_best(partial)
    records = {key: value for plugin in plugins or [] if hasattr(plugin, "training_record")
               for key, value in plugin.training_record().items()}  # e.g. the KD plugins' per-epoch records
    (partial / "training.json").write_text(json.dumps(
        {**asdict(settings), "train_seconds": seconds, "epoch_seconds": seconds / max(settings.epochs, 1),
         "updates_per_epoch": updates,
         "train_sentences": len(corpus.train), "dev_sentences": len(corpus.dev or []), **records}, indent=2))
    if finish is not None:
        finish(partial)
    swap_in(partial, out_dir)
    return out_dir / "best-model.pt"


def _keep_best(partial: Path) -> None:
    """Drop the epoch checkpoints and keep one model, `best-model.pt` (the final one if none was best)."""
    for checkpoint in partial.glob("model_epoch_*.pt"):
        checkpoint.unlink()
    best = partial / "best-model.pt"
    if not best.exists():
        (partial / "final-model.pt").rename(best)
    (partial / "final-model.pt").unlink(missing_ok=True)
