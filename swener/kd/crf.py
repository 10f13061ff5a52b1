"""Linear-chain CRF computations on Flair's CRF feature layout.

Flair's `SequenceTagger` with `use_crf=True` returns from `forward` a tuple
`(features, lengths, transitions)` where

    features[b, t, to, from] = emission[b, t, to] + transitions[to, from]

has shape (batch_size, seq_length, num_tags, num_tags). The tag dictionary holds
`<START>` and `<STOP>`; a path y_0 .. y_{L-1} of a sentence of length L scores

    features[b, 0, y_0, START] + sum_{t=1}^{L-1} features[b, t, y_t, y_{t-1}]
        + transitions[STOP, y_{L-1}]

and, as in Flair's `ViterbiLoss`, every tag of the dictionary (START and STOP included,
which Flair keeps near -10000 through their transitions) is a state of the chain. So
`log_partition` equals Flair's log Z, and Flair's loss is `log_partition - sequence_score`.

Positions at or beyond a sentence's length are padding and never read.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

if TYPE_CHECKING:
    from flair.models import SequenceTagger

__all__ = [
    "features_from_scores",
    "sequence_score",
    "log_partition",
    "marginals",
    "kbest",
]

Lengths = Union[torch.Tensor, Sequence[int]]


def features_from_scores(emissions: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
    """Builds Flair's CRF features [B, T, K, K] from emissions [B, T, K] and transitions[to, from] [K, K]."""
    if emissions.dim() != 3:
        raise ValueError(f"emissions must have dimension of 3, got {emissions.dim()}")
    num_tags = emissions.size(2)
    if transitions.shape != (num_tags, num_tags):
        raise ValueError(
            f"expected transitions of shape {(num_tags, num_tags)}, got {tuple(transitions.shape)}"
        )
    return emissions.unsqueeze(-1) + transitions


def sequence_score(
    features: torch.Tensor,
    lengths: Lengths,
    tags: torch.Tensor,
    start_idx: int,
    stop_idx: int,
    transitions: torch.Tensor,
) -> torch.Tensor:
    """Scores of given tag paths [B, T] (padding ignored) as Flair's ViterbiLoss scores gold paths: [B].

    Flair's loss of a batch is `(log_partition(...) - sequence_score(...)).sum()`.
    """
    lengths = _validate(features, lengths, start_idx, stop_idx, transitions)
    if tags.shape != features.shape[:2]:
        raise ValueError(
            f"expected tags of shape {tuple(features.shape[:2])}, got {tuple(tags.shape)}"
        )
    batch_size, seq_length = tags.shape
    mask = _mask(lengths, seq_length)
    tags = torch.where(mask, tags.long(), torch.zeros_like(tags, dtype=torch.long))
    previous = torch.cat([torch.full_like(tags[:, :1], start_idx), tags[:, :-1]], dim=1)
    steps = features.gather(3, previous[:, :, None, None].expand(-1, -1, features.size(2), 1))
    steps = steps.squeeze(3).gather(2, tags.unsqueeze(2)).squeeze(2)
    last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    return torch.where(mask, steps, torch.zeros_like(steps)).sum(1) + transitions[stop_idx, last]


def log_partition(
    features: torch.Tensor,
    lengths: Lengths,
    start_idx: int,
    stop_idx: int,
    transitions: torch.Tensor,
) -> torch.Tensor:
    """Log of the sum of exp(score) over all tag paths (forward algorithm), one value per sentence: [B].

    `transitions` is needed for the final transition to STOP, which Flair keeps outside
    `features`; pass the third element of the tuple that Flair's `forward` returns.
    """
    lengths = _validate(features, lengths, start_idx, stop_idx, transitions)
    alpha = _forward(features, lengths, start_idx)[-1]
    return torch.logsumexp(alpha + transitions[stop_idx], dim=1)


def marginals(
    features: torch.Tensor,
    lengths: Lengths,
    start_idx: int,
    stop_idx: int,
    transitions: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Posterior log-marginals log P(y_t = k | x) by forward-backward: [B, T, K], differentiable.

    Each real position is a log-distribution over all K tags of the dictionary (START and
    STOP included; their mass is ~exp(-10000) under Flair's transitions). Padded positions
    hold log(1/K), a uniform log-distribution, so they are finite and mask-free code does
    not produce NaN; mask them out all the same.

    `transitions` is optional: without it the STOP transitions are read from
    `features[b, L_b - 1, stop_idx, :]`, which under Flair's layout differs from
    `transitions[stop_idx]` by a constant per sentence and so gives the same marginals.
    """
    lengths = _validate(features, lengths, start_idx, stop_idx, transitions)
    batch_size, seq_length, num_tags, _ = features.shape
    mask = _mask(lengths, seq_length)
    if transitions is None:
        last = (lengths - 1)[:, None, None, None].expand(-1, 1, 1, num_tags)
        stop_scores = features[:, :, stop_idx : stop_idx + 1, :].gather(1, last)[:, 0, 0, :]
    else:
        stop_scores = transitions[stop_idx].unsqueeze(0).expand(batch_size, -1)

    alphas = _forward(features, lengths, start_idx)
    log_z = torch.logsumexp(alphas[-1] + stop_scores, dim=1)

    # beta[t][b, i]: log-sum of scores of all continuations from tag i at t to STOP
    beta = stop_scores
    betas = [beta]
    for t in range(seq_length - 2, -1, -1):
        step = torch.logsumexp(features[:, t + 1] + beta.unsqueeze(2), dim=1)
        beta = torch.where(mask[:, t + 1 : t + 2], step, beta)
        betas.append(beta)
    betas.reverse()

    log_marginals = torch.stack(alphas, 1) + torch.stack(betas, 1) - log_z[:, None, None]
    uniform = torch.full_like(log_marginals, -math.log(num_tags))
    return torch.where(mask.unsqueeze(2), log_marginals, uniform)


def tagger_marginals(tagger: SequenceTagger, scores: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                     lengths: torch.Tensor) -> torch.Tensor:
    """Posterior log-marginals [B, T, K] of a Flair CRF tagger's scores, as its `forward` returns them
    ((features [B, T, K, K], lengths, transitions)), with its dictionary's <START> and <STOP>."""
    features, _, transitions = scores
    return marginals(features.float(), lengths, tagger.label_dictionary.get_idx_for_item("<START>"),
                     tagger.label_dictionary.get_idx_for_item("<STOP>"), transitions.float())


def kbest(
    features: torch.Tensor,
    lengths: Lengths,
    k: int,
    start_idx: int,
    stop_idx: int,
    transitions: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best tag paths per sentence and their scores (list Viterbi), best first.

    Returns `(paths, scores)`: paths [B, k, T] of tag indices, padded positions set to
    `stop_idx`; scores [B, k] on the scale of `sequence_score`. A sentence with fewer than
    k paths (K**L < k) gets score -inf in the missing slots, their paths are meaningless.
    Not differentiable: the scores are computed on detached inputs.
    """
    lengths = _validate(features, lengths, start_idx, stop_idx, transitions)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    batch_size, seq_length, num_tags, _ = features.shape
    mask = _mask(lengths, seq_length)
    features = features.detach()

    # score[b, j, r]: r-th best score of a prefix ending in tag j
    score = features.new_full((batch_size, num_tags, k), float("-inf"))
    score[:, :, 0] = features[:, 0, :, start_idx]
    back_tag: list[torch.Tensor] = []
    back_rank: list[torch.Tensor] = []
    for t in range(1, seq_length):
        # candidates[b, j, i * k + r] = score[b, i, r] + features[b, t, j, i]
        candidates = (score.unsqueeze(1) + features[:, t].unsqueeze(3)).reshape(batch_size, num_tags, -1)
        step, index = candidates.topk(k, dim=2)
        live = mask[:, t, None, None]
        score = torch.where(live, step, score)
        back_tag.append(torch.where(live, index // k, -1))
        back_rank.append(torch.where(live, index % k, -1))

    final = (score + transitions.detach()[stop_idx][None, :, None]).reshape(batch_size, -1)
    scores, index = final.topk(k, dim=1)
    tag, rank = index // k, index % k
    paths = torch.full((batch_size, k, seq_length), stop_idx, dtype=torch.long, device=features.device)
    for t in range(seq_length - 1, -1, -1):
        at = mask[:, t].unsqueeze(1)
        paths[:, :, t] = torch.where(at, tag, paths[:, :, t])
        if t > 0:
            prev_tag = back_tag[t - 1].reshape(batch_size, -1).gather(1, tag * k + rank)
            prev_rank = back_rank[t - 1].reshape(batch_size, -1).gather(1, tag * k + rank)
            tag = torch.where(at, prev_tag, tag)
            rank = torch.where(at, prev_rank, rank)
    return paths, scores


def _forward(features: torch.Tensor, lengths: torch.Tensor, start_idx: int) -> list[torch.Tensor]:
    """alpha[t][b, j]: log-sum of scores of all prefixes ending in tag j at t; frozen past a sentence's end."""
    mask = _mask(lengths, features.size(1))
    alpha = features[:, 0, :, start_idx]
    alphas = [alpha]
    for t in range(1, features.size(1)):
        step = torch.logsumexp(features[:, t] + alpha.unsqueeze(1), dim=2)
        alpha = torch.where(mask[:, t : t + 1], step, alpha)
        alphas.append(alpha)
    return alphas


def _mask(lengths: torch.Tensor, seq_length: int) -> torch.Tensor:
    return torch.arange(seq_length, device=lengths.device) < lengths.unsqueeze(1)


def _validate(
    features: torch.Tensor,
    lengths: Lengths,
    start_idx: int,
    stop_idx: int,
    transitions: Optional[torch.Tensor],
) -> torch.Tensor:
    """Checks shapes and indices; returns lengths as a LongTensor on the features' device."""
    if features.dim() != 4:
        raise ValueError(f"features must have dimension of 4, got {features.dim()}")
    batch_size, seq_length, num_tags, num_from = features.shape
    if num_tags != num_from:
        raise ValueError(
            "expected features of shape (batch_size, seq_length, num_tags, num_tags), "
            f"got {tuple(features.shape)}"
        )
    if seq_length == 0:
        raise ValueError("features must have at least one position")
    if not torch.is_floating_point(features):
        raise ValueError(f"features must be floating point, got {features.dtype}")
    for name, idx in (("start_idx", start_idx), ("stop_idx", stop_idx)):
        if not 0 <= idx < num_tags:
            raise ValueError(f"{name} must be in [0, {num_tags}), got {idx}")
    if start_idx == stop_idx:
        raise ValueError(f"start_idx and stop_idx must differ, both are {start_idx}")
    if transitions is not None and transitions.shape != (num_tags, num_tags):
        raise ValueError(
            f"expected transitions of shape {(num_tags, num_tags)}, got {tuple(transitions.shape)}"
        )
    lengths = torch.as_tensor(lengths, device=features.device)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got {lengths.dtype}")
    lengths = lengths.long()
    if lengths.shape != (batch_size,):
        raise ValueError(f"expected lengths of shape ({batch_size},), got {tuple(lengths.shape)}")
    if batch_size and (lengths.min() < 1 or lengths.max() > seq_length):
        raise ValueError(f"lengths must be in [1, {seq_length}], got {lengths.tolist()}")
    return lengths
