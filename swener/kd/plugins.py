"""Flair trainer plugins of a KD student: teacher annealing and the gradient norms of the two loss terms.

`AlphaSchedule` sets the student's alpha before each epoch, linearly from a start value
(epoch 1) to an end value (the last epoch), as in teacher annealing (Clark et al. 2019).
`GradientNorms` measures, on `probes` evenly spaced batches of each epoch, the gradient
norms of the two weighted terms of the loss as handed to Flair (so before Flair clips the
sum at `max_grad_norm`), their ratio and the norm of their sum. It measures on its own
forward pass under a forked random state (the same dropout masks as the training step, and
training's random stream left as it was) and never touches `.grad`, so a run with the
probes trains exactly as one without; it plots the norms per epoch to `gradient_norms.png`
in the training folder. Both plugins give `training_record()`, which `swener.train.fit.fit` adds
to the run's training.json.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from flair.trainers.plugins.base import TrainerPlugin

from swener.config import GRADIENT_PROBES, alpha_at

if TYPE_CHECKING:
    from flair.models import SequenceTagger  # a swener.students.tagger.StudentTagger


MAX_GRAD_NORM = 5.0  # Flair's ModelTrainer default, which swener's fit keeps


class AlphaSchedule(TrainerPlugin):
    """alpha moves linearly from `start` (epoch 1) to `end` (epoch `epochs`)."""

    def __init__(self, start: float, end: float, epochs: int) -> None:
        super().__init__()
        self.start, self.end, self.epochs = start, end, epochs
        self.history: list[dict[str, float]] = []

    @TrainerPlugin.hook
    def before_training_epoch(self, epoch: int, **kw: Any) -> None:
        self.model.alpha = alpha_at(self.start, self.end, epoch, self.epochs)
        self.history.append({"epoch": epoch, "alpha": self.model.alpha})

    def training_record(self) -> dict:
        return {"alpha_schedule": {"start": self.start, "end": self.end, "epochs": self.epochs,
                                   "per_epoch": self.history}}


def term_gradient_norms(model: SequenceTagger, batch: list, alpha: float,
                        max_grad_norm: float = MAX_GRAD_NORM) -> dict[str, float]:
    """Gradient norms of one batch's weighted hard and KD terms and of their sum, and whether it is clipped."""
    with torch.random.fork_rng(devices=[]):
        terms = model.loss_terms(batch, soft=model.teacher_tags is not None)
    hard, soft = terms.parts(alpha)
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(term: torch.Tensor | None) -> list[torch.Tensor]:
        if term is None or not term.requires_grad:
            return [torch.zeros_like(p) for p in params]
        found = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found)]

    def norm(gs: list[torch.Tensor]) -> float:
        return math.sqrt(sum(float(g.double().pow(2).sum()) for g in gs))

    hard_grads, soft_grads = grads(hard), grads(soft)
    total = norm([a + b for a, b in zip(hard_grads, soft_grads)])
    hard_mean, kd_mean = terms.means()
    return {"hard": norm(hard_grads), "kd": norm(soft_grads), "total": total,
            "clipped": float(total > max_grad_norm), "hard_mean": hard_mean, "kd_mean": kd_mean}


class GradientNorms(TrainerPlugin):
    """Per epoch: mean gradient norms of the weighted hard and KD terms over `probes` batches, and their ratio."""

    def __init__(self, probes: int = GRADIENT_PROBES, max_grad_norm: float = MAX_GRAD_NORM) -> None:
        super().__init__()
        if probes < 1:
            raise ValueError(f"probes must be at least 1, got {probes}")
        self.probes, self.max_grad_norm = probes, max_grad_norm
        self.epochs: list[dict[str, float]] = []
        self._rows: list[dict[str, float]] = []
        self.base_path: Path | None = None

    @TrainerPlugin.hook
    def after_setup(self, base_path: str | Path, **kw: Any) -> None:
        self.base_path = Path(base_path)

    @TrainerPlugin.hook
    def before_training_epoch(self, epoch: int, **kw: Any) -> None:
        self._rows = []

    @TrainerPlugin.hook
    def before_training_batch(self, batch_no: int, batch: list, total_number_of_batches: int, **kw: Any) -> None:
        every = max(1, total_number_of_batches // self.probes)
        if batch_no % every == 0 and len(self._rows) < self.probes:
            self._rows.append(term_gradient_norms(self.model, list(batch), self.model.alpha, self.max_grad_norm))

    @TrainerPlugin.hook
    def after_training_epoch(self, epoch: int, **kw: Any) -> None:
        if not self._rows:
            return
        row = {key: _mean([r[key] for r in self._rows]) for key in self._rows[0]}
        ratios = [r["kd"] / r["hard"] for r in self._rows if r["hard"] > 0]
        self.epochs.append({"epoch": epoch, "alpha": float(self.model.alpha), "batches": len(self._rows),
                            "hard_grad_norm": row["hard"], "kd_grad_norm": row["kd"],
                            "kd_to_hard": _mean(ratios), "total_grad_norm": row["total"],
                            "clipped_share": row["clipped"], "hard_mean": row["hard_mean"],
                            "kd_mean": row["kd_mean"]})

    @TrainerPlugin.hook
    def after_training(self, **kw: Any) -> None:
        if self.base_path is not None and self.epochs:
            plot_norms(self.epochs, self.base_path / "gradient_norms.png")

    def training_record(self) -> dict:
        return {"gradient_norms": {"probes_per_epoch": self.probes, "max_grad_norm": self.max_grad_norm,
                                   "per_epoch": self.epochs}}


def _mean(values: list[float]) -> float | None:
    """The mean of the finite values, or None."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def plot_norms(epochs: list[dict], out: Path) -> None:
    """The two weighted terms' gradient norms per epoch (log scale), Flair's clipping norm, and alpha."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [e["epoch"] for e in epochs]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for key, label in (("hard_grad_norm", "(1 - alpha) x hard"), ("kd_grad_norm", "alpha x KD"),
                       ("total_grad_norm", "sum")):
        ys = [e[key] if e[key] else float("nan") for e in epochs]
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(MAX_GRAD_NORM, color="grey", linestyle="--", linewidth=1, label=f"clipped above {MAX_GRAD_NORM:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient norm (as handed to Flair)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(xs, [e["alpha"] for e in epochs], color="black", linewidth=0.8, linestyle=":")
    twin.set_ylabel("alpha (dotted)")
    twin.set_ylim(0, 1)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
