"""The KD loss as a mix of per-token means: alpha 0 and 1 give each term alone, the gradient is the
alpha-mix of the two terms' gradients, annealing, and the gradient norms logged into training.json."""
import json
import math

import flair
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener import config
from swener.data import corpora
from swener.kd import loss as kd
from swener.kd import softlabels
from swener.kd.plugins import term_gradient_norms
from swener.students.tagger import build_student
from swener.vectors.embeddings import CompactFastTextEmbeddings

TAGS = softlabels.canonical_tags(("LOC", "MISC", "ORG", "PER"))


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


def _student(family, vectors, corpus, **kwargs):
    flair.set_seed(5)
    student = build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=8,
                            teacher_tags=TAGS, **kwargs)
    student.eval()  # no dropout: the same scores on every call
    return student


def _batch(corpus, n=6, transfer=0, seed=0):
    """Training sentences with random teacher distributions; the last `transfer` ones have hard weight 0."""
    rng = np.random.default_rng(seed)
    batch = sorted(list(corpora.to_flair(corpus, 40).train)[:n], key=len, reverse=True)
    for i, sentence in enumerate(batch):
        sentence.add_metadata("teacher_logp", np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(sentence))))
        if i >= n - transfer:
            sentence.add_metadata("hard_weight", 0.0)
    return batch


def _kd_by_hand(student, batch, temperature):
    """T^2 KL(teacher_T || student_T) summed over tokens, from the student's distributions, token by token."""
    tensor, lengths = student._prepare_tensors(batch)
    emissions = student.emissions(tensor, lengths)
    scores = student._scores(emissions, lengths)
    student_logp = student.student_log_distribution(emissions, scores, lengths).detach().double()
    names = [student.label_dictionary.get_item_for_index(i) for i in range(len(student.label_dictionary))]
    total, tokens = 0.0, 0
    for b, sentence in enumerate(batch):
        teacher = sentence.get_metadata("teacher_logp")
        for t in range(len(sentence)):
            q = torch.softmax(student_logp[b, t] / temperature, -1)
            p = {tag: math.exp(teacher[t, i] / temperature) for i, tag in enumerate(TAGS)}
            z = sum(p.values())
            total += sum(v / z * math.log(v / z / float(q[names.index(tag)])) for tag, v in p.items())
            tokens += 1
    return temperature**2 * total, tokens


@pytest.mark.parametrize("family", ["bilstm-crf", "bilstm"])
def test_alpha_zero_and_one_give_each_term_alone(family, corpus, tiny_vectors):
    student = _student(family, tiny_vectors, corpus, alpha=0.0, temperature=2.0)
    batch = _batch(corpus)
    n = sum(len(s) for s in batch)
    tensor, lengths = student._prepare_tensors(batch)
    gold = student._prepare_label_tensor(batch)
    flair_hard = float(student._calculate_loss(student.forward(tensor, lengths), gold)[0])
    loss, count = student.forward_loss(batch)
    assert count == n and float(loss) == pytest.approx(flair_hard, rel=1e-6)  # plain training: Flair's summed loss

    student.alpha = 1.0
    kd_sum, kd_tokens = _kd_by_hand(student, batch, 2.0)
    loss, count = student.forward_loss(batch)
    assert count == n and float(loss) == pytest.approx(n * kd_sum / kd_tokens, rel=1e-5)

    student.alpha = 0.25
    loss, _ = student.forward_loss(batch)
    assert float(loss) == pytest.approx(n * (0.75 * flair_hard / n + 0.25 * kd_sum / kd_tokens), rel=1e-5)


def test_transfer_sentences_count_only_in_the_kd_mean(corpus, tiny_vectors):
    student = _student("bilstm-crf", tiny_vectors, corpus, alpha=0.0)
    batch = _batch(corpus, n=6, transfer=2)
    labelled = batch[:4]
    n, n_labelled = sum(len(s) for s in batch), sum(len(s) for s in labelled)
    tensor, lengths = student._prepare_tensors(labelled)
    hard_labelled = float(student._calculate_loss(student.forward(tensor, lengths),
                                                  student._prepare_label_tensor(labelled))[0])
    terms = student.loss_terms(batch, soft=True)
    assert terms.hard_tokens == n_labelled and terms.soft_tokens == n and terms.scale == n
    assert float(student.forward_loss(batch)[0]) == pytest.approx(n * hard_labelled / n_labelled, rel=1e-5)
    kd_sum, kd_tokens = _kd_by_hand(student, batch, student.temperature)
    hard_mean, kd_mean = terms.means()
    assert hard_mean == pytest.approx(hard_labelled / n_labelled, rel=1e-5)
    assert kd_mean == pytest.approx(kd_sum / kd_tokens, rel=1e-5)


@pytest.mark.parametrize("family,target", [("bilstm-crf", "marginals"), ("cnn-crf", "emissions"), ("cnn", "marginals")])
def test_gradient_is_the_alpha_mix_of_the_two_terms_gradients(family, target, corpus, tiny_vectors):
    student = _student(family, tiny_vectors, corpus, kd_target=target)
    batch = _batch(corpus, n=5, transfer=1, seed=1)
    params = [p for p in student.parameters() if p.requires_grad]

    def gradient(alpha):
        student.alpha = alpha
        loss, _ = student.forward_loss(batch)
        return [g if g is not None else torch.zeros_like(p)
                for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True))]

    hard, soft = gradient(0.0), gradient(1.0)
    assert sum(float(g.abs().sum()) for g in hard) > 0 and sum(float(g.abs().sum()) for g in soft) > 0
    for alpha in (0.3, 0.8):
        mixed = gradient(alpha)
        for g, h, s in zip(mixed, hard, soft):
            assert torch.allclose(g, (1 - alpha) * h + alpha * s, rtol=1e-4, atol=1e-6)
    norms = term_gradient_norms(student, batch, 0.3)  # the probe agrees with the two gradients
    hard_norm = math.sqrt(sum(float((0.7 * h).double().pow(2).sum()) for h in hard))
    soft_norm = math.sqrt(sum(float((0.3 * s).double().pow(2).sum()) for s in soft))
    assert norms["hard"] == pytest.approx(hard_norm, rel=1e-4) and norms["kd"] == pytest.approx(soft_norm, rel=1e-4)
    print(f"{family} {target}: |grad hard| {norms['hard']:.4g}, |grad KD| {norms['kd']:.4g}, "
          f"ratio {norms['kd'] / norms['hard']:.3g} (logged, not asserted)")


def test_the_probe_leaves_training_untouched(corpus, tiny_vectors):
    student = _student("bilstm-crf", tiny_vectors, corpus, alpha=0.5)
    student.train()  # dropout on: the probe must not advance the random stream
    batch = _batch(corpus)
    state = torch.get_rng_state()
    term_gradient_norms(student, batch, 0.5)
    assert torch.equal(state, torch.get_rng_state())
    assert all(p.grad is None for p in student.parameters())


def test_loss_terms_weights_and_errors():
    terms = kd.LossTerms(torch.tensor(6.0), 3.0, torch.tensor(2.0), 4, 4)
    assert terms.weights(0.0) == (4 / 3, 0.0) and terms.weights(1.0) == (0.0, 1.0)
    assert float(terms.loss(0.5)) == pytest.approx(4 * (0.5 * 2.0 + 0.5 * 0.5))
    assert float(kd.LossTerms(torch.tensor(6.0), 0.0, torch.tensor(2.0), 4, 4).loss(0.5)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="alpha must be in"):
        terms.weights(1.5)
    with pytest.raises(ValueError, match="needs the KD term"):
        kd.LossTerms(torch.tensor(1.0), 1.0, None, 3, 1).loss(0.5)


def test_alpha_schedule_and_its_parsing():
    assert config.parse_alpha("0.5") == (0.5, None) and config.parse_alpha("0.9:0.1") == (0.9, 0.1)
    assert [config.alpha_at(0.9, 0.1, e, 5) for e in range(1, 6)] == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1])
    assert config.alpha_at(0.9, None, 3, 5) == 0.9 and config.alpha_at(0.9, 0.1, 1, 1) == 0.9
    for bad, message in (("1.5", r"alpha must be a number in \[0, 1\]"), ("a:b", "START:END"),
                         ("0.1:2", "the end of the alpha schedule"), ("1:2:3", "START:END")):
        with pytest.raises(config.RecipeError, match=message):
            config.parse_alpha(bad)


def test_bad_alpha_option_is_one_error_line(tmp_path):
    from swener.cli import main

    result = CliRunner().invoke(main, ["train", "--family", "cnn", "--embeddings", str(tmp_path), "--out",
                                       str(tmp_path / "run"), "--alpha", "0.9:x"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "error: alpha must be a number in [0, 1] or START:END (e.g. 0.9:0.1), got '0.9:x'"]  # one line, at parse time
    result = CliRunner().invoke(main, ["train", "--family", "cnn", "--embeddings", str(tmp_path), "--out",
                                       str(tmp_path / "run"), "--temperature", "0"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "error: temperature must be a positive number, got 0.0"]


def _cache(tmp_path, corpus, n):
    rng = np.random.default_rng(0)
    tokens = [s.tokens for s in corpus.splits["train"][:n]]
    dists = [np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(t))) for t in tokens]
    softlabels.write(tmp_path / "soft" / "train.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256="t" * 64,
                     corpus="webbnyheter2012", split="train")
    return tmp_path / "soft"


def test_annealed_run_logs_alpha_and_gradient_norms_per_epoch(tmp_path, corpus, tiny_vectors):
    from swener.students.run import StudentSettings, train_student

    settings = StudentSettings(family="bilstm-crf", alpha=0.9, alpha_end=0.1, epochs=2, hidden_size=8,
                               max_sentences=24, batch_size=8, threads=1, gradient_probes=2)
    results = train_student(settings, "webbnyheter2012", tiny_vectors, _cache(tmp_path, corpus, 24),
                            tmp_path / "run", eval_corpora=())
    training = json.loads((tmp_path / "run" / "training.json").read_text())
    assert [e["alpha"] for e in training["alpha_schedule"]["per_epoch"]] == pytest.approx([0.9, 0.1])
    epochs = training["gradient_norms"]["per_epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and [e["alpha"] for e in epochs] == pytest.approx([0.9, 0.1])
    for row in epochs:
        assert row["batches"] == 2 and row["hard_grad_norm"] > 0 and row["kd_grad_norm"] > 0
        assert math.isfinite(row["kd_to_hard"]) and 0 <= row["clipped_share"] <= 1
        print(f"epoch {row['epoch']}: alpha {row['alpha']:.2f}, KD/hard gradient norm {row['kd_to_hard']:.3g}")
    assert results["training"]["gradient_norms"] == training["gradient_norms"]
    assert (tmp_path / "run" / "gradient_norms.png").stat().st_size > 1000
    assert results["settings"]["alpha_end"] == 0.1
    tagger = flair.nn.Classifier.load(tmp_path / "run" / "best-model.pt")
    assert tagger.card["alpha"] == 0.9 and tagger.card["alpha_end"] == 0.1
