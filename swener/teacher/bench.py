"""The soft-label pass's speed, measured in one process: corpus order against length-sorted
batches, float32 against bf16 autocast, and how far bf16's cached distributions agree."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from swener.data import corpora

log = logging.getLogger("swener")


def soft_label_speed(teacher_path: Path, corpus_name: str = "webbnyheter2012", split: str = "train",
                     max_sentences: int | None = 2000, batch_size: int = 32) -> dict:
    """Tokens per second of each variant of the pass on the first sentences of a split, and bf16 agreement."""
    import torch
    from flair.data import Sentence

    from swener.teacher.model import load_teacher
    from swener.teacher.run import log_distributions

    tagger = load_teacher(teacher_path)
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


def training_step_probe(configs: list[tuple[str, str, bool, bool]], batches: int = 4, warm_up: int = 2,
                        corpus_name: str = "webbnyheter2012") -> list[dict]:
    """Seconds per teacher batch of 16 (forward + backward) and per AdamW step, for each
    (name, backbone, fused AdamW, bf16 autocast) config, all in this one process."""
    import random

    import flair
    import torch

    from swener.teacher import run as teacher
    from swener.teacher.backbone import resolve_backbone

    corpus = corpora.load(corpus_name)
    train = corpora.to_flair(corpus).train
    sentences = [train[i] for i in range(len(train))]
    random.Random(1).shuffle(sentences)
    rows = []
    for name, backbone, fused, bf16 in configs:
        flair.set_seed(1)
        tagger = teacher.build_teacher(resolve_backbone(backbone), corpus.types, teacher.TeacherSettings(backbone))
        tagger.train()
        optimizer = torch.optim.AdamW(tagger.parameters(), lr=5e-5, **({"fused": True} if fused else
                                                                        {"foreach": False}))
        forward_backward, step = [], []
        for b in range(batches + warm_up):
            batch = sentences[b * 16:(b + 1) * 16]
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, _ = tagger.forward_loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tagger.parameters(), 5.0)
            middle = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad()
            for sentence in batch:
                sentence.clear_embeddings()
            if b >= warm_up:
                forward_backward.append(middle - started)
                step.append(time.perf_counter() - middle)
        rows.append({"name": name, "parameters": sum(p.numel() for p in tagger.parameters()),
                     "forward_backward_seconds": sum(forward_backward) / batches,
                     "step_seconds": sum(step) / batches})
        log.info("%s", rows[-1])
    return rows


if __name__ == "__main__":  # python -m swener.teacher.bench: the optimizer-step probe of the README
    import json

    print(json.dumps(training_step_probe([("trimmed, fused AdamW", "e5-small-sv", True, False),
                                          ("untrimmed, fused AdamW", "e5-small", True, False),
                                          ("untrimmed, per-tensor AdamW", "e5-small", False, False),
                                          ("trimmed, fused AdamW, bf16", "e5-small-sv", True, True)]), indent=2))
