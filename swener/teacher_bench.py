"""The soft-label pass's speed, measured in one process: corpus order against length-sorted
batches, float32 against bf16 autocast, and how far bf16's cached distributions agree."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from swener import corpora

log = logging.getLogger("swener")


def soft_label_speed(teacher_path: Path, corpus_name: str = "webbnyheter2012", split: str = "train",
                     max_sentences: int | None = 2000, batch_size: int = 32) -> dict:
    """Tokens per second of each variant of the pass on the first sentences of a split, and bf16 agreement."""
    import torch
    from flair.data import Sentence

    from swener.models import load_tagger
    from swener.teacher import log_distributions

    tagger = load_tagger(str(teacher_path))
    tokens = [s.tokens for s in corpora.load(corpus_name).splits[split][:max_sentences]]
    n_tokens = sum(len(t) for t in tokens)
    variants = {"corpus order, float32 (previous pass)": dict(sort_by_length=False, bf16=False),
                "length-sorted, float32": dict(sort_by_length=True, bf16=False),
                "length-sorted, bf16": dict(sort_by_length=True, bf16=True)}
    rows, outputs = {}, {}
    for name, options in variants.items():
        sentences = [Sentence(words) for words in tokens]
        started = time.perf_counter()
        outputs[name] = list(log_distributions(tagger, sentences, batch_size, **options))
        seconds = time.perf_counter() - started
        rows[name] = {"seconds": seconds, "tokens_per_second": n_tokens / seconds}
        log.info("%s: %.0f tokens/s", name, n_tokens / seconds)
    reference = np.concatenate(outputs["length-sorted, float32"])
    same_order = np.concatenate(outputs["corpus order, float32 (previous pass)"])
    bf16 = np.concatenate(outputs["length-sorted, bf16"])
    return {"teacher": str(teacher_path), "corpus": corpus_name, "split": split, "sentences": len(tokens),
            "tokens": n_tokens, "batch_size": batch_size, "threads": torch.get_num_threads(), "variants": rows,
            "sorted_vs_corpus_order_max_abs_diff": float(np.abs(np.exp(reference) - np.exp(same_order)).max()),
            "bf16_argmax_agreement": float((reference.argmax(1) == bf16.argmax(1)).mean()),
            "bf16_max_abs_prob_diff": float(np.abs(np.exp(reference) - np.exp(bf16)).max())}
