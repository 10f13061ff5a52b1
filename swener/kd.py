"""The knowledge-distillation objective and the teacher-to-student tag mapping.

loss = (1 - alpha) * hard + alpha * T^2 * sum over tokens of KL(teacher_T || student_T),
where p_T = softmax(log p / T). The student log-distribution is either the log-softmax of
its emissions or its CRF log-marginals (`swener.crf.marginals`); the teacher's comes from
the soft-label cache at T = 1, on the teacher's own tag list, mapped by name onto the
student's tag dictionary with `tag_index` and `to_student_tags`.
"""
from __future__ import annotations

from typing import Collection, Sequence, Union

import torch

__all__ = ["STUDENT_ONLY_TAGS", "temper", "kd_loss", "mixed_loss", "tag_index", "to_student_tags"]

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
