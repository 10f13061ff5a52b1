"""k-best path KD against brute-force enumeration, the k-best cache arrays, and the top-k cache without a tail."""
import itertools
import math
import os

import flair
import numpy as np
import pytest
import torch
from flair.data import Sentence

import swener  # noqa: F401  (registers StudentTagger for flair's loader)
from swener.data import corpora
from swener.errors import DataError, SwenerError
from swener.files import sha256_of
from swener.kd import bioes, crf, softlabels
from swener.kd import loss as kd
from swener.kd.kbest import teacher_kbest
from swener.students.tagger import attach_soft_labels, build_student
from swener.vectors.embeddings import CompactFastTextEmbeddings

# 3 real tags + <START> + <STOP>, as in Flair's CRF layout
NUM_TAGS, START, STOP = 5, 3, 4
LENGTHS = [3, 1, 2]
TAGS = softlabels.canonical_tags(("LOC", "MISC", "ORG", "PER"))


def crf_case(seed=0):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), NUM_TAGS, generator=gen, dtype=torch.float64)
    transitions = torch.randn(NUM_TAGS, NUM_TAGS, generator=gen, dtype=torch.float64)
    transitions[START, :] = -10000
    transitions[:, STOP] = -10000
    return emissions, transitions


def brute_score(emissions, transitions, b, path):
    """Score of one path of sentence b, term by term (Flair's layout: transitions[to, from])."""
    total = transitions[path[0], START] + transitions[STOP, path[-1]]
    for t, tag in enumerate(path):
        total = total + emissions[b, t, tag]
        if t:
            total = total + transitions[tag, path[t - 1]]
    return total


def test_log_partition_and_path_scores_match_brute_force():
    emissions, transitions = crf_case(1)
    log_z = kd.crf_log_partition(emissions, torch.tensor(LENGTHS), transitions, START, STOP)
    features = crf.features_from_scores(emissions, transitions)
    assert torch.allclose(log_z, crf.log_partition(features, LENGTHS, START, STOP, transitions))
    for b, n in enumerate(LENGTHS):
        every = [brute_score(emissions, transitions, b, p) for p in itertools.product(range(NUM_TAGS), repeat=n)]
        assert float(log_z[b]) == pytest.approx(float(torch.logsumexp(torch.stack(every), 0)), rel=1e-10)


def test_kbest_nll_and_its_gradient_match_brute_force():
    emissions, transitions = crf_case(2)
    emissions.requires_grad_()
    transitions.requires_grad_()
    gen = torch.Generator().manual_seed(3)
    k = 3
    paths = torch.randint(0, 3, (len(LENGTHS), k, max(LENGTHS)), generator=gen)
    log_weights = torch.log_softmax(torch.randn(len(LENGTHS), k, generator=gen, dtype=torch.float64), -1)
    log_weights[1, 2] = float("-inf")  # a sentence with fewer paths than k
    log_weights[1] = torch.log_softmax(log_weights[1], -1)
    ours = kd.kbest_nll(emissions, torch.tensor(LENGTHS), paths, log_weights, transitions, START, STOP)

    expected = []
    for b, n in enumerate(LENGTHS):
        every = [brute_score(emissions, transitions, b, p) for p in itertools.product(range(NUM_TAGS), repeat=n)]
        log_z = torch.logsumexp(torch.stack(every), 0)
        terms = [-log_weights[b, j].exp() * (brute_score(emissions, transitions, b, paths[b, j, :n].tolist()) - log_z)
                 for j in range(k) if log_weights[b, j] > float("-inf")]
        expected.append(sum(terms))
    expected = torch.stack(expected)
    assert torch.allclose(ours, expected, rtol=1e-10)
    ours_grads = torch.autograd.grad(ours.sum(), (emissions, transitions))
    brute_grads = torch.autograd.grad(expected.sum(), (emissions, transitions))
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(ours_grads, brute_grads))


def test_bioes_kbest_matches_brute_force_over_valid_sequences():
    tags = softlabels.canonical_tags(("LOC", "PER"))
    gen = torch.Generator().manual_seed(4)
    lengths = torch.tensor([3, 2, 1])
    logp = torch.log_softmax(torch.randn(3, 3, len(tags), generator=gen, dtype=torch.float64), -1)
    k = 6
    paths, scores = bioes.kbest(logp, lengths, tags, k)
    assert paths.shape == (3, k, 3) and scores.shape == (3, k)
    for b, n in enumerate(lengths.tolist()):
        valid = [p for p in itertools.product(range(len(tags)), repeat=n)
                 if bioes.invalid_transitions([tags[i] for i in p]) == 0]
        score = {p: float(sum(logp[b, t, y] for t, y in enumerate(p))) for p in valid}
        log_z = math.log(sum(math.exp(v) for v in score.values()))
        best = sorted(valid, key=lambda p: -score[p])
        found = min(k, len(valid))
        assert [tuple(paths[b, j, :n].tolist()) for j in range(found)] == best[:found]
        assert scores[b, :found].tolist() == pytest.approx([score[p] - log_z for p in best[:found]], abs=1e-9)
        assert all(s == float("-inf") for s in scores[b, found:].tolist())  # a 1-token sentence has 3 valid paths


def _student(family, vectors, corpus, **kwargs):
    flair.set_seed(9)
    student = build_student(family, CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=8,
                            teacher_tags=TAGS, **kwargs)
    student.eval()
    return student


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("webbnyheter2012")


def test_student_kbest_term_with_the_gold_path_is_the_crf_nll(corpus, tiny_vectors):
    student = _student("bilstm-crf", tiny_vectors, corpus, alpha=1.0, kd_target="kbest")
    batch = sorted(list(corpora.to_flair(corpus, 20).train)[:5], key=len, reverse=True)
    for sentence in batch:  # one path of weight 1, the gold tags, plus one of weight 0
        gold = [TAGS.index(t) for t in student._get_gold_labels([sentence])]
        other = [0] * len(sentence)
        sentence.add_metadata("teacher_logp", np.zeros((len(sentence), len(TAGS))) - math.log(len(TAGS)))
        sentence.add_metadata("teacher_kbest", (np.array([gold, other]), np.array([0.0, float("-inf")])))
    terms = student.loss_terms(batch)
    assert float(terms.soft_sum.detach()) == pytest.approx(float(terms.hard_sum.detach()), rel=1e-5)
    assert terms.soft_tokens == sum(len(s) for s in batch)
    with pytest.raises(ValueError, match="needs a CRF student"):
        _student("bilstm", tiny_vectors, corpus, kd_target="kbest")


def test_lean_kbest_loss_with_one_log_z_equals_flairs_path(corpus, tiny_vectors):
    """The lean path computes log Z once for the hard and the k-best term; Flair's path computes each apart."""
    rng = np.random.default_rng(4)
    student = _student("window-crf", tiny_vectors, corpus, alpha=0.3, kd_target="kbest")
    batch = list(corpora.to_flair(corpus, 20).train)[:6]
    for sentence in batch:
        n = len(sentence)
        sentence.add_metadata("teacher_logp", np.zeros((n, len(TAGS))) - math.log(len(TAGS)))
        sentence.add_metadata("teacher_kbest", (rng.integers(0, len(TAGS), size=(3, n)), rng.normal(size=3)))
    results = []
    for lean in (True, False):
        student.lean = lean
        student.zero_grad()
        terms = student.loss_terms(batch)
        terms.loss(student.alpha).backward()
        results.append((terms, [p.grad.clone() for p in student.parameters() if p.grad is not None]))
    (lean_terms, lean_grads), (flair_terms, flair_grads) = results
    assert float(lean_terms.hard_sum) == pytest.approx(float(flair_terms.hard_sum), rel=1e-4)
    assert float(lean_terms.soft_sum) == pytest.approx(float(flair_terms.soft_sum), rel=1e-4)
    assert len(lean_grads) == len(flair_grads) > 0
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(lean_grads, flair_grads))


def test_teacher_kbest_of_a_crf_and_a_softmax_tagger(corpus, tiny_vectors):
    sentences = [Sentence(["Anna", "bor"]), Sentence(["i", "Umeå", "nu"]), Sentence(["Hej"])]
    crf_tagger = _student("bilstm-crf", tiny_vectors, corpus)
    names = [crf_tagger.label_dictionary.get_item_for_index(i) for i in range(len(crf_tagger.label_dictionary))]
    results = list(teacher_kbest(crf_tagger, sentences, k=3))
    start, stop = names.index("<START>"), names.index("<STOP>")
    for sentence, (paths, logp) in zip(sentences, results):
        tensor, lengths = crf_tagger._prepare_tensors([sentence])
        with torch.no_grad():
            features, _, transitions = crf_tagger.forward(tensor, lengths)
        n = len(sentence)
        every = {p: float(crf.sequence_score(features, [n], torch.tensor([p]), start, stop, transitions))
                 for p in itertools.product(range(len(names)), repeat=n)}
        log_z = math.log(sum(math.exp(v) for v in every.values()))
        best = sorted(every, key=lambda p: -every[p])[:3]
        assert paths.shape == (3, n) and paths.dtype == np.int16
        assert [[TAGS[i] for i in row] for row in paths.tolist()] == [[names[i] for i in p] for p in best]
        assert logp.tolist() == pytest.approx([every[p] - log_z for p in best], abs=1e-4)

    softmax_tagger = _student("bilstm", tiny_vectors, corpus)
    for paths, logp in teacher_kbest(softmax_tagger, sentences, k=4):
        assert all(bioes.invalid_transitions([TAGS[i] for i in row]) == 0 for row in paths.tolist())
        assert np.all(np.diff(logp) <= 1e-6) and np.all(logp <= 1e-6)


def test_kbest_arrays_in_the_cache(tmp_path, corpus, tiny_vectors):
    tokens = [["Anna", "bor", "här"], ["Hej"], ["i", "Umeå"]]
    rng = np.random.default_rng(0)
    dists = [np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(t))) for t in tokens]
    path = softlabels.write(tmp_path / "train.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256="t",
                            corpus="c", split="train", topk=3)
    before = softlabels.read(path)
    os.utime(path, (1_000_000, 1_000_000))
    paths = [rng.integers(0, len(TAGS), size=(2, len(t))) for t in tokens]
    logp = [np.array([-0.1, -2.5]), np.array([-0.3, float("-inf")]), np.array([-1.0, -1.2])]
    softlabels.add_kbest(path, paths, logp, 2)
    assert path.stat().st_mtime == 1_000_000  # what Make built from the distributions stays up to date
    soft = softlabels.read(path)
    assert soft.header["kbest"] == 2 and np.array_equal(soft.logp, before.logp)  # the rest is kept as it was
    for i in range(3):
        got_paths, got_logp = soft.sentence_kbest(i)
        assert np.array_equal(got_paths, paths[i]) and np.array_equal(got_logp, logp[i].astype(np.float32))
    assert soft.first(2).sentence_kbest(1)[0].shape == (2, 1)
    sentences = [Sentence(t) for t in tokens]
    attach_soft_labels(sentences, soft)
    assert np.array_equal(sentences[2].get_metadata("teacher_kbest")[0], paths[2])
    with pytest.raises(ValueError, match=r"sentence 1: expected paths of shape \(2, 1\)"):
        softlabels.add_kbest(path, [paths[0], paths[0], paths[2]], logp, 2)
    with pytest.raises(DataError, match="not log-probabilities"):
        softlabels.add_kbest(path, paths, [np.array([0.5, -1.0])] + logp[1:], 2)
    with pytest.raises(DataError, match="not log-probabilities"):
        softlabels.add_kbest(path, paths, [np.array([float("-inf")] * 2)] + logp[1:], 2)
    assert softlabels.read(path).header["kbest"] == 2  # a refused write leaves the file as it was
    at_once = softlabels.write(tmp_path / "once.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256="t",
                               corpus="c", split="train", topk=3, kbest=(paths, logp, 2))
    once = softlabels.read(at_once)  # written with the distributions in one file: the same arrays
    assert once.header == soft.header
    for name in ("logp", "offsets", "kbest_paths", "kbest_logp"):
        assert np.array_equal(getattr(once, name), getattr(soft, name))
    with pytest.raises(DataError, match="not log-probabilities"):
        softlabels.write(tmp_path / "bad.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256="t", corpus="c",
                         split="train", kbest=(paths, [np.array([0.5, -1.0])] + logp[1:], 2))
    assert not (tmp_path / "bad.npz").exists()


def test_topk_cache_renormalises_over_the_kept_tags(tmp_path):
    rng = np.random.default_rng(2)
    tokens = [["a", "b", "c", "d"], ["e"]]
    dists = [np.log(rng.dirichlet(np.ones(len(TAGS)) * 0.5, size=len(t))) for t in tokens]
    for k in (1, 3, len(TAGS)):
        path = softlabels.write(tmp_path / f"k{k}.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256="t",
                                corpus="c", split="train", topk=k)
        dense = softlabels.read(path).logp.astype(np.float64)
        for row, full in zip(dense, np.concatenate(dists)):
            kept = np.argsort(-full)[:k]
            expected = np.full(len(TAGS), -np.inf)
            expected[kept] = full[kept] - np.log(np.exp(full[kept]).sum())
            assert np.array_equal(np.isinf(row), np.isinf(expected))  # the dropped tags: probability exactly 0
            np.testing.assert_allclose(np.exp(row), np.exp(expected), atol=2e-3)
            assert np.exp(row).sum() == pytest.approx(1.0, abs=5e-3)
    # the KD term reads the dropped tags as probability 0: no uniform tail pulls the student
    teacher = torch.from_numpy(softlabels.read(tmp_path / "k1.npz").logp.astype(np.float32))[None]
    student = torch.log_softmax(torch.randn(1, teacher.shape[1], len(TAGS)), -1)
    loss = kd.kd_loss(student, teacher, 1.0, torch.ones(1, teacher.shape[1], dtype=torch.bool))
    top = teacher[0].argmax(-1)
    assert float(loss) == pytest.approx(float(-student[0, torch.arange(len(top)), top].sum()), rel=1e-5)


def test_add_teacher_kbest_adds_the_teachers_paths_to_its_cache(tmp_path, corpus, tiny_vectors):
    from swener.teacher.run import add_teacher_kbest

    model = tmp_path / "teacher.pt"
    _student("cnn-crf", tiny_vectors, corpus).save(model)  # a CRF tagger on the canonical tags stands in
    tokens = [s.tokens for s in corpus.splits["train"][:7]]
    rng = np.random.default_rng(5)
    dists = [np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(t))) for t in tokens]
    path = softlabels.write(tmp_path / "soft" / "train.npz", dists, tags=TAGS, tokens=tokens,
                            teacher_sha256=sha256_of(model), corpus="webbnyheter2012", split="train")
    assert add_teacher_kbest(model, "webbnyheter2012", tmp_path / "soft", ["train"], k=2) == [path]
    soft = softlabels.read(path)
    expected = list(teacher_kbest(flair.nn.Classifier.load(model), [Sentence(t) for t in tokens], k=2))
    for i, (paths, logp) in enumerate(expected):
        got_paths, got_logp = soft.sentence_kbest(i)
        assert np.array_equal(got_paths, paths) and np.allclose(got_logp, logp)
    other = tmp_path / "other.pt"
    _student("cnn-crf", tiny_vectors, corpus).save(other)
    other.write_bytes(other.read_bytes() + b"\0")  # another file: another sha256
    with pytest.raises(SwenerError, match="written by another teacher"):
        add_teacher_kbest(other, "webbnyheter2012", tmp_path / "soft", ["train"], k=2)


def test_transfer_caches_get_kbest_paths_and_a_kbest_student_needs_them(tmp_path, corpus, tiny_vectors):
    """`add_teacher_kbest(texts=...)` fills a transfer cache; a kbest student with a transfer set needs one."""
    from swener.students.run import StudentSettings, train_student
    from swener.teacher.run import add_teacher_kbest, read_text_sentences

    model = tmp_path / "teacher.pt"
    _student("cnn-crf", tiny_vectors, corpus).save(model)
    rng = np.random.default_rng(8)
    text = tmp_path / "news.txt"
    text.write_text("Anna Berg bor i Umeå. Hon arbetar på Volvo i Göteborg.\nRegeringen möttes i går.\n",
                    encoding="utf-8")
    soft_dir = tmp_path / "soft"
    caches = {"train": ([s.tokens for s in corpus.splits["train"][:12]], "webbnyheter2012", "train"),
              "transfer-news": (read_text_sentences(text), "text:news.txt", "transfer")}
    for name, (tokens, source, split) in caches.items():
        dists = [np.log(rng.dirichlet(np.ones(len(TAGS)), size=len(t))) for t in tokens]
        softlabels.write(soft_dir / f"{name}.npz", dists, tags=TAGS, tokens=tokens, teacher_sha256=sha256_of(model),
                         corpus=source, split=split)
    settings = StudentSettings(family="bilstm-crf", alpha=0.5, kd_target="kbest", epochs=1, hidden_size=8,
                               max_sentences=12, transfer_text=str(text))
    add_teacher_kbest(model, "webbnyheter2012", soft_dir, ["train"], k=2)
    with pytest.raises(SwenerError, match="transfer-news.npz: no k-best paths cached .* --text"):
        train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run", eval_corpora=())
    assert not (tmp_path / "run").exists()

    assert add_teacher_kbest(model, "webbnyheter2012", soft_dir, [], k=2, texts=[text]) == [
        soft_dir / "transfer-news.npz"]
    tokens = caches["transfer-news"][0]
    expected = list(teacher_kbest(flair.nn.Classifier.load(model), [Sentence(t) for t in tokens], k=2))
    soft = softlabels.read(soft_dir / "transfer-news.npz")
    for i, (paths, logp) in enumerate(expected):
        got_paths, got_logp = soft.sentence_kbest(i)
        assert np.array_equal(got_paths, paths) and np.allclose(got_logp, logp)
    results = train_student(settings, "webbnyheter2012", tiny_vectors, soft_dir, tmp_path / "run", eval_corpora=())
    assert results["training"]["train_sentences"] == 12 + len(tokens)
