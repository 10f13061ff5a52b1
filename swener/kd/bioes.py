"""The BIOES chain: which tag may follow which, constrained Viterbi and constrained marginals.

A softmax tagger scores each token on its own, so its argmax can be an impossible sequence
(`S-ORG E-ORG`). Decoding it as a chain whose transitions are 0 where BIOES allows them and
-inf elsewhere gives the most probable *valid* sequence; forward-backward on the same chain
gives per-token marginals that put no mass on any invalid sequence:

    p(y | x) ∝ prod_t softmax(x)_t[y_t] * [y is a valid BIOES sequence]
"""
from __future__ import annotations

from typing import Sequence

import torch

NEG_INF = float("-inf")


def _kind(tag: str) -> tuple[str, str]:
    """('O', '') for O, ('B', 'PER') for B-PER, ('?', tag) for anything else (<unk>, <START>)."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "?", tag


def constraints(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-space masks (0 allowed, -inf not): transitions[from, to], start[tag], end[tag]."""
    kinds = [_kind(t) for t in tags]
    size = len(tags)
    transitions = torch.full((size, size), NEG_INF)
    start = torch.full((size,), NEG_INF)
    end = torch.full((size,), NEG_INF)
    for i, (prev, prev_type) in enumerate(kinds):
        if prev in "OBS":
            start[i] = 0.0
        if prev in "OES":
            end[i] = 0.0
        for j, (nxt, nxt_type) in enumerate(kinds):
            if prev in "OES" and nxt in "OBS":
                transitions[i, j] = 0.0
            elif prev in "BI" and nxt in "IE" and prev_type == nxt_type:
                transitions[i, j] = 0.0
    return transitions, start, end


def _mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < lengths[:, None]


def log_marginals(logp: torch.Tensor, lengths: torch.Tensor, tags: Sequence[str]) -> torch.Tensor:
    """Per-token log-marginals [B, T, K] of the BIOES-constrained chain over emissions `logp` [B, T, K].

    Padding positions (t >= length) are left at -inf.
    """
    transitions, start, end = (m.to(logp.dtype) for m in constraints(tags))
    batch, steps, size = logp.shape
    lengths = lengths.to(torch.long)
    alphas = [logp[:, 0] + start]
    for t in range(1, steps):
        step = torch.logsumexp(alphas[-1][:, :, None] + transitions, dim=1) + logp[:, t]
        alphas.append(torch.where((t < lengths)[:, None], step, alphas[-1]))
    alpha = torch.stack(alphas, dim=1)
    betas = [end.expand(batch, size)]
    for t in range(steps - 2, -1, -1):
        step = torch.logsumexp(transitions + (logp[:, t + 1] + betas[0])[:, None, :], dim=2)
        betas.insert(0, torch.where((t + 1 < lengths)[:, None], step, end.expand(batch, size)))
    beta = torch.stack(betas, dim=1)
    last = alpha[torch.arange(batch), lengths - 1]
    log_z = torch.logsumexp(last + end, dim=1)
    marginals = alpha + beta - log_z[:, None, None]
    return torch.where(_mask(lengths, steps)[:, :, None], marginals, torch.full_like(marginals, NEG_INF))


def viterbi(logp: torch.Tensor, lengths: torch.Tensor, tags: Sequence[str]) -> list[list[int]]:
    """The most probable valid BIOES tag index sequence of each sentence (emissions `logp` [B, T, K])."""
    transitions, start, end = (m.to(logp.dtype) for m in constraints(tags))
    batch, steps, _ = logp.shape
    lengths = lengths.to(torch.long)
    delta = logp[:, 0] + start
    pointers = []
    for t in range(1, steps):
        scores, best = (delta[:, :, None] + transitions).max(dim=1)
        pointers.append(best)
        delta = torch.where((t < lengths)[:, None], scores + logp[:, t], delta)
    paths = []
    for b, length in enumerate(lengths.tolist()):
        tag = int((delta[b] + end).argmax())
        path = [tag]
        for t in range(length - 1, 0, -1):
            tag = int(pointers[t - 1][b, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths


def invalid_transitions(sequence: Sequence[str]) -> int:
    """How many places a tag sequence breaks BIOES (start, each transition, end)."""
    tags = sorted(set(sequence) | {"O"})
    transitions, start, end = constraints(tags)
    index = [tags.index(t) for t in sequence]
    if not index:
        return 0
    bad = int(start[index[0]] != 0) + int(end[index[-1]] != 0)
    return bad + sum(int(transitions[a, b] != 0) for a, b in zip(index, index[1:]))


def kbest(logp: torch.Tensor, lengths: torch.Tensor, tags: Sequence[str], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most probable valid BIOES sequences of the chain over emissions `logp` [B, T, K], best first.

    Returns paths [B, k, T] (tag indices; padding and missing paths are meaningless) and
    their log-probabilities under the constrained chain [B, k] (path score - log Z; -inf
    where a sentence has fewer than k valid sequences). List Viterbi (`swener.kd.crf.kbest`)
    on the chain with two extra states for its start and end.
    """
    from swener.kd import crf

    transitions, start, end = (m.to(torch.float64) for m in constraints(tags))
    batch, steps, size = logp.shape
    first, last = size, size + 1  # START and STOP states added after the tags
    chain = torch.full((size + 2, size + 2), NEG_INF, dtype=torch.float64)  # chain[to, from]
    chain[:size, :size] = transitions.T
    chain[:size, first] = start
    chain[last, :size] = end
    emissions = torch.full((batch, steps, size + 2), NEG_INF, dtype=torch.float64)
    emissions[..., :size] = logp.detach().to(torch.float64)
    features = crf.features_from_scores(emissions, chain)
    lengths = lengths.to(torch.long)
    paths, scores = crf.kbest(features, lengths, k, first, last, chain)
    log_z = crf.log_partition(features, lengths, first, last, chain)
    return paths.clamp(max=size - 1), (scores - log_z[:, None]).to(logp.dtype)
