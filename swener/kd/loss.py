"""The knowledge-distillation objective and the teacher-to-student tag mapping.

A student's loss on a batch is a mix of two per-token means (`LossTerms`):

    loss = (1 - alpha) * hard_mean + alpha * kd_mean
    hard_mean = sum of the hard losses / number of gold-labelled tokens (each weighted by its
                sentence's hard weight; a CRF sentence's NLL counts for its tokens)
    kd_mean   = sum of the KD terms / number of tokens with teacher distributions, where the
                KD term of a token is T^2 * KL(teacher_T || student_T), p_T = softmax(log p / T),
                or, for `kbest`, a sentence's weighted path NLL over the teacher's k best paths

so alpha sets the two terms' shares whatever the batch holds (a transfer sentence has hard
weight 0 and counts only in kd_mean). Flair's trainer back-propagates the loss it is handed
and clips the gradient norm at 5, so the loss handed over is that mix times the batch's
token count: at alpha 0 it is exactly the summed hard loss of plain training, and clipping
rescales the sum of both gradients, never their shares.

The student log-distribution is either the log-softmax of its emissions or its CRF
log-marginals (`swener.kd.crf.marginals`); the teacher's comes from the soft-label cache at
T = 1, on the teacher's own tag list, mapped by name onto the student's tag dictionary with
`tag_index` and `to_student_tags`. The KD defaults live in `swener.config`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Optional, Sequence, Union

import torch

from swener.config import (  # noqa: F401
    CRF_ONLY_TARGETS,
    DEFAULT_ALPHA,
    DEFAULT_KBEST,
    DEFAULT_KD_TARGET,
    DEFAULT_TEMPERATURE,
    KD_TARGETS,
)
from swener.kd.crf_loss import log_partition as crf_log_partition  # noqa: F401
from swener.kd.crf_loss import path_scores  # noqa: F401

__all__ = ["STUDENT_ONLY_TAGS", "KD_TARGETS", "DEFAULT_ALPHA", "DEFAULT_TEMPERATURE", "DEFAULT_KD_TARGET",
           "DEFAULT_KBEST", "LossTerms", "temper", "kd_loss", "mixed_loss", "crf_log_partition", "path_scores",
           "kbest_nll", "tag_index", "to_student_tags"]

# Tags a student dictionary may have that a teacher's tag list need not.
STUDENT_ONLY_TAGS: tuple[str, ...] = ("<START>", "<STOP>", "<unk>", "O")


def temper(logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logp / T) over the last dimension; -inf entries (probability 0) stay -inf."""
    _check_temperature(temperature)
    return torch.log_softmax(logp / temperature, dim=-1)


def kd_loss(
    student_logp: torch.Tensor,
    teacher_logp: torch.Tensor,
    temperature: float,
    mask: torch.Tensor,
) -> torch.Tensor:
    """T^2 * sum over tokens where `mask` is True of KL(teacher_T || student_T): a scalar.

    Both inputs are log-distributions [B, T, K] over the student's tag dictionary (the
    teacher already mapped with `to_student_tags`). Teacher entries of -inf count as
    probability 0 and add nothing. Rows where `mask` is False ([B, T], True for real
    tokens) are never read, so padding may hold anything (even NaN) and gets zero gradient.
    """
    if student_logp.dim() != 3:
        raise ValueError(f"student_logp must have dimension of 3, got {student_logp.dim()}")
    if teacher_logp.shape != student_logp.shape:
        raise ValueError(
            f"expected teacher_logp of shape {tuple(student_logp.shape)} (the student's), "
            f"got {tuple(teacher_logp.shape)}"
        )
    if mask.shape != student_logp.shape[:2]:
        raise ValueError(f"expected mask of shape {tuple(student_logp.shape[:2])}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    _check_temperature(temperature)

    rows = mask.unsqueeze(2)
    student = temper(torch.where(rows, student_logp, torch.zeros_like(student_logp)), temperature)
    teacher = temper(torch.where(rows, teacher_logp, torch.zeros_like(teacher_logp)), temperature)
    present = rows & (teacher > float("-inf"))
    # where the teacher has probability 0 the term is 0: keep -inf out of the arithmetic
    teacher_finite = torch.where(present, teacher, torch.zeros_like(teacher))
    terms = torch.where(present, teacher_finite.exp() * (teacher_finite - student), torch.zeros_like(student))
    return temperature**2 * terms.sum()


def mixed_loss(hard: torch.Tensor, soft: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - alpha) * hard + alpha * soft; alpha = 0 returns `hard` itself, alpha = 1 returns `soft` itself."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 0.0:
        return hard
    if alpha == 1.0:
        return soft
    return (1.0 - alpha) * hard + alpha * soft


@dataclass
class LossTerms:
    """The two terms of a batch's loss as sums with their token counts; `loss(alpha)` mixes their means.

    `hard_tokens` is the number of gold-labelled tokens weighted by their sentences' hard
    weights, `soft_tokens` the number of tokens with teacher distributions, `scale` the
    batch's token count (what Flair divides the reported loss by).
    """

    hard_sum: torch.Tensor
    hard_tokens: float
    soft_sum: Optional[torch.Tensor]
    soft_tokens: int
    scale: int

    def weights(self, alpha: float) -> tuple[float, float]:
        """The factors of hard_sum and soft_sum: (1 - alpha) * scale / hard_tokens and alpha * scale / soft_tokens.

        A term without tokens (or with a zero share) gets factor 0 and is left out.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        hard = (1.0 - alpha) * self.scale / self.hard_tokens if self.hard_tokens > 0 and alpha < 1.0 else 0.0
        soft = alpha * self.scale / self.soft_tokens if self.soft_tokens > 0 and alpha > 0.0 else 0.0
        if soft and self.soft_sum is None:
            raise ValueError("alpha > 0 needs the KD term: compute the loss terms with the teacher's distributions")
        return hard, soft

    def parts(self, alpha: float) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """The weighted hard and KD contributions to the loss (None where a term is left out)."""
        hard, soft = self.weights(alpha)
        return (hard * self.hard_sum if hard else None), (soft * self.soft_sum if soft else None)

    def loss(self, alpha: float) -> torch.Tensor:
        """scale * ((1 - alpha) * hard_mean + alpha * kd_mean); at alpha 0 without transfer sentences: hard_sum."""
        hard, soft = self.parts(alpha)
        if hard is None and soft is None:
            return self.hard_sum * 0.0
        if soft is None:
            return hard
        return soft if hard is None else hard + soft

    def means(self) -> tuple[float, float]:
        """(hard_mean, kd_mean) as numbers (nan where a term has no tokens), for logging."""
        hard = float(self.hard_sum.detach()) / self.hard_tokens if self.hard_tokens > 0 else float("nan")
        soft = (float(self.soft_sum.detach()) / self.soft_tokens
                if self.soft_sum is not None and self.soft_tokens > 0 else float("nan"))
        return hard, soft


def kbest_nll(emissions: torch.Tensor, lengths: torch.Tensor, paths: torch.Tensor, log_weights: torch.Tensor,
              transitions: torch.Tensor, start: int, stop: int, log_z: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Weighted path NLL [B]: -sum_j w_j log p_student(path_j | x) = log Z - sum_j w_j score(path_j).

    `paths` [B, k, T] are the teacher's k best paths on the student's tag indices,
    `log_weights` [B, k] their log-weights (each row a log-distribution; -inf marks a missing
    path, which adds nothing). `log_z`: the batch's `crf_log_partition`, when the caller has it
    already (the hard CRF loss of the same emissions shares it).
    """
    if paths.dim() != 3 or paths.shape[0] != emissions.shape[0] or paths.shape[2] != emissions.shape[1]:
        raise ValueError(f"expected paths [B, k, T] for emissions {tuple(emissions.shape)}, got {tuple(paths.shape)}")
    if log_weights.shape != paths.shape[:2]:
        raise ValueError(f"expected log_weights of shape {tuple(paths.shape[:2])}, got {tuple(log_weights.shape)}")
    weights = torch.where(log_weights > float("-inf"), log_weights.exp(), torch.zeros_like(log_weights))
    scores = path_scores(emissions, lengths, paths, transitions, start, stop)
    weighted = torch.where(weights > 0, weights * scores, torch.zeros_like(scores)).sum(dim=1)
    if log_z is None:
        log_z = crf_log_partition(emissions, lengths, transitions, start, stop)
    return log_z * weights.sum(dim=1) - weighted


def tag_index(
    teacher_tags: Sequence[str],
    student_tags: Sequence[str],
    student_only: Collection[str] = STUDENT_ONLY_TAGS,
) -> torch.Tensor:
    """For each student tag the position of the same-named teacher tag, or -1: a LongTensor [K_student].

    Every teacher tag must be in the student's dictionary (else the teacher's mass would be
    lost). A student tag missing from the teacher must be one of `student_only`, so that a
    mismatch of tag schemes (BIO against BIOES, another entity set) is an error, not a
    silent zero.
    """
    for name, tags in (("teacher_tags", teacher_tags), ("student_tags", student_tags)):
        duplicates = sorted({tag for tag in tags if list(tags).count(tag) > 1})
        if duplicates:
            raise ValueError(f"{name} has duplicate tags: {duplicates}")
    missing = [tag for tag in teacher_tags if tag not in set(student_tags)]
    if missing:
        raise ValueError(f"teacher tags {missing} are not in the student's tag dictionary {list(student_tags)}")
    position = {tag: i for i, tag in enumerate(teacher_tags)}
    unexpected = [tag for tag in student_tags if tag not in position and tag not in student_only]
    if unexpected:
        raise ValueError(
            f"student tags {unexpected} are not in the teacher's tags {list(teacher_tags)} "
            f"and not among the student-only tags {sorted(student_only)}"
        )
    return torch.tensor([position.get(tag, -1) for tag in student_tags], dtype=torch.long)


def to_student_tags(teacher_logp: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Reorders teacher log-probs [..., K_teacher] onto the student's tags [..., K_student]; -1 gives -inf."""
    if index.dim() != 1:
        raise ValueError(f"index must have dimension of 1, got {index.dim()}")
    num_teacher = teacher_logp.size(-1) if teacher_logp.dim() else 0
    if index.numel() and int(index.max()) >= num_teacher:
        raise ValueError(
            f"index refers to teacher tag {int(index.max())}, but teacher_logp has only {num_teacher} tags"
        )
    index = index.to(teacher_logp.device)
    gathered = teacher_logp.index_select(-1, index.clamp(min=0))
    return torch.where(index >= 0, gathered, torch.full_like(gathered, float("-inf")))


def _check_temperature(temperature: Union[float, int]) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
