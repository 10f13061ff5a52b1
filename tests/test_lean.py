"""The students' lean batch path against Flair's own path, and the numpy decoders against Flair's and brute force."""
import itertools

import flair
import numpy as np
import pytest
import torch
from flair.data import Sentence, get_spans_from_bio
from flair.models.sequence_tagger_utils.viterbi import ViterbiDecoder

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.data.tags import bioes_spans
from swener.kd import decoding
from swener.students.tagger import FAMILIES, build_student
from swener.vectors import compact as vectors
from swener.vectors.embeddings import CompactFastTextEmbeddings

ODD_TOKENS = ["Testordsstaden", "STOCKHOLM", "5 000", "xyzzyq", "Ödeshögsbo", "😀", "EU-kommissionen"]


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


def _student(family, vectors_path, corpus, **kwargs):
    flair.set_seed(7)
    return build_student(family, CompactFastTextEmbeddings(vectors_path), corpus.types, hidden_size=10, **kwargs)


def _batch(corpus, n=12):
    """Training sentences with gold spans, plus words no vocabulary knows, sorted as Flair sorts them."""
    train = list(corpora.to_flair(corpus, 40).train)[:n]
    extra = Sentence(["Anna", *ODD_TOKENS, "."])
    return sorted([*train, extra], key=len, reverse=True)


def _both(student, fn):
    student.lean = False
    flair_result = fn()
    student.lean = True
    return flair_result, fn()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_tensors_emissions_loss_and_gradients_as_flair(family, corpus, tiny_vectors):
    student = _student(family, tiny_vectors, corpus)
    batch = _batch(corpus)
    (flair_x, flair_len), (lean_x, lean_len) = _both(student, lambda: student._prepare_tensors(batch))
    assert torch.equal(flair_x, lean_x) and torch.equal(flair_len, lean_len)
    assert float(lean_x.abs().sum()) > 0 and bool((lean_x[-1, len(batch[-1]):] == 0).all())  # zero padding
    student.eval()
    flair_e, lean_e = _both(student, lambda: student.emissions(*student._prepare_tensors(batch)))
    assert torch.equal(flair_e, lean_e)
    student.train()

    def loss_and_grads():
        torch.manual_seed(11)  # the same dropout masks on both paths
        student.zero_grad()
        loss, count = student.forward_loss(batch)
        loss.backward()
        return float(loss.detach()), count, [p.grad.clone() for p in student.parameters() if p.grad is not None]

    (flair_loss, flair_n, flair_g), (lean_loss, lean_n, lean_g) = _both(student, loss_and_grads)
    # the CRF loss is summed in another order (crf_loss.crf_nll): equal up to float rounding
    assert lean_loss == pytest.approx(flair_loss, rel=1e-6) and flair_n == lean_n and flair_loss > 0
    # gradients equal up to float32 rounding, measured against each tensor's largest entry
    assert len(flair_g) == len(lean_g) and all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-6 * max(1.0, float(a.abs().max()))) for a, b in zip(flair_g, lean_g))
    # the second epoch reads the ids and gold tags kept on the sentences: still the same loss
    assert loss_and_grads()[0] == lean_loss


@pytest.mark.parametrize("family", ["bilstm-crf", "cnn"])
def test_predict_and_tag_tokens_match_flair(family, corpus, tiny_vectors):
    student = _student(family, tiny_vectors, corpus)
    student.eval()
    with torch.no_grad():  # a bias towards entities, so that there are many spans to compare
        student.linear.bias[student.label_dictionary.get_idx_for_item("O")] -= 1.0
    tokens = [s.tokens for s in corpus.splits["test"][:150]] + [ODD_TOKENS, ["ensam"]]

    def spans():
        sentences = [Sentence(t) for t in tokens] + [Sentence([])]
        student.predict(sentences, mini_batch_size=16)
        return [[(sp.tokens[0].idx, sp.tokens[-1].idx, sp.get_label("ner").value, sp.score)
                 for sp in s.get_spans("ner")] for s in sentences]

    flair_spans, lean_spans = _both(student, spans)
    assert flair_spans == lean_spans and sum(map(len, lean_spans)) > 50
    tagged = student.tag_tokens(tokens, batch_size=16)
    from_tags = [[(a + 1, b, kind, score) for a, b, kind, score in bioes_spans(tags, scores)]
                 for tags, scores in tagged]
    assert from_tags == flair_spans[:-1]


def test_loss_of_predict_matches_flair(corpus, tiny_vectors):
    student = _student("bilstm-crf", tiny_vectors, corpus)
    student.eval()
    dev = list(corpora.to_flair(corpus, 30).dev)
    (flair_loss, flair_n), (lean_loss, lean_n) = _both(
        student, lambda: student.predict(dev, mini_batch_size=8, return_loss=True, label_name="predicted"))
    assert flair_n == lean_n and float(flair_loss) == pytest.approx(float(lean_loss), rel=1e-6)


def test_ids_are_kept_on_sentences_until_the_oov_table_starts_afresh(corpus, tiny_vectors, monkeypatch):
    from swener.vectors import embeddings as emb

    student = _student("bilstm", tiny_vectors, corpus)
    sentence = Sentence(["Anna", "xyzzyq", "qqqqzzzz"])
    ids = student._sentence_ids(sentence)
    assert ids[0] >= 0 and ids[1] < -1 and student._sentence_ids(sentence) is ids
    expected = student.embeddings._oov_vector("xyzzyq")
    assert torch.equal(student.embeddings.lookup(torch.tensor(ids))[1], expected)
    monkeypatch.setattr(emb, "OOV_CACHE_SIZE", 0)
    student.embeddings.trim_oov_table()  # a new id space: the ids kept on the sentence are stale
    fresh = student._sentence_ids(sentence)
    assert fresh is not ids and torch.equal(student.embeddings.lookup(torch.tensor(fresh))[1], expected)


def test_a_copy_of_the_embeddings_has_its_own_id_space(corpus, tiny_vectors):
    import copy

    student = _student("bilstm", tiny_vectors, corpus)
    student._sentence_ids(Sentence(["xyzzyq"]))
    twin = copy.deepcopy(student)  # as quantize_dynamic copies a model
    assert twin.embeddings.ids_key != student.embeddings.ids_key
    sentence = Sentence(["qqqqzzzz", "Anna"])
    twin._sentence_ids(sentence)  # ids of the twin's OOV table are kept on the sentence
    vectors = student._prepare_tensors([sentence])[0]
    assert torch.equal(vectors[0, 0], student.embeddings._oov_vector("qqqqzzzz")) and float(vectors.abs().sum()) > 0


def test_zero_oov_embeddings(corpus, tiny_vectors):
    flair.set_seed(7)
    student = build_student("cnn", CompactFastTextEmbeddings(tiny_vectors, oov="zero"), corpus.types, hidden_size=6)
    batch = _batch(corpus, 4)
    flair_x, lean_x = _both(student, lambda: student._prepare_tensors(batch)[0])
    assert torch.equal(flair_x, lean_x)


# --------------------------------------------------------------------------- decoding and hashing


def test_viterbi_matches_brute_force_and_flair():
    rng = np.random.default_rng(0)
    k, start, stop = 5, 3, 4
    transitions = rng.normal(size=(k, k)).astype(np.float32)
    transitions[start, :] = -10000.0
    transitions[:, stop] = -10000.0
    lengths = [4, 3, 1]
    emissions = rng.normal(size=(3, 4, k)).astype(np.float32)
    tags, scores = decoding.viterbi(emissions, lengths, transitions, start, stop)
    for b, n in enumerate(lengths):
        def total(path):
            value = transitions[path[0], start] + transitions[stop, path[-1]]
            return value + sum(emissions[b, t, y] for t, y in enumerate(path)) + sum(
                transitions[path[t], path[t - 1]] for t in range(1, n))
        best = max(itertools.product(range(k), repeat=n), key=total)
        assert tuple(tags[b, :n]) == best
    dictionary = flair.data.Dictionary(add_unk=False)
    for name in ("O", "S-PER", "S-LOC", "<START>", "<STOP>"):
        dictionary.add_item(name)
    features = torch.from_numpy(emissions)[..., None] + torch.from_numpy(transitions)[None, None]
    decoded, _ = ViterbiDecoder(dictionary).decode((features, torch.tensor(lengths), torch.from_numpy(transitions)),
                                                   False, [])
    confidences = decoding.max_softmax(scores)
    for b, n in enumerate(lengths):
        assert [dictionary.get_idx_for_item(t) for t, _ in decoded[b]] == tags[b, :n].tolist()
        assert np.allclose([c for _, c in decoded[b]], confidences[b, :n], atol=1e-6)


def test_bioes_spans_match_flair():
    rng = np.random.default_rng(1)
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "I-ORG"]
    for _ in range(300):
        n = int(rng.integers(0, 9))
        tags = [names[i] for i in rng.integers(0, len(names), size=n)]
        scores = rng.random(n).tolist()
        ours = [(list(range(a, b)), score, kind) for a, b, kind, score in bioes_spans(tags, scores)]
        assert ours == get_spans_from_bio(list(tags), scores)


def test_fasttext_hash_matches_gensim():
    from gensim.models.fasttext import ft_ngram_hashes

    for word in ["Stockholm", "räksmörgås", "😀ab", "a", "", "EU-kommissionen", "Ödeshög\u00a0x", "日本語"]:
        for minn, maxn in ((3, 6), (1, 3), (2, 2)):
            assert vectors.ngram_buckets(word, minn, maxn, 2_000_000) == list(
                ft_ngram_hashes(word, minn, maxn, 2_000_000))


def test_crf_nll_matches_flair_viterbi_loss():
    from flair.models.sequence_tagger_utils.viterbi import ViterbiLoss

    from swener.kd import crf_loss

    rng = torch.Generator().manual_seed(3)
    dictionary = flair.data.Dictionary(add_unk=False)
    for name in ("O", "S-PER", "B-PER", "E-PER", "<START>", "<STOP>"):
        dictionary.add_item(name)
    k, lengths = len(dictionary), torch.tensor([6, 4, 4, 1])
    emissions = torch.randn(4, 6, k, generator=rng, requires_grad=True)
    transitions = torch.randn(k, k, generator=rng, requires_grad=True)
    gold = torch.randint(0, 4, (int(lengths.sum()),), generator=rng)
    features = emissions.unsqueeze(-1) + transitions[None, None]
    flair_loss = ViterbiLoss(dictionary)((features, lengths, transitions), gold)
    flair_grads = torch.autograd.grad(flair_loss, (emissions, transitions))
    ours = crf_loss.crf_nll(emissions, lengths, crf_loss.pad_tags(gold, lengths, 6), transitions, 4, 5).sum()
    our_grads = torch.autograd.grad(ours, (emissions, transitions))
    assert float(ours.detach()) == pytest.approx(float(flair_loss.detach()), rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(flair_grads, our_grads))


def test_bilstm_encoder_equals_the_packed_bidirectional_lstm():
    """The two unidirectional runs (backward over each sentence reversed in place) against nn.LSTM on packed input."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from swener.students.encoders.bilstm import BiLSTM

    torch.manual_seed(3)
    encoder = BiLSTM(7, 5)
    lengths = torch.tensor([9, 6, 6, 2, 1])
    vectors = torch.randn(5, 9, 7)
    mask = (torch.arange(9)[None, :] < lengths[:, None]).unsqueeze(-1)
    vectors = (vectors * mask).requires_grad_()  # zero padding, as the lean batch has
    for training in (True, False):
        encoder.train(training)
        ours = encoder(vectors, lengths)
        packed = pack_padded_sequence(vectors, lengths, batch_first=True)
        reference = pad_packed_sequence(encoder.lstm(packed)[0], batch_first=True)[0]
        assert ours.shape == reference.shape == (5, 9, 10)
        assert torch.allclose(ours * mask, reference, atol=1e-6)
        weights = torch.randn_like(ours) * mask  # a loss that reads real tokens only
        inputs = [vectors, *encoder.parameters()]
        ours_grad = torch.autograd.grad((ours * weights).sum(), inputs)
        reference_grad = torch.autograd.grad((reference * weights).sum(), inputs)
        for a, b in zip(ours_grad, reference_grad):
            assert torch.allclose(a, b, atol=1e-5)
        # a sentence's states do not depend on the other sentences of its batch
        alone = encoder(vectors[3:4, :2], lengths[3:4])
        assert torch.allclose(alone, ours[3:4, :2], atol=1e-6)
