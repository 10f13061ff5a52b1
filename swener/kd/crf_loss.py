"""The CRF negative log-likelihood from emissions and transitions, for the students' lean training path.

The same loss as Flair's `ViterbiLoss` (`log Z - gold score`, START/STOP as in Flair's
layout: `transitions[to, from]`), computed without Flair's [B, T, K, K] feature tensor and
without in-place slice updates: Flair's version slices that tensor once per time step, and
autograd then builds and adds a zero tensor of its full size per step (about a quarter of a
BiLSTM-CRF training step on CPU, measured with torch.profiler).
"""
from __future__ import annotations

import torch


def log_partition(emissions: torch.Tensor, lengths: torch.Tensor, transitions: torch.Tensor, start: int,
                  stop: int) -> torch.Tensor:
    """log Z [B] of a linear-chain CRF over emissions [B, T, K], transitions[to, from] (Flair's layout)."""
    length = emissions.size(1)
    mask = torch.arange(length, device=emissions.device)[None, :] < lengths.to(emissions.device)[:, None]
    steps = emissions.unbind(1)
    alpha = steps[0] + transitions[:, start]
    trans = transitions.unsqueeze(0)
    for t in range(1, length):
        following = torch.logsumexp(alpha.unsqueeze(1) + trans, dim=2) + steps[t]
        alpha = torch.where(mask[:, t:t + 1], following, alpha)
    return torch.logsumexp(alpha + transitions[stop].unsqueeze(0), dim=1)


def path_scores(emissions: torch.Tensor, lengths: torch.Tensor, paths: torch.Tensor, transitions: torch.Tensor,
                start: int, stop: int) -> torch.Tensor:
    """Scores [B, k] of tag paths [B, k, T] (padding ignored) under emissions [B, T, K] and transitions."""
    batch, k, length = paths.shape
    lengths = lengths.to(emissions.device)
    mask = (torch.arange(length, device=emissions.device)[None, :] < lengths[:, None]).unsqueeze(1)
    paths = paths.masked_fill(~mask, 0)
    previous = torch.cat([torch.full_like(paths[:, :, :1], start), paths[:, :, :-1]], dim=2)
    emitted = emissions.unsqueeze(1).expand(batch, k, length, emissions.size(2)).gather(3, paths.unsqueeze(3))
    steps = emitted.squeeze(3) + transitions[paths, previous]
    last = paths.gather(2, (lengths - 1).clamp(min=0)[:, None, None].expand(batch, k, 1)).squeeze(2)
    return steps.masked_fill(~mask, 0.0).sum(dim=2) + transitions[stop, last]


def crf_nll(emissions: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor, transitions: torch.Tensor,
            start: int, stop: int, log_z: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sentence loss [B] of gold tags [B, T] (padding ignored) under emissions [B, T, K].

    `log_z`: the batch's `log_partition`, when the caller has it already (the k-best KD term
    shares it).
    """
    if emissions.dim() != 3 or tags.shape != emissions.shape[:2]:
        raise ValueError(f"expected emissions [B, T, K] and tags [B, T], got {tuple(emissions.shape)} "
                         f"and {tuple(tags.shape)}")
    if log_z is None:
        log_z = log_partition(emissions, lengths, transitions, start, stop)
    return log_z - path_scores(emissions, lengths, tags.unsqueeze(1), transitions, start, stop).squeeze(1)


def pad_tags(gold: torch.Tensor, lengths: torch.Tensor, length: int) -> torch.Tensor:
    """Flat gold tags (sentence after sentence) as a [B, T] tensor padded with 0."""
    mask = torch.arange(length, device=gold.device)[None, :] < lengths.to(gold.device)[:, None]
    padded = torch.zeros(mask.shape, dtype=torch.long, device=gold.device)
    padded[mask] = gold
    return padded
