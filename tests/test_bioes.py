"""The BIOES chain against brute-force enumeration of every tag sequence of short sentences."""
import itertools

import torch

from swener.kd import bioes

TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"]


def valid(sequence) -> bool:
    return bioes.invalid_transitions([TAGS[i] for i in sequence]) == 0


def test_validity_rules_by_hand():
    assert bioes.invalid_transitions(["B-PER", "I-PER", "E-PER", "O", "S-LOC"]) == 0
    assert bioes.invalid_transitions(["S-ORG", "E-ORG"]) == 1  # "Uppsala universitet" as the old teacher tagged it
    assert bioes.invalid_transitions(["I-PER"]) == 2  # cannot start, cannot end
    assert bioes.invalid_transitions(["B-PER", "E-LOC"]) == 1  # types must agree


def brute_force(logp: torch.Tensor):
    """Marginals and the best valid path by enumerating all K^T sequences of one sentence."""
    steps, size = logp.shape
    marginals = torch.zeros(steps, size, dtype=torch.float64)
    best, best_score, total = None, -float("inf"), 0.0
    for sequence in itertools.product(range(size), repeat=steps):
        if not valid(sequence):
            continue
        score = float(sum(logp[t, y] for t, y in enumerate(sequence)))
        weight = torch.exp(torch.tensor(score, dtype=torch.float64))
        total += weight
        for t, y in enumerate(sequence):
            marginals[t, y] += weight
        if score > best_score:
            best, best_score = list(sequence), score
    return marginals / total, best


def test_marginals_and_viterbi_against_brute_force():
    torch.manual_seed(3)
    lengths = torch.tensor([4, 2, 1])
    logp = torch.log_softmax(torch.randn(3, 4, len(TAGS), dtype=torch.float64) * 2, dim=-1)
    marginals = bioes.log_marginals(logp, lengths, TAGS).exp()
    paths = bioes.viterbi(logp, lengths, TAGS)
    for b, n in enumerate(lengths.tolist()):
        expected, best = brute_force(logp[b, :n])
        assert torch.allclose(marginals[b, :n], expected, atol=1e-9)
        assert paths[b] == best
        assert valid(paths[b])
        assert torch.all(marginals[b, n:] == 0)  # padding carries no mass


def test_no_invalid_sequence_gets_mass():
    # a teacher whose argmax is the incoherent S-PER E-PER: the chain moves the mass to valid sequences
    logp = torch.full((1, 2, len(TAGS)), -8.0, dtype=torch.float64)
    logp[0, 0, TAGS.index("S-PER")] = 0.0
    logp[0, 1, TAGS.index("E-PER")] = 0.0
    logp = torch.log_softmax(logp, dim=-1)
    marginals = bioes.log_marginals(logp, torch.tensor([2]), TAGS).exp()[0]
    assert marginals[0, TAGS.index("I-PER")] == 0 and marginals[0, TAGS.index("E-PER")] == 0  # cannot start
    assert marginals[1, TAGS.index("B-PER")] == 0 and marginals[1, TAGS.index("I-PER")] == 0  # cannot end
    assert torch.allclose(marginals.sum(-1), torch.ones(2, dtype=torch.float64))
    path = [TAGS[i] for i in bioes.viterbi(logp, torch.tensor([2]), TAGS)[0]]
    assert bioes.invalid_transitions(path) == 0 and path in (["B-PER", "E-PER"], ["S-PER", "O"], ["S-PER", "S-PER"])
