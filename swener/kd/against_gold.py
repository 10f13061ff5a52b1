"""How far a soft-label cache is from the gold tags of its sentences: what KD adds to the hard labels."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from swener.kd.softlabels import SoftLabels


def bioes_of_iob2(tags: Sequence[str]) -> list[str]:
    """The BIOES tags of an IOB2 sequence (the scheme every cache uses)."""
    from swener.data.tags import spans

    out = ["O"] * len(tags)
    for kind, start, end in spans(list(tags)):
        if end - start == 1:
            out[start] = f"S-{kind}"
            continue
        out[start], out[end - 1] = f"B-{kind}", f"E-{kind}"
        for i in range(start + 1, end - 1):
            out[i] = f"I-{kind}"
    return out


def against_gold(soft: SoftLabels, gold: Sequence[Sequence[str]]) -> dict:
    """How much a cache's distributions differ from the gold tags (IOB2) of its sentences: what KD adds to gold.

    `f1`: strict micro F1 of the per-token argmax, read as Flair reads BIOES spans; `token_accuracy`;
    `gold_mass`: the mean probability on the gold tag (1.0: the soft targets are the gold labels);
    `top_mass` and `confident`: the mean top probability and the share of tokens above 0.99.
    """
    from swener.data.tags import bioes_spans, spans

    if len(gold) != len(soft):
        raise ValueError(f"{len(gold)} gold sentences for {len(soft)} cached ones")
    index = {tag: i for i, tag in enumerate(soft.tags)}
    tp = fp = fn = 0
    gold_mass, top_mass, right = [], [], []
    for i, tags in enumerate(gold):
        probs = np.exp(soft.sentence(i).astype(np.float64))
        if len(tags) != len(probs):
            raise ValueError(f"sentence {i}: {len(tags)} gold tags for {len(probs)} cached tokens")
        target = np.array([index[t] for t in bioes_of_iob2(tags)])
        best = probs.argmax(axis=1)
        gold_mass.append(probs[np.arange(len(target)), target])
        top_mass.append(probs.max(axis=1))
        right.append(best == target)
        predicted = {(start, end, kind) for start, end, kind, _ in bioes_spans([soft.tags[j] for j in best])}
        truth = {(start, end, kind) for kind, start, end in spans(list(tags))}
        tp, fp, fn = tp + len(predicted & truth), fp + len(predicted - truth), fn + len(truth - predicted)
    top = np.concatenate(top_mass) if top_mass else np.zeros(0)
    return {"sentences": len(gold), "tokens": int(top.size), "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            "token_accuracy": float(np.concatenate(right).mean()) if right else 0.0,
            "gold_mass": float(np.concatenate(gold_mass).mean()) if gold_mass else 0.0,
            "top_mass": float(top.mean()) if top.size else 0.0, "confident": float((top > 0.99).mean()) if top.size
            else 0.0}
