"""swener.kd.crf against brute-force enumeration over all tag paths, and against Flair's own CRF."""
from __future__ import annotations

import itertools
import math
import os

import pytest
import torch

from swener.kd import crf

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# 4 real tags + <START> + <STOP>, Flair puts START/STOP last
NUM_TAGS, START, STOP = 6, 4, 5
LENGTHS = [4, 2, 3, 1]


def random_case(seed: int = 0, flair_init: bool = False, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), NUM_TAGS, generator=gen, dtype=dtype)
    transitions = torch.randn(NUM_TAGS, NUM_TAGS, generator=gen, dtype=dtype)
    if flair_init:
        transitions[START, :] = -10000
        transitions[:, STOP] = -10000
    for b, length in enumerate(LENGTHS):
        emissions[b, length:] = 1e4  # padding that must never be read
    return emissions, transitions


def path_score(emissions: torch.Tensor, transitions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    """Score of one path straight from emissions and transitions[to, from], as Flair defines it."""
    score = transitions[path[0], START] + emissions[0, path[0]]
    for t in range(1, len(path)):
        score = score + transitions[path[t], path[t - 1]] + emissions[t, path[t]]
    return score + transitions[STOP, path[-1]]


def brute_force(emissions: torch.Tensor, transitions: torch.Tensor, length: int):
    """log Z and marginals [length, K] of one sentence by enumerating all K**length paths."""
    paths = list(itertools.product(range(NUM_TAGS), repeat=length))
    scores = torch.stack([path_score(emissions, transitions, p) for p in paths])
    log_z = torch.logsumexp(scores, 0)
    probs = (scores - log_z).exp()
    marg = torch.zeros(length, NUM_TAGS, dtype=emissions.dtype)
    for p, prob in zip(paths, probs):
        for t, tag in enumerate(p):
            marg[t, tag] += prob
    return log_z, marg, paths, scores


@pytest.mark.parametrize("flair_init", [False, True])
def test_log_partition_matches_brute_force(flair_init):
    emissions, transitions = random_case(1, flair_init)
    features = crf.features_from_scores(emissions, transitions)
    log_z = crf.log_partition(features, LENGTHS, START, STOP, transitions)
    assert log_z.shape == (len(LENGTHS),)
    for b, length in enumerate(LENGTHS):
        expected, *_ = brute_force(emissions[b], transitions, length)
        assert torch.allclose(log_z[b], expected, atol=1e-9), (b, log_z[b], expected)


@pytest.mark.parametrize("flair_init", [False, True])
@pytest.mark.parametrize("pass_transitions", [False, True])
def test_marginals_match_brute_force(flair_init, pass_transitions):
    emissions, transitions = random_case(2, flair_init)
    features = crf.features_from_scores(emissions, transitions)
    log_m = crf.marginals(features, LENGTHS, START, STOP, transitions if pass_transitions else None)
    assert log_m.shape == (len(LENGTHS), max(LENGTHS), NUM_TAGS)
    for b, length in enumerate(LENGTHS):
        _, expected, *_ = brute_force(emissions[b], transitions, length)
        assert torch.allclose(log_m[b, :length].exp(), expected, atol=1e-9)
        # padding: a uniform log-distribution
        assert torch.equal(log_m[b, length:], torch.full_like(log_m[b, length:], -math.log(NUM_TAGS)))


def test_float32_flair_scale_is_finite_and_normalised():
    emissions, transitions = random_case(3, flair_init=True, dtype=torch.float32)
    features = crf.features_from_scores(emissions * 5, transitions)
    log_m = crf.marginals(features, LENGTHS, START, STOP, transitions)
    assert torch.isfinite(log_m).all()
    assert torch.allclose(log_m.exp().sum(-1), torch.ones(len(LENGTHS), max(LENGTHS)), atol=1e-5)
    assert (log_m[:, :, [START, STOP]][torch.arange(max(LENGTHS)) < torch.tensor(LENGTHS)[:, None]] < -1000).all()


def test_sequence_score_matches_direct_formula():
    emissions, transitions = random_case(4)
    features = crf.features_from_scores(emissions, transitions)
    tags = torch.randint(0, NUM_TAGS, (len(LENGTHS), max(LENGTHS)), generator=torch.Generator().manual_seed(0))
    scores = crf.sequence_score(features, LENGTHS, tags, START, STOP, transitions)
    for b, length in enumerate(LENGTHS):
        expected = path_score(emissions[b], transitions, tuple(tags[b, :length].tolist()))
        assert torch.allclose(scores[b], expected)


def test_kbest_matches_brute_force():
    emissions, transitions = random_case(5)
    features = crf.features_from_scores(emissions, transitions)
    k = 7
    paths, scores = crf.kbest(features, LENGTHS, k, START, STOP, transitions)
    assert paths.shape == (len(LENGTHS), k, max(LENGTHS)) and scores.shape == (len(LENGTHS), k)
    for b, length in enumerate(LENGTHS):
        _, _, all_paths, all_scores = brute_force(emissions[b], transitions, length)
        best = all_scores.sort(descending=True).values[:k]
        n = min(k, len(all_paths))
        assert torch.allclose(scores[b, :n], best[:n])
        assert (scores[b, n:] == float("-inf")).all()
        for r in range(n):
            path = tuple(paths[b, r, :length].tolist())
            assert torch.allclose(path_score(emissions[b], transitions, path), scores[b, r])
            assert (paths[b, r, length:] == STOP).all()
        assert len({tuple(paths[b, r, :length].tolist()) for r in range(n)}) == n


def test_marginals_are_differentiable():
    emissions, transitions = random_case(6)
    emissions = emissions.clone().requires_grad_()
    transitions = transitions.clone().requires_grad_()
    log_m = crf.marginals(crf.features_from_scores(emissions, transitions), LENGTHS, START, STOP)
    weights = torch.randn(log_m.shape, dtype=log_m.dtype)
    (log_m * weights).sum().backward()
    assert torch.isfinite(emissions.grad).all() and torch.isfinite(transitions.grad).all()
    for b, length in enumerate(LENGTHS):
        assert (emissions.grad[b, length:] == 0).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f, l, tr: crf.log_partition(f[0], l, START, STOP, tr), "dimension of 4"),
        (lambda f, l, tr: crf.log_partition(f[..., :-1], l, START, STOP, tr), "num_tags, num_tags"),
        (lambda f, l, tr: crf.log_partition(f, l[:-1], START, STOP, tr), "lengths of shape"),
        (lambda f, l, tr: crf.log_partition(f, [0] + l[1:], START, STOP, tr), "lengths must be in"),
        (lambda f, l, tr: crf.log_partition(f, [9] + l[1:], START, STOP, tr), "lengths must be in"),
        (lambda f, l, tr: crf.log_partition(f, l, START, NUM_TAGS, tr), "stop_idx must be in"),
        (lambda f, l, tr: crf.log_partition(f, l, START, START, tr), "must differ"),
        (lambda f, l, tr: crf.log_partition(f, l, START, STOP, tr[:-1]), "transitions of shape"),
        (lambda f, l, tr: crf.marginals(f, torch.tensor(l, dtype=torch.float), START, STOP), "integers"),
        (lambda f, l, tr: crf.kbest(f, l, 0, START, STOP, tr), "k must be"),
    ],
)
def test_shape_errors(call, message):
    emissions, transitions = random_case(0)
    features = crf.features_from_scores(emissions, transitions)
    with pytest.raises(ValueError, match=message):
        call(features, list(LENGTHS), transitions)


# --- against Flair's own CRF -------------------------------------------------------------


@pytest.fixture(scope="module")
def flair_tagger():
    flair = pytest.importorskip("flair")
    from flair.data import Dictionary, Sentence
    from flair.embeddings import OneHotEmbeddings
    from flair.models import SequenceTagger

    flair.set_seed(0)
    texts = ["Anna bor i Göteborg nu", "Per åkte till Malmö", "Hej", "Volvo i Göteborg"]
    spans = [[(0, 1, "PER"), (3, 4, "LOC")], [(0, 1, "PER"), (3, 4, "LOC")], [], [(0, 1, "ORG"), (2, 3, "LOC")]]
    sentences = []
    vocab = Dictionary()
    for text, entity_spans in zip(texts, spans):
        sentence = Sentence(text.split())
        for start, end, label in entity_spans:
            sentence[start:end].add_label("ner", label)
        for token in sentence:
            vocab.add_item(token.text)
        sentences.append(sentence)
    labels = Dictionary(add_unk=False)
    for label in ("PER", "LOC", "ORG"):
        labels.add_item(label)
    labels.span_labels = True
    tagger = SequenceTagger(
        embeddings=OneHotEmbeddings(vocab, embedding_length=8),
        tag_dictionary=labels,
        tag_type="ner",
        hidden_size=8,
        use_crf=True,
        word_dropout=0.0,
        locked_dropout=0.0,
    )
    tagger.eval()
    with torch.no_grad():
        tagger.linear.weight.mul_(5.0)  # sharper emissions than at initialisation
    return tagger, sentences


def test_log_partition_agrees_with_flair_viterbi_loss(flair_tagger):
    tagger, sentences = flair_tagger
    sentences = sorted(sentences, key=len, reverse=True)
    start = tagger.label_dictionary.get_idx_for_item("<START>")
    stop = tagger.label_dictionary.get_idx_for_item("<STOP>")
    with torch.no_grad():
        flair_loss, _ = tagger.forward_loss(sentences)
        features, lengths, transitions = tagger.forward(*tagger._prepare_tensors(sentences))
        gold = tagger._prepare_label_tensor(sentences)
        tags = torch.zeros(features.shape[:2], dtype=torch.long)
        for b, chunk in enumerate(gold.split(lengths.tolist())):
            tags[b, : len(chunk)] = chunk
        log_z = crf.log_partition(features, lengths, start, stop, transitions)
        gold_score = crf.sequence_score(features, lengths, tags, start, stop, transitions)
        log_m = crf.marginals(features, lengths, start, stop)
    ours = (log_z - gold_score).sum()
    assert torch.allclose(ours, flair_loss, rtol=1e-5, atol=1e-4), (ours, flair_loss)
    assert torch.allclose(
        log_m.exp().sum(-1)[torch.arange(features.size(1)) < lengths[:, None]], torch.ones(int(lengths.sum()))
    )


def test_kbest_top_path_is_flair_viterbi(flair_tagger):
    from flair.models.sequence_tagger_utils.viterbi import ViterbiDecoder

    tagger, sentences = flair_tagger
    sentences = sorted(sentences, key=len, reverse=True)
    start = tagger.label_dictionary.get_idx_for_item("<START>")
    stop = tagger.label_dictionary.get_idx_for_item("<STOP>")
    with torch.no_grad():
        features, lengths, transitions = tagger.forward(*tagger._prepare_tensors(sentences))
        decoded, _ = ViterbiDecoder(tagger.label_dictionary).decode(
            (features, lengths, transitions), False, sentences
        )
        paths, _ = crf.kbest(features, lengths, 3, start, stop, transitions)
    for b, tags in enumerate(decoded):
        names = [tagger.label_dictionary.get_item_for_index(i) for i in paths[b, 0, : lengths[b]].tolist()]
        assert names == [tag for tag, _ in tags]
