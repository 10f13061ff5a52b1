"""Decoding tag scores in numpy: CRF Viterbi, per-token softmax, BIOES tags to spans.

No torch and no Flair: the exported (ONNX) tagger decodes with these, and so does the
student's lean path, so both give the tags and confidences Flair's SequenceTagger gives.
The CRF follows Flair's layout: `transitions[to, from]`, a path starts with a transition
from `<START>` and ends with one to `<STOP>`; the confidence of a token is the largest
softmax entry of its Viterbi scores (what Flair's `ViterbiDecoder` reports).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """A numerically stable softmax in the input's precision."""
    shifted = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def viterbi(emissions: np.ndarray, lengths: Sequence[int], transitions: np.ndarray, start: int, stop: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Best tag paths [B, T] of a batch of emissions [B, T, K], and the Viterbi scores [B, T, K].

    Positions at or beyond a sentence's length are padding; their tags are meaningless.
    `max_softmax(scores)` gives the confidences Flair reports.
    """
    emissions = np.asarray(emissions, dtype=np.float32)
    transitions = np.asarray(transitions, dtype=np.float32)
    batch, length, k = emissions.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if batch == 0 or length == 0:
        return np.zeros((batch, length), dtype=np.int64), np.zeros((batch, length, k), dtype=np.float32)
    scores = np.empty((batch, length, k), dtype=np.float32)
    back = np.zeros((batch, length, k), dtype=np.int64)
    scores[:, 0] = emissions[:, 0] + transitions[:, start]
    for t in range(1, length):
        candidates = (emissions[:, t, :, None] + transitions[None]) + scores[:, t - 1, None, :]  # [B, to, from]
        back[:, t] = candidates.argmax(axis=2)
        scores[:, t] = np.take_along_axis(candidates, back[:, t, :, None], axis=2)[..., 0]
    rows = np.arange(batch)
    last = np.clip(lengths - 1, 0, None)
    final = scores[rows, last] + transitions[stop][None]
    tags = np.zeros((batch, length), dtype=np.int64)
    pointer = final.argmax(axis=1)
    for t in range(length - 1, -1, -1):
        here = t == last
        inside = t < last
        pointer = np.where(inside, back[rows, np.minimum(t + 1, length - 1), pointer], pointer)
        pointer = np.where(here, final.argmax(axis=1), pointer)
        tags[:, t] = pointer
    return tags, scores


def max_softmax(scores: np.ndarray) -> np.ndarray:
    """The largest softmax entry over the last axis: a token's confidence."""
    return softmax(np.asarray(scores, dtype=np.float32), axis=-1).max(axis=-1)


def softmax_tags(emissions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token argmax of the softmax [B, T] and its probability (Flair's softmax head)."""
    probabilities = softmax(np.asarray(emissions, dtype=np.float32), axis=-1)
    tags = probabilities.argmax(axis=-1)
    return tags, np.take_along_axis(probabilities, tags[..., None], axis=-1)[..., 0]


