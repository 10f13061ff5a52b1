"""The CRF negative log-likelihood from emissions and transitions, for the students' lean training path.

The same loss as Flair's `ViterbiLoss` (`log Z - gold score`, START/STOP as in Flair's
layout: `transitions[to, from]`), computed without Flair's [B, T, K, K] feature tensor and
without in-place slice updates: Flair's version slices that tensor once per time step, and
autograd then builds and adds a zero tensor of its full size per step (about a quarter of a
BiLSTM-CRF training step on CPU, measured with torch.profiler).
"""
from __future__ import annotations

import torch


def crf_nll(emissions: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor, transitions: torch.Tensor,
            start: int, stop: int) -> torch.Tensor:
    """Per-sentence loss [B] of gold tags [B, T] (padding ignored) under emissions [B, T, K]."""
    if emissions.dim() != 3 or tags.shape != emissions.shape[:2]:
        raise ValueError(f"expected emissions [B, T, K] and tags [B, T], got {tuple(emissions.shape)} "
                         f"and {tuple(tags.shape)}")
    batch, length, _ = emissions.shape
    lengths = lengths.to(emissions.device)
    mask = torch.arange(length, device=emissions.device)[None, :] < lengths[:, None]
    steps = emissions.unbind(1)
    alpha = steps[0] + transitions[:, start]
    trans = transitions.unsqueeze(0)
    for t in range(1, length):
        following = torch.logsumexp(alpha.unsqueeze(1) + trans, dim=2) + steps[t]
        alpha = torch.where(mask[:, t:t + 1], following, alpha)
    log_z = torch.logsumexp(alpha + transitions[stop].unsqueeze(0), dim=1)
    tags = tags.masked_fill(~mask, 0)
    previous = torch.cat([torch.full_like(tags[:, :1], start), tags[:, :-1]], dim=1)
    gold = emissions.gather(2, tags.unsqueeze(2)).squeeze(2) + transitions[tags, previous]
    last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    return log_z - (gold.masked_fill(~mask, 0.0).sum(dim=1) + transitions[stop, last])


def pad_tags(gold: torch.Tensor, lengths: torch.Tensor, length: int) -> torch.Tensor:
    """Flat gold tags (sentence after sentence) as a [B, T] tensor padded with 0."""
    mask = torch.arange(length, device=gold.device)[None, :] < lengths.to(gold.device)[:, None]
    padded = torch.zeros(mask.shape, dtype=torch.long, device=gold.device)
    padded[mask] = gold
    return padded
