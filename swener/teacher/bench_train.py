"""The teacher's fine-tuning in float32 against bf16 autocast, in one process (`swener teacher bench-train`).

Each precision trains the same teacher (same seed, data and schedule) through `train_teacher`;
a plugin times the training part of each epoch (without the dev evaluation), and the best dev
F1 comes from the run's learning curve. Never asserted in tests: the figures need quiet cores.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from swener import config
from swener.atomic import write_json
from swener.teacher.run import TeacherSettings, train_teacher

VARIANTS = {"float32": False, "bf16": True}


def _epoch_timer():
    """A Flair trainer plugin recording the seconds of each epoch's training pass (dev evaluation excluded)."""
    from flair.trainers.plugins.base import TrainerPlugin

    class EpochTimer(TrainerPlugin):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.started = 0.0

        @TrainerPlugin.hook
        def before_training_epoch(self, **kw: object) -> None:
            self.started = time.perf_counter()

        @TrainerPlugin.hook
        def after_training_epoch(self, **kw: object) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    return EpochTimer()


def precision_bench(corpus_name: str, backbone: str, out: Path, gold: int | None = None, epochs: int = 1,
                    learning_rate: float = config.TEACHER_LR, batch_size: int = config.TEACHER_BATCH,
                    max_sentences: int | None = None, work: Path | None = None,
                    freeze_word_embeddings: bool = config.TEACHER_FREEZE) -> dict:
    """Train the teacher once per precision; write and return seconds per epoch and best dev F1 of each."""
    import torch

    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="swener-bench-train-"))
    rows = {}
    try:
        for name, bf16 in VARIANTS.items():
            timer = _epoch_timer()
            settings = TeacherSettings(backbone=backbone, epochs=epochs, patience=epochs + 1,
                                       learning_rate=learning_rate, batch_size=batch_size, use_amp=bf16, gold=gold,
                                       freeze_word_embeddings=freeze_word_embeddings)
            best = train_teacher(corpus_name, settings, folder / name, max_sentences, plugins=[timer])
            curve = json.loads((best.parent / "learning_curve.json").read_text())
            training = json.loads((best.parent / "training.json").read_text())
            rows[name] = {"epoch_train_seconds": timer.seconds,
                          "train_seconds_per_epoch": sum(timer.seconds) / max(len(timer.seconds), 1),
                          "epoch_seconds_with_dev": [e["seconds"] for e in curve],
                          "dev_f1_per_epoch": [e["dev_f1"] for e in curve],
                          "dev_f1": max(e["dev_f1"] or 0.0 for e in curve),
                          "updates_per_epoch": training.get("updates_per_epoch"),
                          "train_sentences": training.get("train_sentences")}
    finally:
        if work is None:
            shutil.rmtree(folder, ignore_errors=True)
    fp32, bf16 = rows["float32"], rows["bf16"]
    result = {"corpus": corpus_name, "backbone": backbone, "gold": gold, "epochs": epochs,
              "freeze_word_embeddings": freeze_word_embeddings,
              "learning_rate": learning_rate, "batch_size": batch_size, "max_sentences": max_sentences,
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "variants": rows,
              "bf16_speedup": fp32["train_seconds_per_epoch"] / bf16["train_seconds_per_epoch"]
              if bf16["train_seconds_per_epoch"] else None,
              "dev_f1_difference_points": 100 * (bf16["dev_f1"] - fp32["dev_f1"]),
              "note": "float32 first, then bf16, in this one process; the issue's rule: use bf16 for the gold-curve "
                      "teachers if dev F1 stays within 0.5 points"}
    write_json(out, result)
    return result
