"""Epochs chosen on dev: a Flair trainer plugin that records dev F1 after each epoch and stops early.

The curve goes to `learning_curve.json` (and `learning_curve.png` at the end) in the
training folder, so it travels with the model.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from flair.trainers.plugins.base import TrainerPlugin, TrainingInterrupt

log = logging.getLogger("swener")


class DevCurve(TrainerPlugin):
    """Keeps dev F1 (and loss, seconds) per epoch; stops when dev F1 has not improved for `patience` epochs."""

    def __init__(self, patience: int | None = None) -> None:
        super().__init__()
        self.patience = patience
        self.epochs: list[dict] = []
        self.base_path: Path | None = None
        self.started = time.perf_counter()

    @TrainerPlugin.hook
    def after_setup(self, base_path: str | Path, **kw: object) -> None:
        self.base_path = Path(base_path)

    @TrainerPlugin.hook
    def before_training_epoch(self, epoch: int, **kw: object) -> None:
        self.started = time.perf_counter()

    @TrainerPlugin.hook
    def after_evaluation(self, epoch: int, current_model_is_best: bool, validation_scores: tuple,
                         **kw: object) -> None:
        f1, loss = (list(validation_scores) + [None, None])[:2]
        self.epochs.append({"epoch": epoch, "dev_f1": f1, "dev_loss": float(loss) if loss is not None else None,
                            "best": bool(current_model_is_best), "seconds": time.perf_counter() - self.started})
        self.write()
        best = max(range(len(self.epochs)), key=lambda i: self.epochs[i]["dev_f1"] or 0.0)
        if self.patience is not None and len(self.epochs) - 1 - best >= self.patience:
            raise TrainingInterrupt(f"dev F1 has not improved for {self.patience} epochs: stopping "
                                    f"(best {self.epochs[best]['dev_f1']:.4f} after epoch {best + 1})")

    @TrainerPlugin.hook
    def after_training(self, **kw) -> None:
        self.write()
        if self.base_path is not None and self.epochs:
            plot_curve(self.epochs, self.base_path / "learning_curve.png")

    def write(self) -> None:
        if self.base_path is not None:
            (self.base_path / "learning_curve.json").write_text(json.dumps(self.epochs, indent=2))


def plot_curve(epochs: list[dict], out: Path) -> None:
    """Dev F1 against epoch, the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [e["epoch"] for e in epochs]
    ys = [e["dev_f1"] for e in epochs]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(xs, ys, marker="o")
    best = max(range(len(ys)), key=lambda i: ys[i])
    ax.scatter([xs[best]], [ys[best]], s=90, facecolors="none", edgecolors="red", label=f"best {ys[best]:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("dev micro F1")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
