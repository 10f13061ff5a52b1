"""The student grid: training steps, KD loss wiring, save/load, transfer-set weights."""
import flair
import numpy as np
import pytest
import torch
from flair.data import Sentence

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.kd import softlabels
from swener.students.tagger import (
    FAMILIES,
    StudentTagger,
    attach_soft_labels,
    build_student,
)
from swener.vectors.embeddings import CompactFastTextEmbeddings

TAGS = softlabels.canonical_tags(("LOC", "MISC", "ORG", "PER"))


@pytest.fixture(scope="module")
def data():
    corpus = corpora.load("webbnyheter2012")
    return corpus, corpora.to_flair(corpus, 60)


def _soft_for(sentences, seed=0):
    rng = np.random.default_rng(seed)
    return [np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(s))).astype(np.float16) for s in sentences]


def _student(family, vectors, corpus, **kwargs):
    flair.set_seed(3)
    return build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=12,
                         teacher_tags=TAGS, **kwargs)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_trains_and_round_trips(family, data, tiny_vectors, tmp_path):
    corpus, flair_corpus = data
    student = _student(family, tiny_vectors, corpus, alpha=0.5)
    train = list(flair_corpus.train)[:24]
    for sentence, dist in zip(train, _soft_for(train)):
        sentence.add_metadata("teacher_logp", dist)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss, count = student.forward_loss(train)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)  # as Flair's trainer does
        optimizer.step()
        losses.append(float(loss.detach()) / count)
    assert losses[-1] < losses[0]
    path = tmp_path / "student.pt"
    student.save(path)
    loaded = flair.nn.Classifier.load(path)
    assert isinstance(loaded, StudentTagger) and (loaded.encoder, loaded.use_crf) == (
        FAMILIES[family][0], FAMILIES[family][1] == "crf")
    assert loaded.alpha == 0.5 and loaded.teacher_tags == TAGS
    first = [Sentence(s.tokens) for s in corpus.splits["test"][:20]]
    second = [Sentence(s.tokens) for s in corpus.splits["test"][:20]]
    student.eval()
    student.predict(first, return_probabilities_for_all_classes=False)
    loaded.predict(second)
    assert [[t.get_label("ner").value for t in s] for s in first] == \
        [[t.get_label("ner").value for t in s] for s in second]


def test_kd_term_vanishes_when_teacher_equals_student_marginals(data, tiny_vectors):
    corpus, flair_corpus = data
    student = _student("bilstm-crf", tiny_vectors, corpus, alpha=1.0, temperature=2.0)
    student.eval()  # no dropout: the same scores twice
    batch = sorted(list(flair_corpus.train)[:8], key=len, reverse=True)
    tensor, lengths = student._prepare_tensors(batch)
    emissions = student.emissions(tensor, lengths)
    marg = student.student_log_distribution(emissions, student._scores(emissions, lengths), lengths)
    names = [student.label_dictionary.get_item_for_index(i) for i in range(len(student.label_dictionary))]
    order = [names.index(t) for t in TAGS]
    own = marg[..., order].detach()
    own = own - torch.logsumexp(own, dim=-1, keepdim=True)  # START/STOP carry ~e^-10000 of the mass
    for sentence, rows, n in zip(batch, own, lengths.tolist()):
        sentence.add_metadata("teacher_logp", rows[:n].numpy())
    loss, _ = student.forward_loss(batch)
    assert abs(float(loss)) < 1e-3
    for sentence, dist in zip(batch, _soft_for(batch)):
        sentence.add_metadata("teacher_logp", dist)
    assert float(student.forward_loss(batch)[0]) > 1.0


def test_transfer_sentences_only_count_in_the_soft_term(data, tiny_vectors):
    corpus, flair_corpus = data
    for family in ("bilstm-crf", "bilstm"):
        student = _student(family, tiny_vectors, corpus, alpha=0.5)
        student.eval()
        batch = sorted(list(flair_corpus.train)[:6], key=len, reverse=True)
        for sentence, dist in zip(batch, _soft_for(batch)):
            sentence.add_metadata("teacher_logp", dist)
            sentence.add_metadata("hard_weight", 1.0)
        gold = student._prepare_label_tensor(batch)
        tensor, lengths = student._prepare_tensors(batch)
        scores = student.forward(tensor, lengths)
        flair_loss = student._calculate_loss(scores, gold)[0]
        batch[0].add_metadata("hard_weight", 0.5)  # any weight other than 1 takes swener's own path
        own = student._hard_loss(batch, scores, gold, lengths)
        labelled = batch[1:]
        sub_loss = student._calculate_loss(student.forward(*student._prepare_tensors(labelled)),
                                           student._prepare_label_tensor(labelled))[0]
        expected = flair_loss - 0.5 * (flair_loss - sub_loss)
        assert float(own) == pytest.approx(float(expected), rel=1e-4)


def test_attach_checks_lengths_and_teacher_is_needed(data, tiny_vectors, tmp_path):
    corpus, flair_corpus = data
    train = list(flair_corpus.train)[:5]
    tokens = [[t.text for t in s] for s in train]
    path = softlabels.write(tmp_path / "train.npz", _soft_for(train), tags=TAGS, tokens=tokens,
                            teacher_sha256="x", corpus="webbnyheter2012", split="train")
    with pytest.raises(ValueError, match="6 sentences but 5"):
        attach_soft_labels(list(flair_corpus.train)[:6], softlabels.read(path))
    student = build_student("cnn", CompactFastTextEmbeddings(tiny_vectors), corpus.types, hidden_size=8, alpha=0.5)
    with pytest.raises(ValueError, match="needs teacher_tags"):
        student.forward_loss(train)
    with pytest.raises(ValueError, match="unknown family"):
        build_student("transformer", CompactFastTextEmbeddings(tiny_vectors), corpus.types)


def test_residual_idcnn_adds_each_convolutions_input_and_round_trips(data, tiny_vectors, tmp_path):
    from swener.students import encoders

    torch.manual_seed(0)
    plain = encoders.build("idcnn", 6, 8, iterations=2)
    residual = encoders.build("idcnn", 6, 8, iterations=2, residual=True)
    residual.load_state_dict(plain.state_dict())
    vectors, lengths = torch.randn(2, 7, 6), torch.tensor([7, 4])
    mask = (torch.arange(7)[None, :] < lengths[:, None]).float()[:, None, :]  # [B, 1, T]
    x = torch.relu(plain.initial(vectors.transpose(1, 2) * mask))
    by_hand = {False: x, True: x}
    for kind in (False, True):  # the recurrence written out, independently of the encoder's loop
        h = x
        for _ in range(2):
            for conv in plain.block:
                out = torch.relu(conv(h * mask))
                h = h + out if kind else out
        by_hand[kind] = (h * mask).transpose(1, 2)
    assert torch.allclose(plain(vectors, lengths), by_hand[False], atol=1e-6)
    assert torch.allclose(residual(vectors, lengths), by_hand[True], atol=1e-6)
    assert not torch.allclose(by_hand[True], by_hand[False])
    assert torch.equal(residual(vectors, lengths)[1, 4:], torch.zeros(3, 8))  # padding stays out
    alone = residual(vectors[1:2, :4], lengths[1:2])
    assert torch.allclose(alone[0], residual(vectors, lengths)[1, :4], atol=1e-6)

    corpus, _ = data
    student = _student("idcnn-crf", tiny_vectors, corpus, encoder_options={"residual": True})
    student.save(tmp_path / "residual.pt")
    loaded = flair.nn.Classifier.load(tmp_path / "residual.pt")
    assert loaded.encoder_net.residual and loaded.encoder_net.options()["residual"] is True
    assert _student("idcnn", tiny_vectors, corpus).encoder_net.residual is False  # a saved model without the option


def test_new_idcnn_students_are_residual_unless_told_otherwise(tiny_vectors, tmp_path):
    """config.ENCODER_OPTIONS gives a new ID-CNN residual connections; results.json and the model say so."""
    from swener.students.run import StudentSettings, train_student

    for options, residual in ((None, True), ({"residual": False}, False)):
        settings = StudentSettings(family="idcnn", alpha=0.0, epochs=1, hidden_size=8, max_sentences=12, threads=1,
                                   encoder_options=options)
        out = tmp_path / f"run-{residual}"
        results = train_student(settings, "webbnyheter2012", tiny_vectors, None, out, eval_corpora=())
        assert results["settings"]["encoder_options"]["residual"] is residual
        assert flair.nn.Classifier.load(out / "best-model.pt").encoder_net.residual is residual
