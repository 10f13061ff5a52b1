"""The KD loss on the CRF-marginal and softmax paths, the hard/soft mix, and tag mapping by name."""
from __future__ import annotations

import math

import pytest
import torch

from swener.kd import crf
from swener.kd import loss as kd

# 3 real tags + <START> + <STOP>
NUM_TAGS, START, STOP = 5, 3, 4
LENGTHS = [3, 1, 2]


def student_case(seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), NUM_TAGS, generator=gen, dtype=dtype)
    transitions = torch.randn(NUM_TAGS, NUM_TAGS, generator=gen, dtype=dtype)
    transitions[START, :] = -10000
    transitions[:, STOP] = -10000
    return emissions, transitions


def mask() -> torch.Tensor:
    return torch.arange(max(LENGTHS)) < torch.tensor(LENGTHS)[:, None]


def crf_student(emissions: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
    return crf.marginals(crf.features_from_scores(emissions, transitions), LENGTHS, START, STOP)


def random_teacher(seed: int, dtype=torch.float64) -> torch.Tensor:
    """A teacher log-distribution with probability 0 on START and STOP, as mapped from a cache."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(LENGTHS), max(LENGTHS), NUM_TAGS, generator=gen, dtype=dtype)
    logits[..., [START, STOP]] = float("-inf")
    return torch.log_softmax(logits, -1)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_kd_zero_exactly_when_teacher_equals_crf_marginals(temperature):
    emissions, transitions = student_case(1)
    student = crf_student(emissions, transitions)
    loss = kd.kd_loss(student, student.detach().clone(), temperature, mask())
    assert loss.item() == 0.0


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kd_positive_when_teacher_differs(temperature):
    emissions, transitions = student_case(1)
    student = crf_student(emissions, transitions)
    teacher = student.detach().clone()
    teacher[0, 1] = torch.log_softmax(teacher[0, 1] + torch.tensor([1.0, 0, 0, 0, 0], dtype=teacher.dtype), -1)
    assert kd.kd_loss(student, teacher, temperature, mask()) > 0
    assert kd.kd_loss(student, random_teacher(2), temperature, mask()) > 0


def test_kd_value_is_t_squared_kl_of_tempered_distributions():
    emissions, transitions = student_case(3)
    student, teacher, temperature = crf_student(emissions, transitions), random_teacher(4), 2.0
    expected = 0.0
    for b, length in enumerate(LENGTHS):
        for t in range(length):
            p = torch.softmax(teacher[b, t] / temperature, -1)
            q = torch.softmax(student[b, t] / temperature, -1)
            expected += sum(p[k] * math.log(p[k] / q[k]) for k in range(NUM_TAGS) if p[k] > 0)
    loss = kd.kd_loss(student, teacher, temperature, mask())
    assert math.isclose(loss.item(), temperature**2 * float(expected), rel_tol=1e-12)


def test_kd_softmax_path_tempers_the_emissions():
    emissions, _ = student_case(5)
    teacher, temperature = random_teacher(6), 3.0
    via_logp = kd.kd_loss(torch.log_softmax(emissions, -1), teacher, temperature, mask())
    p = kd.temper(teacher, temperature).exp()
    log_q = torch.log_softmax(emissions / temperature, -1)
    terms = torch.where(p > 0, p * (kd.temper(teacher, temperature) - log_q), torch.zeros_like(p))
    assert torch.allclose(via_logp, temperature**2 * terms[mask()].sum())


def test_kd_gradient_through_crf_marginals_matches_finite_differences():
    emissions, transitions = student_case(7)
    teacher = random_teacher(8)

    def loss(emissions: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        return kd.kd_loss(crf_student(emissions, transitions), teacher, 2.0, mask())

    assert torch.autograd.gradcheck(
        loss, (emissions.requires_grad_(), transitions.requires_grad_()), eps=1e-6, atol=1e-6
    )


def test_kd_ignores_masked_rows_even_if_nan():
    emissions, transitions = student_case(9)
    emissions.requires_grad_()
    student = crf_student(emissions, transitions)
    teacher = random_teacher(10)
    clean = kd.kd_loss(student, teacher, 2.0, mask())
    dirty_student = torch.where(mask()[..., None], student, torch.full_like(student, float("nan")))
    dirty_teacher = torch.where(mask()[..., None], teacher, torch.full_like(teacher, float("nan")))
    dirty = kd.kd_loss(dirty_student, dirty_teacher, 2.0, mask())
    assert torch.equal(clean, dirty)
    (grad,) = torch.autograd.grad(dirty, emissions)
    assert torch.isfinite(grad).all()


def test_kd_shape_and_argument_errors():
    student, teacher, m = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="dimension of 3"):
        kd.kd_loss(student[0], teacher[0], 2.0, m[0])
    with pytest.raises(ValueError, match=r"teacher_logp of shape \(2, 3, 4\)"):
        kd.kd_loss(student, teacher[..., :3], 2.0, m)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\)"):
        kd.kd_loss(student, teacher, 2.0, m[:, :2])
    with pytest.raises(ValueError, match="bool"):
        kd.kd_loss(student, teacher, 2.0, m.long())
    with pytest.raises(ValueError, match="temperature must be positive"):
        kd.kd_loss(student, teacher, 0.0, m)


def test_mixed_loss_alpha_zero_is_exactly_the_plain_loss():
    hard = torch.tensor(1.2345, requires_grad=True)
    nan = torch.tensor(float("nan"))
    assert kd.mixed_loss(hard, nan, 0.0) is hard
    assert kd.mixed_loss(hard, nan, 0) is hard
    soft = torch.tensor(2.0)
    assert kd.mixed_loss(hard, soft, 1.0) is soft
    assert torch.allclose(kd.mixed_loss(hard, soft, 0.5), torch.tensor(0.5 * 1.2345 + 0.5 * 2.0))
    with pytest.raises(ValueError, match="alpha"):
        kd.mixed_loss(hard, soft, 1.5)


def test_mixed_loss_alpha_zero_trains_like_plain():
    emissions, transitions = student_case(11)
    emissions.requires_grad_()
    features = crf.features_from_scores(emissions, transitions)
    tags = torch.zeros(len(LENGTHS), max(LENGTHS), dtype=torch.long)
    hard = (
        crf.log_partition(features, LENGTHS, START, STOP, transitions)
        - crf.sequence_score(features, LENGTHS, tags, START, STOP, transitions)
    ).sum()
    (plain,) = torch.autograd.grad(hard, emissions, retain_graph=True)
    soft = kd.kd_loss(crf_student(emissions, transitions), random_teacher(12), 2.0, mask())
    (mixed,) = torch.autograd.grad(kd.mixed_loss(hard, soft, 0.0), emissions)
    assert torch.equal(plain, mixed)


# --- tag mapping by name -----------------------------------------------------------------

TEACHER_TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
# a Flair student dictionary: frequency order, <unk> first, <START>/<STOP> last
STUDENT_TAGS = ["<unk>", "O", "S-LOC", "B-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "I-PER", "I-LOC",
                "<START>", "<STOP>"]


def test_tag_index_maps_by_name():
    index = kd.tag_index(TEACHER_TAGS, STUDENT_TAGS)
    assert index.dtype == torch.long and index.shape == (len(STUDENT_TAGS),)
    for s, tag in enumerate(STUDENT_TAGS):
        if tag in TEACHER_TAGS:
            assert TEACHER_TAGS[index[s]] == tag
        else:
            assert index[s] == -1


def test_to_student_tags_keeps_the_distribution_and_zeroes_student_only_tags():
    gen = torch.Generator().manual_seed(0)
    teacher = torch.log_softmax(torch.randn(2, 3, len(TEACHER_TAGS), generator=gen), -1)
    index = kd.tag_index(TEACHER_TAGS, STUDENT_TAGS)
    mapped = kd.to_student_tags(teacher, index)
    assert mapped.shape == (2, 3, len(STUDENT_TAGS))
    for s, tag in enumerate(STUDENT_TAGS):
        if tag in TEACHER_TAGS:
            assert torch.equal(mapped[..., s], teacher[..., TEACHER_TAGS.index(tag)])
        else:
            assert (mapped[..., s] == float("-inf")).all()
    assert torch.allclose(mapped.exp().sum(-1), torch.ones(2, 3))

    student = torch.randn(2, 3, len(STUDENT_TAGS), generator=gen).requires_grad_()
    loss = kd.kd_loss(torch.log_softmax(student, -1), mapped, 2.0, torch.ones(2, 3, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and torch.isfinite(student.grad).all()


def test_tag_index_errors():
    with pytest.raises(ValueError, match=r"teacher tags \['S-ORG'\] are not in the student"):
        kd.tag_index(TEACHER_TAGS + ["S-ORG"], STUDENT_TAGS)
    with pytest.raises(ValueError, match=r"student tags \['B-ORG'\]"):
        kd.tag_index(TEACHER_TAGS, STUDENT_TAGS + ["B-ORG"])
    assert kd.tag_index(TEACHER_TAGS, STUDENT_TAGS + ["B-ORG"], kd.STUDENT_ONLY_TAGS + ("B-ORG",))[-1] == -1
    with pytest.raises(ValueError, match="duplicate"):
        kd.tag_index(TEACHER_TAGS + ["O"], STUDENT_TAGS)
    with pytest.raises(ValueError, match="only 3 tags"):
        kd.to_student_tags(torch.zeros(3), kd.tag_index(TEACHER_TAGS, STUDENT_TAGS))
